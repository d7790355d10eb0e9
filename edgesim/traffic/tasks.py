"""`invoke attack KIND` and `invoke load`: attack and legitimate traffic in a running lab."""

from __future__ import annotations

from invoke import Context, task

from edgesim import runtime
from edgesim.taskutil import console, need_root, user_errors
from edgesim.traffic import attacks
from edgesim.traffic.http_probe import probe_from_node


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
    need_root("attack")
    plan = runtime.running_plan(runtime.resolve_lab(lab))
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
    need_root("load")
    name = runtime.resolve_lab(lab)
    plan = runtime.running_plan(name)
    target = f"{vip or plan.vips[0]}:{port}"
    with console.status(f"{requests} requests from {node} to {target}"):
        report = probe_from_node(name, node, target, requests, concurrency, hold=False)
    console.print(f"{node} → {target}: {report.summary()}")
