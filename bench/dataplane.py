"""The data plane, stage by stage: iperf3 TCP through the edge stack as it is built up, next to a bare path.

    sudo .venv/bin/python bench/dataplane.py [--lab dpbench] [--seconds 4] [--streams 2]

Brings up its own lab from topology/dataplane.yml (two edges, a tenant with its site, and `bare`, a plain
host one router hop from the client), drains edge2 in the L4 LB and withdraws it from BGP, so that the VIP's
connections all reach edge1's iperf3 server, and measures, in one run, both directions of:

  bare           client1 -> router -> bare: the same hops with no BPF and no firewall on the far node
  edge no BPF    client1 -> router -> edge1 VIP:5201 with every XDP program off the router-edge link (the
                 edge's DoS program and the router's pass program detached); nftables still in place
  DoS, LB off    the XDP DoS program on the edge's uplink, the L4 LB chained behind it but switched off
  DoS + LB       the whole XDP stack, as the lab runs it (the LB delivers locally)
  LB forwards    the same with the routes moved to edge2, whose LB hands every packet to edge1 over the
                 backplane (IP-in-IP, XDP on both ends): the path of a connection after an ECMP change
  + GRE          client1 -> acme's server (203.0.113.100:5201): the edge stack, then the tenant namespace's
                 firewall, anycast GRE to the site router and back through the edge

Each stage is measured with the lab's veths as they were built before (no GRO) and as the backends build
them now (GRO, except the router's ends facing hosts and the bridge's ports), side by side. For each run:
throughput, the sender's retransmissions, and where packets were dropped (the veths' own drop counters,
which count a full ring of the receiving end as the sender's tx drop).

The lab is removed at the end (--keep leaves it up). On a shared machine the numbers move with its load;
compare the columns of one run, not runs.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass

from pyroute2 import IPRoute
from rich.console import Console
from rich.table import Table

from edgesim import lab as lab_api
from edgesim import namespaces
from edgesim.bpf import loader
from edgesim.lb import control as lb_control
from edgesim.offload import set_gro
from edgesim.plan import LabPlan
from edgesim.routing import control as routing
from edgesim.traffic import iperf

TOPOLOGY = lab_api.REPO_ROOT / "topology" / "dataplane.yml"
EDGE = "edge1"
PEER = "edge2"  # drained and withdrawn: there for the LB, which needs a peer
TENANT_SERVER = "203.0.113.100"
console = Console(width=150)


@dataclass(frozen=True)
class Run:
    """One direction of one stage, veths as before or now: iperf3's figures and where the lab dropped."""

    result: iperf.IperfResult
    drops: Counter[str]


def lab_veths(plan: LabPlan) -> list[tuple[str, str]]:
    """Every veth end of the lab: (namespace, interface), tenant namespaces and the backplane included."""
    ends = []
    for netns in namespaces.list_with_prefix(plan.netns_prefix):
        with IPRoute(netns=netns) as ipr:
            for link in ipr.get_links():
                info = link.get_attr("IFLA_LINKINFO")
                if info is not None and info.get_attr("IFLA_INFO_KIND") == "veth":
                    ends.append((netns, link.get_attr("IFLA_IFNAME")))
    return ends


def set_lab_tuning(plan: LabPlan, tuned: bool) -> None:
    """Every veth end of the lab as the backends build it now (GRO, see backends/netns.py) or before."""
    router = plan.nodes["router"]
    hosts = {i.name for i in router.interfaces if plan.nodes[i.peer_node].role == "host"}
    for netns, ifname in lab_veths(plan):
        on_bridge = plan.backplane is not None and netns == plan.backplane.netns
        from_a_host = netns == router.netns and ifname in hosts  # as backends/netns.py does
        set_gro(netns, ifname, tuned and not on_bridge and not from_a_host)


def drop_counters(plan: LabPlan) -> Counter[str]:
    """Every veth's rx and tx drops, keyed `node/interface rx|tx`."""
    counts: Counter[str] = Counter()
    for netns in namespaces.list_with_prefix(plan.netns_prefix):
        node = netns.removeprefix(plan.netns_prefix)
        with IPRoute(netns=netns) as ipr:
            for link in ipr.get_links():
                stats = link.get_attr("IFLA_STATS64")
                if stats is None:
                    continue
                name = link.get_attr("IFLA_IFNAME")
                counts[f"{node}/{name} rx"] = stats["rx_dropped"]
                counts[f"{node}/{name} tx"] = stats["tx_dropped"]
    return counts


Runs = dict[tuple[bool, bool], Run]  # (veths as now, reverse) -> the run


def measure(plan: LabPlan, server: str, address: str, args: argparse.Namespace) -> Runs:
    """Both directions, veths as before then as now: (now, reverse) -> Run."""
    runs = {}
    for now in (False, True):
        set_lab_tuning(plan, now)
        for reverse in (False, True):
            before = drop_counters(plan)
            result = iperf.run(plan, "client1", server, address, args.seconds, reverse, args.streams)
            after = drop_counters(plan)
            runs[(now, reverse)] = Run(result, after - before)  # Counter subtraction keeps the increases
    return runs


def without_bpf(plan: LabPlan) -> None:
    """Every XDP program off the router-edge link (the edge's agent attaches its programs only at start)."""
    edge = plan.nodes[EDGE]
    router = plan.nodes["router"]
    loader.detach_xdp(edge.netns, edge.interface_to("router").name)
    loader.detach_xdp(router.netns, router.interface_to(EDGE).name)


def stages(plan: LabPlan, args: argparse.Namespace) -> dict[str, Runs]:
    """Every stage, in the order the lab can be taken apart; returned in the order of the stack."""
    vip = plan.vips[0]
    lb_control.balance_port(plan.lab, vip, iperf.DEFAULT_PORT)  # iperf3's port: the LB's work, not a pass
    lb_control.drain(plan.lab, PEER)
    routing.edge_down(plan.lab, PEER)
    found = {
        "bare": measure(plan, "bare", plan.nodes["bare"].interfaces[0].address.split("/")[0], args),
        "DoS + LB": measure(plan, EDGE, vip, args),
        "+ GRE": measure(plan, "acme_www", TENANT_SERVER, args),
    }
    routing.edge_up(plan.lab, PEER)
    routing.edge_down(plan.lab, EDGE)
    found["LB forwards"] = measure(plan, EDGE, vip, args)
    routing.edge_up(plan.lab, EDGE)
    routing.edge_down(plan.lab, PEER)
    lb_control.set_enabled(plan.lab, False)
    found["DoS, LB off"] = measure(plan, EDGE, vip, args)
    without_bpf(plan)
    found["edge no BPF"] = measure(plan, EDGE, vip, args)
    order = ["bare", "edge no BPF", "DoS, LB off", "DoS + LB", "LB forwards", "+ GRE"]
    return {name: found[name] for name in order}


def show(found: dict[str, Runs], args: argparse.Namespace) -> None:
    """The table: per stage and direction, GRO off and on, the ratios to the previous stage and to bare."""
    table = Table(title=f"iperf3 TCP, {args.streams} streams, {args.seconds} s a run (Gbit/s, retransmits)")
    for column in ("stage", "direction", "before", "now", "now/before", "now: vs previous", "now: vs bare"):
        table.add_column(column, justify="left" if column in ("stage", "direction") else "right")
    table.add_column("drops (before | now)")
    names = list(found)
    for reverse in (False, True):
        for index, name in enumerate(names):
            off, on = found[name][(False, reverse)], found[name][(True, reverse)]
            previous = found[names[index - 1]][(True, reverse)].result.gbits if index else None
            bare = found["bare"][(True, reverse)].result.gbits
            table.add_row(
                name,
                "server -> client" if reverse else "client -> server",
                f"{off.result.gbits:.2f} ({off.result.retransmits})",
                f"{on.result.gbits:.2f} ({on.result.retransmits})",
                f"{on.result.gbits / off.result.gbits:.2f}",
                f"{on.result.gbits / previous:.2f}" if previous else "",
                f"{on.result.gbits / bare:.2f}",
                f"{_drops(off.drops)} | {_drops(on.drops)}",
            )
        table.add_section()
    console.print(table)


def _drops(drops: Counter[str]) -> str:
    return ", ".join(f"{where} {n}" for where, n in drops.most_common(2)) or "none"


def main() -> int:
    """Bring the lab up, measure every stage both ways with GRO off and on, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default="dpbench", help="name of the lab the benchmark brings up")
    parser.add_argument("--seconds", type=int, default=4, help="length of each iperf3 run")
    parser.add_argument("--streams", type=int, default=2, help="parallel TCP streams of each run")
    parser.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    args = parser.parse_args()
    plan = lab_api.up(TOPOLOGY, lab=args.lab).plan
    try:
        found = stages(plan, args)
    finally:
        if not args.keep:
            lab_api.down(plan.lab, quiet=True)
    show(found, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
