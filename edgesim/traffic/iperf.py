"""iperf3 TCP runs between two lab nodes, for the benchmarks: a one-shot server, a client, its summary."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass

from edgesim import namespaces
from edgesim.errors import EdgesimError, Problem
from edgesim.plan import LabPlan
from edgesim.traffic.targets import check_target

DEFAULT_PORT = 5201


@dataclass(frozen=True)
class IperfResult:
    """What one run moved: the receiver's throughput and the sender's retransmitted segments."""

    gbits: float
    retransmits: int


def run(
    plan: LabPlan,
    client: str,
    server: str,
    address: str,
    seconds: int,
    reverse: bool = False,
    streams: int = 1,
    port: int = DEFAULT_PORT,
    via: tuple[str, int] | None = None,
) -> IperfResult:
    """One iperf3 TCP run from node `client` to `address` served by node `server` (-R: the other way).

    `via`: the address and port the client connects to instead (a proxy in front of the server).
    """
    check_target(plan, address, "address")  # an address of this lab, never one outside it
    target, target_port = via or (address, port)
    check_target(plan, target, "via")
    listener = namespaces.popen_in(
        plan.nodes[server].netns,
        ["iperf3", "-s", "-1", "-B", address, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.3)  # the one-shot server's listen
        argv = ["iperf3", "-c", target, "-p", str(target_port), "-t", str(seconds), "-P", str(streams), "-J"]
        result = namespaces.run_in(
            plan.nodes[client].netns,
            [*argv, *(["-R"] if reverse else [])],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
        )
        report = json.loads(result.stdout or "{}")
        if "error" in report or "end" not in report:
            where = f"iperf3 {client} -> {target}:{target_port}"
            raise EdgesimError(Problem(where, str(report.get("error", result.stderr.strip()))))
        received, sent = report["end"]["sum_received"], report["end"]["sum_sent"]
        return IperfResult(received["bits_per_second"] / 1e9, sent.get("retransmits", 0))
    finally:
        if listener.poll() is None:
            listener.kill()
        listener.wait(timeout=10)
