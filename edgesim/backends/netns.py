"""The default backend: each node is a named network namespace, each link a veth pair (pyroute2)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from pyroute2 import IPRoute

from edgesim import namespaces
from edgesim.namespaces import NETNS_DIR
from edgesim.plan import LabPlan, LinkPlan, NodePlan


class NetnsBackend:
    """Nodes are `<lab>-<node>` namespaces; links are veth pairs created directly inside them."""

    name = "netns"

    def create_node(self, node: NodePlan) -> None:
        """Create the node's namespace and bring its loopback up."""
        if not namespaces.exists(node.netns):
            namespaces.create(node.netns)
        with IPRoute(netns=node.netns) as ipr:
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

    def node_exists(self, node: NodePlan) -> bool:
        """Whether the node's namespace exists."""
        return namespaces.exists(node.netns)

    def run(self, node: NodePlan, argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess:
        """Run a command inside the node's namespace."""
        return namespaces.run_in(node.netns, argv, **kwargs)

    def popen(self, node: NodePlan, argv: Sequence[str], **kwargs: object) -> subprocess.Popen:
        """Start a command inside the node's namespace."""
        return namespaces.popen_in(node.netns, argv, **kwargs)

    def destroy(self, lab: str, prefix: str) -> list[str]:
        """Kill every process in the lab's namespaces, then remove the namespaces."""
        names = namespaces.list_with_prefix(prefix)
        pids = [pid for group in namespaces.pids_in(names).values() for pid in group]
        namespaces.kill_pids(pids)
        for name in names:
            namespaces.remove(name)
        return names
