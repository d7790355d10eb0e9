"""iperf3 TCP throughput through a tenant's path with eBPF GRE, next to the same path without GRE.

    sudo .venv/bin/python bench/gre.py [--lab grebench] [--seconds 5]

Brings up its own lab from topology/default.yml, opens port 5201 in acme's firewall through the config
store, and measures client1 <-> acme_www (203.0.113.100) both ways:

  with GRE     client -> router -> edge -> acme namespace (firewall) -> GRE -> router -> site router
               (decap) -> server; back: server -> site router (encap) -> router -> any edge (decap) -> client
  without GRE  the same hops both ways, with the GRE programs detached (the edges' agents stopped so they
               do not put them back) and plain policy routes on the router instead: what an edge sends
               back for the tenant's prefix goes to the site router; what the site router sends goes to
               the edges (ECMP), which route it to the client. The route MTU (1476) and MSS clamp stay,
               so both carry the same segment sizes and the difference is the encapsulation work.

The lab is removed at the end (--keep leaves it up). On a shared machine the numbers move with its load.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import astuple

from pyroute2 import IPRoute

from edgesim import lab as lab_api
from edgesim import namespaces
from edgesim.bpf import loader
from edgesim.plan import LabPlan
from edgesim.plan.naming import TENANT_IFNAME, tenant_netns
from edgesim.tenants import admin
from edgesim.traffic import iperf

SERVER = "203.0.113.100"
PORT = 5201
TENANT = "acme"
SITE = "acme_gw"
RULE = f"ip daddr {SERVER} tcp dport {PORT} accept"
# Without GRE: on the router, what comes back from an edge for the tenant's prefix goes to the site, and
# what the site sends goes to the edges (as its GRE would), each through a table of its own.
BENCH_TABLE = 200
BENCH_PRIORITY = 200
RETURN_TABLE = 201
# Without GRE, an edge must not mark what its tenant namespace sends back (or it would loop there).
UNMARK = f"""
table ip bench {{
    chain prerouting {{
        type filter hook prerouting priority mangle + 1; policy accept;
        iifname "t-{TENANT}" meta mark set 0
    }}
}}
"""


def measure(plan: LabPlan, seconds: int) -> dict[str, tuple[float, int]]:
    """Both directions: (Gbit/s received, sender's retransmissions)."""
    runs = {"client -> server": False, "server -> client": True}
    return {
        direction: astuple(iperf.run(plan, "client1", "acme_www", SERVER, seconds, reverse, port=PORT))
        for direction, reverse in runs.items()
    }


def without_gre(plan: LabPlan) -> None:
    """Detach the GRE programs of the tenant path and route it plainly (see the module docstring)."""
    edges = plan.nodes_with_role("edge")
    for edge in edges:
        lab_api.stop_service(plan.lab, edge.name, "tenants")  # or it would attach the programs again
        loader.detach_tc(tenant_netns(plan.lab, edge.name, TENANT), TENANT_IFNAME, "egress")
        result = namespaces.run_in(
            edge.netns, ["nft", "-f", "-"], input=UNMARK, capture_output=True, text=True
        )
        if result.returncode:
            raise RuntimeError(result.stderr)
    site = plan.nodes[SITE]
    assert site.tunnel is not None
    loader.detach_tc(site.netns, site.tunnel.ifname, "egress")
    router = plan.nodes["router"]
    with IPRoute(netns=router.netns) as ipr:
        for prefix in site.tunnel.prefixes:
            ipr.route("replace", dst=prefix, gateway=site.tunnel.local, table=BENCH_TABLE)
        for offset, edge in enumerate(edges):
            ipr.rule(
                "add",
                iifname=router.interface_to(edge.name).name,
                table=BENCH_TABLE,
                priority=BENCH_PRIORITY + offset,
            )
        hops = [
            {
                "gateway": router.interface_to(e.name).peer_address,
                "oif": ipr.link_lookup(ifname=router.interface_to(e.name).name)[0],
            }
            for e in edges
        ]
        ipr.route("replace", dst="0.0.0.0/0", multipath=hops, table=RETURN_TABLE)
        ipr.rule(
            "add", iifname=router.interface_to(SITE).name, table=RETURN_TABLE, priority=BENCH_PRIORITY - 1
        )


def main() -> int:
    """Bring the lab up, measure with and without GRE, print them side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default="grebench", help="name of the lab the benchmark brings up")
    parser.add_argument("--seconds", type=int, default=5, help="length of each iperf3 run")
    parser.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    args = parser.parse_args()
    plan = lab_api.up(lab_api.DEFAULT_TOPOLOGY, lab=args.lab).plan
    try:
        change = admin.add_rule(plan.lab, TENANT, RULE)
        admin.wait_applied(plan.lab, change.revision)
        with_gre = measure(plan, args.seconds)
        without_gre(plan)
        plain = measure(plan, args.seconds)
    finally:
        if not args.keep:
            lab_api.down(plan.lab, quiet=True)
    print(f"iperf3 TCP, client1 <-> {SERVER}:{PORT} through tenant {TENANT}'s path, {args.seconds} s a run")
    print(f"{'direction':<18} {'with GRE':>16} {'without GRE':>16} {'GRE/plain':>10}")
    for direction, (gre_rate, gre_retr) in with_gre.items():
        plain_rate, plain_retr = plain[direction]
        ratio = gre_rate / plain_rate
        print(
            f"{direction:<18} {gre_rate:>9.2f} Gbit/s {plain_rate:>9.2f} Gbit/s {ratio:>10.2f}"
            f"   (retransmits {gre_retr} / {plain_retr})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
