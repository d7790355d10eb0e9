"""`invoke attack KIND` and `invoke load`: attack and legitimate traffic in a running lab."""

from __future__ import annotations

from invoke import Context, task

from edgesim import runtime
from edgesim.errors import EdgesimError, Problem
from edgesim.taskutil import console, need_root, user_errors
from edgesim.traffic import attacks
from edgesim.traffic.http_probe import probe_from_node
from edgesim.traffic.targets import check_target


@task(
    help={
        "kind": " | ".join(attacks.ATTACKS),
        "pps": "packets per second (0: as fast as trafgen goes)",
        "seconds": f"how long (at most {attacks.MAX_SECONDS}); the packet count is pps x seconds",
        "vip": "target VIP (default: the lab's first)",
        "lab": "lab (default: the only lab up)",
    }
)
@user_errors
def attack(
    c: Context, kind: str, pps: int = 0, seconds: float = 5.0, vip: str | None = None, lab: str | None = None
) -> None:
    """Send a bounded flood from the `attacker` node and report the rate achieved (see `mitigate stats`)."""
    attacks.check_arguments(kind, pps, seconds)
    need_root("attack")
    plan = runtime.running_plan(runtime.resolve_lab(lab))
    attacks.target_of(plan, vip)  # the lab's own address, or a clear error before any packet
    with console.status(f"{kind}: {pps or 'max'} pps for {seconds:g} s from {attacks.ATTACKER}"):
        report = attacks.launch(plan, kind, pps, seconds, vip)
    console.print(
        f"{kind}: sent {report.packets:,} packets in {report.seconds:.2f} s = {report.pps:,.0f} pps"
    )


@task(
    help={
        "node": "client node to send from",
        "requests": "number of requests (one new TCP connection each)",
        "concurrency": "requests in flight at once",
        "vip": "target VIP (default: the lab's first)",
        "port": "target port",
        "lab": "lab (default: the only lab up)",
    }
)
@user_errors
def load(
    c: Context,
    node: str = "client1",
    requests: int = 1000,
    concurrency: int = 32,
    vip: str | None = None,
    port: int = 80,
    lab: str | None = None,
) -> None:
    """Legitimate HTTP load from a client: success rate, p50/p99 latency, which edges served it."""
    if requests < 1 or concurrency < 1:
        raise EdgesimError(
            Problem(
                "--requests" if requests < 1 else "--concurrency", "must be 1 or more", "e.g. --requests 1000"
            )
        )
    if not 1 <= port <= 65535:
        raise EdgesimError(Problem("--port", f"{port} is not a port", "1-65535"))
    need_root("load")
    name = runtime.resolve_lab(lab)
    plan = runtime.running_plan(name)
    target = f"{check_target(plan, plan.vips[0] if vip is None else vip)}:{port}"
    with console.status(f"{requests} requests from {node} to {target}"):
        report = probe_from_node(name, node, target, requests, concurrency, hold=False)
    console.print(f"{node} → {target}: {report.summary()}")
