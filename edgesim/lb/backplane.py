"""Build the edges' backplane: a bridge in its own lab namespace and a veth from it into every edge.

Each edge end gets the planned address, a fixed MAC (so XDP can address any edge without ARP) and an MTU
with room for IP-in-IP. The bridge ends get the pass XDP program: frames that an edge's XDP program
redirects into its veth are only received by a peer that has an XDP program of its own.
"""

from __future__ import annotations

from pyroute2 import IPRoute

from edgesim import namespaces
from edgesim.bpf import loader
from edgesim.namespaces import NETNS_DIR
from edgesim.nodes.base import add_address
from edgesim.nodes.router import pass_program_fd
from edgesim.plan import LabPlan


def create(plan: LabPlan) -> None:
    """Create the backplane of a planned lab (nothing when it has none); safe to run again."""
    bp = plan.backplane
    if bp is None:
        return
    if not namespaces.exists(bp.netns):
        namespaces.create(bp.netns)
    with IPRoute(netns=bp.netns) as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
        if not ipr.link_lookup(ifname=bp.bridge):
            ipr.link("add", ifname=bp.bridge, kind="bridge", br_stp_state=0, br_forward_delay=0)
        bridge = ipr.link_lookup(ifname=bp.bridge)[0]
        for port in bp.ports:
            edge_ns = plan.nodes[port.edge].netns
            if not ipr.link_lookup(ifname=port.bridge_port):
                # Born with its other end inside the edge: nothing of the lab touches the root namespace.
                ipr.link(
                    "add",
                    ifname=port.bridge_port,
                    kind="veth",
                    peer={"ifname": port.ifname, "net_ns_fd": str(NETNS_DIR / edge_ns), "address": port.mac},
                )
            index = ipr.link_lookup(ifname=port.bridge_port)[0]
            ipr.link("set", index=index, mtu=bp.mtu, master=bridge, state="up")
            with IPRoute(netns=edge_ns) as edge:
                end = edge.link_lookup(ifname=port.ifname)[0]
                edge.link("set", index=end, mtu=bp.mtu, address=port.mac, state="up")
                add_address(edge, end, port.address)
        ipr.link("set", index=bridge, mtu=bp.mtu, state="up")
    for port in bp.ports:
        if loader.xdp_info(bp.netns, port.bridge_port) is None:
            loader.attach_xdp(bp.netns, port.bridge_port, pass_program_fd())
