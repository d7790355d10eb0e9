"""DNS socket filter benchmark: legitimate DNS under a query flood, filter on and off, side by side, one run.

client1 and client2 each query the VIP at a resolver's pace while the attacker floods VIP:53 at a rate beyond
what the edges' DNS servers answer: from one source, from one source with XDP's per-source UDP limit taken
out (an upstream mitigation that missed it), and from 16 spoofed sources (each under XDP's limit). For each,
with the socket filter on and then counting only: the legitimate queries answered and their p99, the flood's
achieved rate, and the edges' counters (datagrams the filter dropped, and what the sockets' full receive
buffers dropped: /proc/net/udp's drops less the filter's).

Run as root: `.venv/bin/python bench/dns.py` (about two minutes plus `up`; it brings up and removes its own
lab), or `--lab NAME` to use a running lab with a `dns:` section (left up, its limits restored).
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is bench/dns.py and dnspython's package is `dns`: run as a script, its own directory comes first
# on the import path and would shadow dnspython. Drop it before anything imports dns.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
import threading
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from edgesim import lab as lab_api
from edgesim import runtime
from edgesim.dns import control as dns_control
from edgesim.dns.section import DnsLimit
from edgesim.mitigation import control as xdp_control
from edgesim.plan import LabPlan
from edgesim.traffic import attacks, dns_probe

LAB = "dnsbench"
CLIENTS = ("client1", "client2")
XDP_UDP_RULE = "udp-per-source"
console = Console(width=140)


@dataclass(frozen=True)
class Flood:
    """One row group: the attack, and whether XDP's per-source UDP limit stays in force."""

    label: str
    kind: str | None
    xdp_udp_limit: bool = True


FLOODS = [
    Flood("none", None),
    Flood("1 source", "dns-flood"),
    Flood("1 source, XDP UDP limit off", "dns-flood", xdp_udp_limit=False),
    Flood("16 sources", "dns-flood-sources"),
]


def counters(lab: str) -> dict[str, int]:
    """The DNS counters of every edge, summed."""
    per_edge = dns_control.counters(lab)
    return {
        "rx": sum(c["rx_drops"] for c in per_edge.values()),
        "filter": sum(c["filter"]["dropped"] for c in per_edge.values()),
        "answered": sum(c["queries"].get("answered", 0) for c in per_edge.values()),
    }


def measure(
    plan: LabPlan, flood: Flood, enabled: bool, limit: DnsLimit, pps: int, rate: float, seconds: float
) -> list[str]:
    """One row: clients' queries during the flood with the filter on or off, and the counters it moved."""
    lab = plan.lab
    dns_control.set_limit(lab, DnsLimit(rate=limit.rate, burst=limit.burst, enabled=enabled))
    before = counters(lab)
    reports: list[dns_probe.DnsProbeReport] = []
    sent: list[attacks.AttackReport] = []
    stop = threading.Event()
    attacker = None
    if flood.kind:
        args = (plan, flood.kind, pps, seconds + 2.0, None, stop)
        attacker = threading.Thread(target=lambda: sent.append(attacks.launch(*args)))
        attacker.start()
        stop.wait(1.0)  # the flood at its pace before the clients start
    clients = [
        threading.Thread(
            target=lambda n=node: reports.append(
                dns_probe.query_from_node(
                    plan, n, plan.vips[0], "www.pop.example", plan.vips[0], rate, seconds
                )
            )
        )
        for node in CLIENTS
    ]
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    stop.set()
    if attacker is not None:
        attacker.join()
    after = counters(lab)
    moved = {key: after[key] - before[key] for key in after}
    legit = dns_probe.merged(reports)
    return [
        flood.label,
        "on" if enabled else "off",
        f"{sent[0].pps:,.0f}" if sent else "0",
        f"{legit.answered}/{legit.sent}",
        f"{legit.answered_rate:.2%}",
        f"{legit.latency_ms(0.99):.1f}",
        f"{moved['answered']:,}",
        f"{moved['filter']:,}",
        f"{moved['rx']:,}",
    ]


def bench(plan: LabPlan, pps: int, rate: float, seconds: float) -> Table:
    """The table: every flood with the filter on and off."""
    lab = plan.lab
    limit = dns_control.current_limit(lab)
    table = Table(
        title=f"legitimate DNS from {' and '.join(CLIENTS)} ({rate:g} queries/s each, {seconds:g} s) under a "
        f"query flood (asked {pps:,} pps); socket filter {limit.rate}/s burst {limit.burst} per source"
    )
    for column in (
        "flood",
        "filter",
        "flood pps",
        "answered",
        "answered %",
        "p99 ms",
        "server answers",
        "filter drops",
        "rx buffer drops",
    ):
        table.add_column(column, justify="right")
    udp_rule = xdp_control.rules(lab).find(XDP_UDP_RULE)
    try:
        for flood in FLOODS:
            if not flood.xdp_udp_limit and udp_rule is not None:
                xdp_control.delete(lab, XDP_UDP_RULE)
            try:
                for enabled in (True, False):
                    table.add_row(*measure(plan, flood, enabled, limit, pps, rate, seconds))
            finally:
                if not flood.xdp_udp_limit and udp_rule is not None:
                    xdp_control.add(lab, udp_rule.rule)
    finally:
        dns_control.set_limit(lab, limit)
    return table


def main() -> None:
    """Bring up a lab (or use a running one), run the floods, print the table, remove the lab."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", help="a running lab with a dns: section to use (default: bring one up)")
    parser.add_argument("--pps", type=int, default=60_000, help="the flood's rate, asked of trafgen")
    parser.add_argument("--rate", type=float, default=20.0, help="each client's queries per second")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long the clients query")
    args = parser.parse_args()
    if args.lab:
        console.print(bench(runtime.running_plan(args.lab), args.pps, args.rate, args.seconds))
        return
    with console.status("bringing up the benchmark lab"):
        plan = lab_api.up(lab_api.DEFAULT_TOPOLOGY, lab=LAB, console=Console(quiet=True)).plan
    try:
        console.print(bench(plan, args.pps, args.rate, args.seconds))
    finally:
        lab_api.down(LAB, quiet=True)


if __name__ == "__main__":
    main()
