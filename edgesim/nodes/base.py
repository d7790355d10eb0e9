"""What every node role does: sysctls, interface addresses, loopback addresses and routes, and their undoing.

A role reaches its node only through the lab's backend (netlink, enter, run), so it configures a node the
same way whichever backend made it.
"""

from __future__ import annotations

import errno

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from edgesim import namespaces
from edgesim.backends.base import Backend
from edgesim.netlink import add_address, index_of, remove_address
from edgesim.plan import LabPlan, NodePlan, RoutePlan


class NodeRole:
    """Configures one node from its slice of the plan and undoes it; roles add what is specific to them."""

    role = ""

    def __init__(self, plan: LabPlan, node: NodePlan, backend: Backend) -> None:
        self.plan = plan
        self.node = node
        self.backend = backend

    def prepare(self) -> None:
        """Settings that must exist before links are created (sysctls inherited by new interfaces)."""
        with self.backend.enter(self.node):
            for key, value in self.node.sysctls.items():
                namespaces.write_sysctl_here(key, value)

    def configure(self) -> None:
        """Addresses, links up and routes; safe to run again on a configured node."""
        with self.backend.netlink(self.node) as ipr:
            for iface in self.node.interfaces:
                index = ipr.link_lookup(ifname=iface.name)[0]
                add_address(ipr, index, iface.address)
                ipr.link("set", index=index, state="up")
            lo = ipr.link_lookup(ifname="lo")[0]
            for cidr in self.node.loopback:
                add_address(ipr, lo, cidr)
            for route in self.node.routes:
                _replace_route(ipr, route)

    def teardown(self) -> None:
        """Undo `configure`: routes, loopback and interface addresses gone, links down (the node stays)."""
        with self.backend.netlink(self.node) as ipr:
            for route in self.node.routes:
                _delete_route(ipr, route)
            lo = ipr.link_lookup(ifname="lo")[0]
            for cidr in self.node.loopback:
                remove_address(ipr, lo, cidr)
            for iface in self.node.interfaces:
                index = index_of(ipr, iface.name)
                if index is not None:
                    remove_address(ipr, index, iface.address)
                    ipr.link("set", index=index, state="down")

    def summary_parts(self) -> list[str]:
        """What runs on this node, in a few words each, for the status table (features add their own)."""
        return [
            f"{s.name} on {', '.join(s.listens)}"
            for s in self.node.services
            if s.listens and not all(listen.startswith("unix:") for listen in s.listens)
        ]


def _replace_route(ipr: IPRoute, route: RoutePlan) -> None:
    hops = [{"gateway": h.gateway, "oif": ipr.link_lookup(ifname=h.ifname)[0]} for h in route.nexthops]
    extra = {"metrics": {"mtu": route.mtu}} if route.mtu else {}
    if len(hops) == 1:
        ipr.route("replace", dst=route.dst, **hops[0], **extra)
    else:
        ipr.route("replace", dst=route.dst, multipath=hops, **extra)


def _delete_route(ipr: IPRoute, route: RoutePlan) -> None:
    try:
        ipr.route("del", dst=route.dst)
    except NetlinkError as err:
        if err.code != errno.ESRCH:
            raise
