"""L4 load balancer benchmark, measured side by side in one run on this machine.

1. Per-packet cost (BPF_PROG_TEST_RUN, ns/packet) of an established flow's packet through the DoS program
   alone (no LB in the chain), then DoS + LB with a local verdict, DoS + LB forwarding it (IP-in-IP,
   XDP_REDIRECT), and the receiving side (backplane decapsulation + DoS + LB, local).
2. Time from `lb drain EDGE` to the table applied on all edges (and back with `lb undrain`), in a lab.

Run as root: `.venv/bin/python bench/l4lb.py [--lab NAME]` (about 40 s; without --lab it brings up and
removes its own lab `<prefix>bench`).
"""

from __future__ import annotations

import argparse
import os
import statistics
from ipaddress import IPv4Address
from pathlib import Path

from rich.console import Console
from rich.table import Table
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw, raw

from edgesim import lab as lab_api
from edgesim.bpf import loader, testrun
from edgesim.bpf.tables import be32
from edgesim.lb import control
from edgesim.lb import maps as lb_maps
from edgesim.lb.store import LbEdge, LbState
from edgesim.lb.table import Buckets
from edgesim.mitigation import layout, maps
from edgesim.mitigation.rules import RULE_ADAPTER, build_rule_set
from edgesim.plan import LabPlan

console = Console(width=140)
VIP = "198.51.100.10"
EDGES = [LbEdge(name=f"edge{i}", address=f"198.18.1.{i}", mac=f"02:e5:c6:12:01:{i:02x}") for i in (1, 2)]
RUNS = 20_000


def per_packet_costs() -> list[tuple[str, str, float]]:
    """(case, verdict, ns/packet) for the DoS program alone and with the LB behind it."""
    bpf = loader.compile_program(Path("xdp_edge.c"))
    ddos = loader.load_xdp(bpf, "xdp_ddos")
    lb = loader.load_xdp(bpf, "xdp_lb")
    backplane = loader.load_xdp(bpf, "xdp_backplane")
    # The default topology's rules, with the flow already proven by its cookie (the steady state).
    rules = [{"kind": "syn_cookie", "vip": VIP, "port": 80, "name": "cookies"}]
    maps.apply(bpf, maps.contents_for(build_rule_set([RULE_ADAPTER.validate_python(r) for r in rules])))
    lb_maps.write_members(bpf, LbState(edges=EDGES, vips=[(VIP, 80)]))
    inner = IP(src="100.64.0.1", dst=VIP) / TCP(sport=40000, dport=80, flags="PA") / Raw(b"x" * 64)
    direct = raw(Ether() / inner)
    # Mark the flow as cookie-proven, so every case takes the steady-state path of an established flow.
    flows = bpf[b"cookie_flows"]
    client, vip = be32(IPv4Address(inner[IP].src)), be32(IPv4Address(VIP))
    key = flows.Key(saddr=client, daddr=vip, sport=40000, dport=80)
    flows[key] = flows.Leaf(1)
    results = []

    def measure(case: str, fd: int, packet: bytes) -> None:
        # One packet per test run: with `repeat` the kernel does not restore the packet between runs, so
        # a program that moves the head (encapsulation, decapsulation) would see its own output again.
        runs = [testrun.run(fd, packet) for _ in range(RUNS)]
        verdicts = {r.verdict for r in runs}
        assert len(verdicts) == 1, verdicts
        results.append((case, runs[0].verdict, statistics.median(r.duration_ns for r in runs)))

    chain = bpf[b"chain"]
    lb_maps.write_table(bpf, Buckets.every(0, 0), False, 0, 1)
    measure("DoS program alone (no LB in the chain)", ddos, direct)
    chain[layout.CHAIN_NEXT] = lb
    lb_maps.write_table(bpf, Buckets.every(0, 0), True, 0, 1)
    measure("DoS + LB, owner is this edge (local)", ddos, direct)
    lb_maps.write_table(bpf, Buckets.every(1, 1), True, 0, 1)
    measure("DoS + LB, owner is another edge (forwarded)", ddos, direct)
    lb_maps.write_table(bpf, Buckets.every(0, 0), True, 0, 1)
    encapsulated = raw(
        Ether(src=EDGES[1].mac, dst=EDGES[0].mac)
        / IP(src=EDGES[1].address, dst=EDGES[0].address, proto=4, ttl=2)
        / inner
    )
    measure("receiving edge: decapsulate + DoS + LB (local)", backplane, encapsulated)
    bpf.cleanup()
    return results


def drain_times(lab: str, edge: str, rounds: int = 5) -> tuple[list[float], list[float]]:
    """Seconds from `lb drain` / `lb undrain` to the table applied on every edge, per round."""
    drains, undrains = [], []
    for _ in range(rounds):
        drains.append(control.drain(lab, edge)["seconds"])
        undrains.append(control.undrain(lab, edge)["seconds"])
    return drains, undrains


def main() -> None:
    """Print both tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", help="use this running lab instead of bringing one up")
    args = parser.parse_args()
    costs = Table(title=f"per-packet cost, BPF_PROG_TEST_RUN, median of {RUNS:,} single-packet runs")
    for column in ("path", "verdict", "ns/packet"):
        costs.add_column(column)
    for case, verdict, ns in per_packet_costs():
        costs.add_row(case, verdict, f"{ns:.0f}")
    console.print(costs)

    lab = args.lab or f"{os.environ.get('EDGESIM_TEST_PREFIX', '')}bench"
    plan: LabPlan | None = None
    if not args.lab:
        plan = lab_api.up(lab_api.DEFAULT_TOPOLOGY, lab=lab, console=Console(stderr=True, quiet=True)).plan
    try:
        drains, undrains = drain_times(lab, "edge2")
    finally:
        if plan is not None:
            lab_api.down(lab, quiet=True)
    times = Table(title="from the command to the table applied on all 4 edges (5 rounds)")
    for column in ("command", "median s", "max s"):
        times.add_column(column)
    times.add_row("lb drain edge2", f"{statistics.median(drains):.3f}", f"{max(drains):.3f}")
    times.add_row("lb undrain edge2", f"{statistics.median(undrains):.3f}", f"{max(undrains):.3f}")
    console.print(times)


if __name__ == "__main__":
    main()
