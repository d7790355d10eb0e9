"""The default backend: each node is a named network namespace, each link a veth pair (pyroute2)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from contextlib import AbstractContextManager

from pyroute2 import IPRoute

from edgesim import guard, namespaces
from edgesim.errors import EdgesimError, Problem
from edgesim.namespaces import NETNS_DIR
from edgesim.netlink import add_address
from edgesim.offload import set_gro, tune_veth_pair
from edgesim.plan import BackplanePlan, LabPlan, LinkPlan, NodePlan


class NetnsBackend:
    """Nodes are `<lab>-<node>` namespaces; links are veth pairs created directly inside them."""

    name = "netns"

    def create_node(self, node: NodePlan) -> None:
        """Create the node's namespace and bring its loopback up."""
        self._create_namespace(node.netns)

    def _create_namespace(self, name: str) -> None:
        if not namespaces.exists(name):
            namespaces.create(name)
        with IPRoute(netns=name) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")

    def create_link(self, plan: LabPlan, link: LinkPlan) -> None:
        """Create the veth pair with each end born in its own namespace, so nothing touches the root one."""
        ns_a = plan.nodes[link.a.node].netns
        ns_b = plan.nodes[link.b.node].netns
        with IPRoute(netns=ns_a) as ipr:
            if ipr.link_lookup(ifname=link.a.ifname):
                return
            ipr.link(
                "add",
                ifname=link.a.ifname,
                kind="veth",
                peer={"ifname": link.b.ifname, "net_ns_fd": str(NETNS_DIR / ns_b)},
            )
        # No GRO on the end that receives from a traffic source (a host): trafgen's full-rate floods fill that
        # ring faster than NAPI empties it, and trafgen takes its packet ring's frames still held there
        # for an error (EAGAIN); the backlog a veth uses without GRO drops them instead.
        sources = (plan.nodes[link.a.node].role == "host", plan.nodes[link.b.node].role == "host")
        tune_veth_pair(ns_a, link.a.ifname, ns_b, link.b.ifname, gro=(not sources[1], not sources[0]))

    def create_bridge(self, plan: LabPlan, bridge: BackplanePlan) -> None:
        """A bridge in a namespace of its own, and a veth from it into each node with the planned address,
        MAC (so XDP can address any node without ARP) and MTU."""
        self._create_namespace(bridge.netns)
        with IPRoute(netns=bridge.netns) as ipr:
            if not ipr.link_lookup(ifname=bridge.bridge):
                ipr.link("add", ifname=bridge.bridge, kind="bridge", br_stp_state=0, br_forward_delay=0)
            master = ipr.link_lookup(ifname=bridge.bridge)[0]
            for port in bridge.ports:
                node_ns = plan.nodes[port.edge].netns
                if not ipr.link_lookup(ifname=port.bridge_port):
                    # Born with its other end inside the node: nothing of the lab touches the root namespace.
                    peer = {"ifname": port.ifname, "net_ns_fd": str(NETNS_DIR / node_ns), "address": port.mac}
                    ipr.link("add", ifname=port.bridge_port, kind="veth", peer=peer)
                    # GRO only on the edge's side: on the bridge's it would merge IP-in-IP packets that
                    # the bridge then hands, unsegmented, to an edge's XDP, which takes none above the MTU.
                    set_gro(node_ns, port.ifname, True)
                index = ipr.link_lookup(ifname=port.bridge_port)[0]
                ipr.link("set", index=index, mtu=bridge.mtu, master=master, state="up")
                with IPRoute(netns=node_ns) as node:
                    end = node.link_lookup(ifname=port.ifname)[0]
                    node.link("set", index=end, mtu=bridge.mtu, address=port.mac, state="up")
                    add_address(node, end, port.address)
            ipr.link("set", index=master, mtu=bridge.mtu, state="up")

    def node_exists(self, node: NodePlan) -> bool:
        """Whether the node's namespace exists."""
        return namespaces.exists(node.netns)

    def netlink(self, node: NodePlan) -> IPRoute:
        """An rtnetlink socket inside the node's namespace."""
        return IPRoute(netns=node.netns)

    def enter(self, node: NodePlan) -> AbstractContextManager[None]:
        """The calling thread inside the node's namespace for the block."""
        return namespaces.inside(node.netns)

    def run(self, node: NodePlan, argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess:
        """Run a command inside the node's namespace."""
        return namespaces.run_in(node.netns, argv, **kwargs)

    def popen(self, node: NodePlan, argv: Sequence[str], **kwargs: object) -> subprocess.Popen:
        """Start a command inside the node's namespace."""
        return namespaces.popen_in(node.netns, argv, **kwargs)

    def destroy(self, lab: str, prefix: str) -> list[str]:
        """Kill every process in the lab's namespaces, then remove the namespaces."""
        own = guard.lab_prefix(lab)
        if not prefix.startswith(own):
            raise EdgesimError(
                Problem(f"prefix {prefix!r}", f"is not inside lab {lab}'s {own!r}", "refusing")
            )
        names = namespaces.list_with_prefix(prefix)
        pids = [pid for group in namespaces.pids_in(names).values() for pid in group]
        namespaces.kill_pids(pids)
        for name in names:
            namespaces.remove(name, own)
        return names
