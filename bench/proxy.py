"""TCP proxy benchmark: the edges' proxy with SOCKMAP splicing on and off, side by side in one run, through
the lab's real path (client1 → router → an edge's proxy → the origin host).

The benchmark starts two extra proxies on every edge, the same program with the same settings as the lab's:
one splicing (port 8181), one copying in user space (port 8182), both to an iperf3 server on the origin host,
and two more to the origin's echo service (8183 spliced, 8184 copied). Measured, alternating between the two:
- bulk throughput both ways (iperf3, Gbit/s at the receiver);
- CPU per GB moved: the whole machine's busy time (every process, softirq and the kernel's redirect workers)
  and the proxies' own processes, over the bytes moved;
- p50/p99 of small request/response exchanges (64 bytes each way, TCP_NODELAY, one connection);
- the share of bytes the spliced proxy still copied (its budget spent, edgesim.proxy.splice).

Run as root: `.venv/bin/python bench/proxy.py` (brings up and removes its own lab), or `--lab NAME --keep`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

from rich.console import Console
from rich.table import Table

from edgesim import lab as lab_api
from edgesim import namespaces
from edgesim.errors import Problem
from edgesim.plan import LabPlan
from edgesim.plan.addressing import host_address
from edgesim.runtime import DEFAULT_TOPOLOGY
from edgesim.traffic import iperf
from edgesim.waiting import wait_until

IPERF_PORT = 5201
PORTS = {"splice": (8181, 8183), "copy": (8182, 8184)}  # (to iperf3, to the echo service)
MODES = tuple(PORTS)
console = Console(width=140)


@dataclass
class Result:
    """What one mode measured, over every round."""

    up_gbits: list[float] = field(default_factory=list)
    down_gbits: list[float] = field(default_factory=list)
    machine_s_per_gb: list[float] = field(default_factory=list)
    proxy_s_per_gb: list[float] = field(default_factory=list)
    latencies_us: list[float] = field(default_factory=list)
    copied: int = 0
    kernel: int = 0


def busy_seconds() -> float:
    """The machine's busy CPU time so far (every CPU: user, nice, system, irq, softirq)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def process_seconds(pids: list[int]) -> float:
    """CPU time (user + system) of these processes so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


class BenchProxies:
    """The extra proxies on every edge, per mode; their pids and control sockets."""

    def __init__(self, plan: LabPlan, workdir: Path) -> None:
        self.plan = plan
        self.workdir = workdir
        self.processes: dict[str, list[subprocess.Popen[bytes]]] = {mode: [] for mode in MODES}
        self.sockets: dict[str, list[Path]] = {mode: [] for mode in MODES}

    def start(self) -> None:
        """Start them all and wait for each control socket."""
        origin = host_address(self.plan.nodes["origin"].interfaces[0].address)
        vip = self.plan.vips[0]
        for edge in self.plan.nodes_with_role("edge"):
            for mode, ports in PORTS.items():
                for port, target in zip(ports, (IPERF_PORT, 9000), strict=True):
                    control = self.workdir / f"{edge.name}-{port}.sock"
                    argv = [sys.executable, "-m", "edgesim.services.tcp_proxy", "--name", f"{edge.name}-b"]
                    argv += ["--listen", f"{vip}:{port}", "--origin", f"{origin}:{target}"]
                    argv += ["--socket", str(control), *(["--splice"] if mode == "splice" else [])]
                    log = (self.workdir / f"{edge.name}-{port}.log").open("wb")
                    self.processes[mode].append(namespaces.popen_in(edge.netns, argv, stdout=log, stderr=log))
                    self.sockets[mode].append(control)
        for control in [c for sockets in self.sockets.values() for c in sockets]:
            missing = Problem(
                str(control), "the bench proxy did not start", f"see {control.with_suffix('.log')}"
            )
            wait_until(control.exists, timeout=60, interval=0.1, failure=lambda _, problem=missing: problem)

    def pids(self, mode: str) -> list[int]:
        """Pids of the mode's proxies."""
        return [p.pid for p in self.processes[mode]]

    def counters(self, mode: str) -> tuple[int, int]:
        """(bytes copied in user space, bytes the kernel redirected) over the mode's proxies."""
        copied = redirected = 0
        for control in self.sockets[mode]:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(str(control))
                sock.sendall(b'{"op": "stats"}\n')
                answer = json.loads(sock.makefile().readline())
            copied += sum(answer["copied_bytes"].values())
            redirected += answer["kernel"].get("redirected_bytes", 0)
        return copied, redirected

    def stop(self) -> None:
        """Stop every bench proxy."""
        for process in [p for processes in self.processes.values() for p in processes]:
            process.terminate()
        for process in [p for processes in self.processes.values() for p in processes]:
            process.wait(timeout=10)


def bulk(plan: LabPlan, proxies: BenchProxies, mode: str, result: Result, seconds: int) -> None:
    """One iperf3 run each way through the mode's proxies, with the CPU it took."""
    origin = host_address(plan.nodes["origin"].interfaces[0].address)
    via = (plan.vips[0], PORTS[mode][0])
    for reverse, into in ((False, result.up_gbits), (True, result.down_gbits)):
        machine, own = busy_seconds(), process_seconds(proxies.pids(mode))
        run = iperf.run(plan, "client1", "origin", origin, seconds, reverse=reverse, port=IPERF_PORT, via=via)
        machine, own = busy_seconds() - machine, process_seconds(proxies.pids(mode)) - own
        gigabytes = run.gbits * seconds / 8
        into.append(run.gbits)
        if gigabytes > 0:
            result.machine_s_per_gb.append(machine / gigabytes)
            result.proxy_s_per_gb.append(own / gigabytes)


def exchanges(plan: LabPlan, mode: str, result: Result, count: int) -> None:
    """`count` 64-byte request/response exchanges on one connection through the mode's echo proxy."""
    with namespaces.inside(plan.nodes["client1"].netns):
        sock = socket.socket()
    with sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(10)
        sock.connect((plan.vips[0], PORTS[mode][1]))
        message = b"x" * 63 + b"\n"
        sock.sendall(message)  # the first exchange opens the way (and the splice's handover)
        sock.recv(64)
        time.sleep(0.1)
        for _ in range(count):
            started = time.perf_counter()
            sock.sendall(message)
            got = 0
            while got < len(message):
                got += len(sock.recv(64))
            result.latencies_us.append((time.perf_counter() - started) * 1e6)


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of the values lie."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def show(results: dict[str, Result], args: argparse.Namespace) -> None:
    """The table, and the ratios of splice to copy."""
    table = Table(title=f"TCP proxy through the lab, {args.rounds} rounds alternating (medians)")
    columns = ("mode", "client→origin Gbit/s", "origin→client Gbit/s", "machine CPU s/GB", "proxy CPU s/GB")
    for column in (*columns, "p50 µs", "p99 µs", "copied by the proxy"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for mode, r in results.items():
        moved = r.copied + r.kernel
        table.add_row(
            mode,
            f"{median(r.up_gbits):.2f}",
            f"{median(r.down_gbits):.2f}",
            f"{median(r.machine_s_per_gb):.2f}",
            f"{median(r.proxy_s_per_gb):.2f}",
            f"{percentile(r.latencies_us, 0.5):.0f}",
            f"{percentile(r.latencies_us, 0.99):.0f}",
            f"{100 * r.copied / moved:.1f} %" if moved else "-",
        )
    console.print(table)
    s, c = results["splice"], results["copy"]
    console.print(
        f"splice / copy: throughput {median(s.up_gbits) / median(c.up_gbits):.2f}x up, "
        f"{median(s.down_gbits) / median(c.down_gbits):.2f}x down; machine CPU per GB "
        f"{median(s.machine_s_per_gb) / median(c.machine_s_per_gb):.2f}x; proxy CPU per GB "
        f"{median(s.proxy_s_per_gb) / median(c.proxy_s_per_gb):.2f}x; p50 "
        f"{percentile(s.latencies_us, 0.5) / percentile(c.latencies_us, 0.5):.2f}x, p99 "
        f"{percentile(s.latencies_us, 0.99) / percentile(c.latencies_us, 0.99):.2f}x"
    )


def main() -> int:
    """Bring the lab up, start the bench proxies, measure both modes alternating, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default="pxbench", help="name of the lab the benchmark brings up")
    parser.add_argument("--seconds", type=int, default=4, help="length of each iperf3 run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each measurement per mode")
    parser.add_argument("--exchanges", type=int, default=2000, help="request/response exchanges per round")
    parser.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    args = parser.parse_args()
    plan = lab_api.up(DEFAULT_TOPOLOGY, lab=args.lab).plan
    workdir = Path(tempfile.mkdtemp(prefix="edgesim-proxybench-"))
    proxies = BenchProxies(plan, workdir)
    results = {mode: Result() for mode in MODES}
    try:
        proxies.start()
        for round_ in range(args.rounds):
            # Alternate which mode goes first, so that drift on the machine falls on both.
            for mode in MODES if round_ % 2 == 0 else reversed(MODES):
                before = proxies.counters(mode)
                bulk(plan, proxies, mode, results[mode], args.seconds)
                exchanges(plan, mode, results[mode], args.exchanges)
                after = proxies.counters(mode)
                results[mode].copied += after[0] - before[0]
                results[mode].kernel += after[1] - before[1]
                console.print(f"round {round_ + 1} {mode}: done", style="dim")
    finally:
        proxies.stop()
        shutil.rmtree(workdir)  # made by mkdtemp above: nothing else is in it
        if not args.keep:
            lab_api.down(plan.lab, quiet=True)
    show(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
