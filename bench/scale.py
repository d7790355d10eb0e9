"""Scale benchmark: `up` time, `down` time and the agents' memory for labs of 4, 16 and 64 edges, with the
BPF programs compiled by bcc in every agent (EDGESIM_BPF_CACHE=off, as before the cache) and loaded from
the BPF cache (cold: an empty cache, so one compile per program; warm: the entries already there), side by
side in one run. Each lab then passes the foundation's spread check: HTTP connections from a client to the
VIP, every one answered, every edge serving within 4.6 standard deviations of its binomial share.

    sudo .venv/bin/python bench/scale.py [--sizes 4,16,64] [--off-sizes 4,16]

The topologies have scale.yml's shape (a router, N edges, four clients, two VIPs), written to a temporary
directory; the labs are named <prefix>scale<N> (--prefix, default c) and come up one at a time. The cache
runs use a cache directory of their own (removed at the end), so the machine's cache is neither used nor
changed. Memory is read from
/proc: RSS (what the process has resident, shared pages counted in full) and PSS (shared pages divided among
the processes sharing them, so the PSS of all processes adds up to what they use together), from
smaps_rollup. "LLVM" counts the agents that have libLLVM mapped. 64 edges with bcc in every agent are not
run by default: 64 agents holding LLVM's compile at ~240 MB RSS each is ~15 GB on a 24 GB machine shared
with other jobs (--off-sizes 4,16,64 runs it anyway).

Each lab then has one edge's HTTP service stopped (SIGSTOP) until every agent's table leaves it out: the
lab's health-check rounds that took (at most FAILS_TO_DOWN + 1 from the round in flight at the stop), the
seconds until the fastest and the slowest agent applied it (their own clocks), and the seconds until the
edge was back in every table after it answered again.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from edgesim import lab as lab_api
from edgesim.bpf import cache
from edgesim.errors import EdgesimError
from edgesim.lb import control as lb_control
from edgesim.lb import health
from edgesim.nodes import router
from edgesim.state import LabState
from edgesim.traffic.http_probe import probe_from_node

VIPS = ("198.51.100.10", "198.51.100.20")
CLIENTS = 4
# As the foundation's spread test: a share outside 4.6 standard deviations has p ≈ 4e-6 per edge.
SIGMAS = 4.6
console = Console(width=200)


def topology(edges: int) -> str:
    """scale.yml's shape with `edges` edges."""
    lines = [
        f"# The scale benchmark's lab: {edges} edges and {CLIENTS} clients (scale.yml's shape).",
        f"lab: scale{edges}",
        "",
        "vips:",
        f"  - address: {VIPS[0]}",
        f"  - address: {VIPS[1]}",
        "    ports: [80, 8080]",
        "",
        "nodes:",
        "  router: {role: router}",
        *(f"  edge{i}: {{role: edge}}" for i in range(1, edges + 1)),
        *(f"  client{i}: {{role: host}}" for i in range(1, CLIENTS + 1)),
    ]
    return "\n".join(lines) + "\n"


@dataclass
class Memory:
    """The agents' memory, and that of every process of the lab, in kB."""

    agents: int
    rss: list[int]
    pss: list[int]
    llvm: int
    lab_pss: int


def _kb(path: str, field: str) -> int:
    for line in Path(path).read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _llvm(pid: int) -> bool:
    return "libLLVM" in Path(f"/proc/{pid}/maps").read_text()


def memory(lab: str) -> Memory:
    """RSS and PSS of each XDP agent (the edge's BPF agent), and the PSS of all the lab's processes."""
    status = lab_api.status(lab)
    agents = [pid for n in status.nodes for name, pid in n.services.items() if name == "xdp" and pid]
    every = [pid for n in status.nodes for pid in n.services.values() if pid]
    if status.supervisor_pid:
        every.append(status.supervisor_pid)
    return Memory(
        agents=len(agents),
        rss=[_kb(f"/proc/{pid}/status", "VmRSS") for pid in agents],
        pss=[_kb(f"/proc/{pid}/smaps_rollup", "Pss") for pid in agents],
        llvm=sum(_llvm(pid) for pid in agents),
        lab_pss=sum(_kb(f"/proc/{pid}/smaps_rollup", "Pss") for pid in every),
    )


@dataclass
class Spread:
    """The spread check: connections, failures, the smallest and largest share, and whether it passed."""

    connections: int
    failures: int
    served: int
    low: int
    high: int
    passed: bool


def spread(lab: str, edges: int) -> Spread:
    """HTTP connections from client1 to the first VIP; every one answered and every edge near its share."""
    count = max(1024, 64 * edges)
    report = probe_from_node(lab, "client1", f"{VIPS[0]}:80", count, timeout=10.0)
    failures = sum(1 for f in report.fetches if f.error)
    per_edge = report.per_edge()
    expected = count / edges
    allowed = SIGMAS * math.sqrt(count * (1 / edges) * (1 - 1 / edges))
    shares = [per_edge.get(f"edge{i}", 0) for i in range(1, edges + 1)]
    passed = failures == 0 and all(abs(s - expected) <= allowed for s in shares)
    return Spread(count, failures, len(per_edge), min(shares), max(shares), passed)


@dataclass
class Failover:
    """An edge's HTTP service stopped (SIGSTOP): the lab's check rounds and the seconds until every agent's
    table left it out (slowest and fastest agent, from their own clocks), and until it was back."""

    rounds: int
    first_s: float
    last_s: float
    back_s: float


def _views(lab: str) -> dict[str, dict]:
    return lb_control._each_edge(lab, "lb-summary")  # the cheap answer: no table read back


def failover(lab: str, edges: int) -> Failover:
    """Stop one edge's HTTP service until every table leaves it out, then let it answer again."""
    edge = f"edge{edges // 2 + 1}"
    pid = json.loads(LabState(lab).services_file.read_text())[f"{edge}/http"]["pid"]
    os.kill(pid, signal.SIGSTOP)
    stopped = time.time()
    try:
        at_stop = {name: a["health_rounds"] for name, a in _views(lab).items()}
        while True:
            views = _views(lab)
            if all(edge in a["unhealthy"] for a in views.values()):
                break
            if time.time() - stopped > 60:
                raise EdgesimError(f"{edge} was not out of every table 60 s after it stopped answering")
            time.sleep(0.1)
    finally:
        os.kill(pid, signal.SIGCONT)
    resumed = time.time()
    while any(edge in a["unhealthy"] for a in _views(lab).values()):
        if time.time() - resumed > 60:
            raise EdgesimError(f"{edge} was not back in every table 60 s after it answered again")
        time.sleep(0.1)
    back = time.time() - resumed
    rounds = max(a["health_round"] - at_stop[name] for name, a in views.items())
    applied = [a["applied_at"] - stopped for a in views.values()]
    return Failover(rounds, min(applied), max(applied), back)


@dataclass
class Run:
    """One lab brought up, measured and removed (or why its `up` failed)."""

    mode: str
    edges: int
    up_s: float
    down_s: float
    memory: Memory | None
    spread: Spread | None
    failover: Failover | None = None
    error: str = ""


def run(mode: str, path: Path, edges: int, cache_dir: Path, prefix: str) -> Run:
    """Bring the lab up in `mode` (off, cold, warm), measure it, take it down."""
    os.environ["EDGESIM_BPF_CACHE"] = "off" if mode == "off" else "on"
    os.environ["EDGESIM_BPF_CACHE_DIR"] = str(cache_dir)
    if mode == "cold":
        cache.clear(cache_dir)
    lab = f"{prefix}scale{edges}"
    # `up` loads the router's pass program once per process: again for each run, so each mode pays for it.
    router._pass_program.cache_clear()
    console.print(f"{mode:>4} {edges:>3} edges: up …", end=" ")
    started = time.monotonic()
    measured, checked, failed_over, error = None, None, None, ""
    try:
        lab_api.up(path, lab=lab, console=Console(quiet=True))
        up_s = time.monotonic() - started
        console.print(f"{up_s:.1f} s, memory, spread, failover …", end=" ")
        measured = memory(lab)
        checked = spread(lab, edges)
        try:
            failed_over = failover(lab, edges)
        except EdgesimError as exc:  # the row shows "-"; the reason is printed here
            console.print(f"failover: {exc}", end=" ")
    except EdgesimError as exc:  # a size this machine cannot bring up: the row says why
        up_s = time.monotonic() - started
        error = str(exc).splitlines()[0][:160]
        console.print(f"failed after {up_s:.0f} s: {error}", end=" ")
    finally:
        started = time.monotonic()
        lab_api.down(lab, quiet=True)
        down_s = time.monotonic() - started
    console.print(f"down {down_s:.1f} s")
    return Run(mode, edges, up_s, down_s, measured, checked, failed_over, error)


MODES = {"off": "bcc in every agent", "cold": "cache, cold", "warm": "cache, warm"}


def _mb(kb: float) -> str:
    return f"{kb / 1024:.0f}"


def _failover(f: Failover | None) -> str:
    if f is None:
        return "-"
    within = "ok" if f.rounds <= health.FAILS_TO_DOWN + 1 else "TOO MANY"
    return f"{f.rounds} ({within}), {f.first_s:.1f}-{f.last_s:.1f}, {f.back_s:.1f}"


def report(runs: list[Run]) -> None:
    """The table of all runs, and the up-time ratios 16/4 and 64/4 per mode."""
    table = Table(title="lab scale: up, down, memory (MB) and ECMP spread")
    for column in ("programs", "edges", "up s", "down s", "agent RSS", "agent PSS", "agents RSS Σ"):
        table.add_column(column, justify="right")
    for column in ("agents PSS Σ", "LLVM", "lab PSS Σ", "spread (conns, min-max, ok)"):
        table.add_column(column, justify="right")
    table.add_column("edge stops: out of all tables (rounds, s), back s", justify="right")
    for r in runs:
        m, s = r.memory, r.spread
        if m is None or s is None:
            table.add_row(
                MODES[r.mode], str(r.edges), f"{r.up_s:.1f}", f"{r.down_s:.1f}", f"up failed: {r.error}"
            )
            continue
        table.add_row(
            MODES[r.mode],
            str(r.edges),
            f"{r.up_s:.1f}",
            f"{r.down_s:.1f}",
            f"{_mb(sum(m.rss) / max(1, m.agents))} (max {_mb(max(m.rss, default=0))})",
            f"{_mb(sum(m.pss) / max(1, m.agents))}",
            _mb(sum(m.rss)),
            _mb(sum(m.pss)),
            f"{m.llvm}/{m.agents}",
            _mb(m.lab_pss),
            f"{s.connections}, {s.low}-{s.high}, {'ok' if s.passed else f'FAILED ({s.failures} failed)'}",
            _failover(r.failover),
        )
    console.print(table)
    for mode in MODES:
        times = {r.edges: r.up_s for r in runs if r.mode == mode and not r.error}
        if 4 in times:
            ratios = [f"{n}/4 edges: {times[n] / times[4]:.2f}x" for n in sorted(times) if n != 4]
            console.print(f"up time, {MODES[mode]}: " + ", ".join(ratios))


def main() -> None:
    """Run every size in every mode asked for and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sizes", default="4,16,64", help="edge counts with the cache (cold and warm)")
    parser.add_argument("--off-sizes", default="4,16", help="edge counts with bcc in every agent")
    parser.add_argument("--prefix", default="c", help="the labs' names start with it: <prefix>scale<N>")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",") if n]
    off_sizes = [int(n) for n in args.off_sizes.split(",") if n]
    work = Path(tempfile.mkdtemp(prefix="cscale-"))
    cache_dir = work / "bpf-cache"
    runs = []
    try:
        for edges in sorted(set(sizes) | set(off_sizes)):
            path = work / f"scale{edges}.yml"
            path.write_text(topology(edges))
            modes = (["off"] if edges in off_sizes else []) + (["cold", "warm"] if edges in sizes else [])
            for mode in modes:
                if mode == "warm" and runs and runs[-1].edges == edges and runs[-1].error:
                    continue  # the cold run could not bring this size up: the warm one would not either
                runs.append(run(mode, path, edges, cache_dir, args.prefix))
    finally:
        cache.clear(cache_dir)
        shutil.rmtree(work, ignore_errors=True)
        report(runs)


if __name__ == "__main__":
    main()
