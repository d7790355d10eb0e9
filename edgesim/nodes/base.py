"""What every node role does: sysctls, interface addresses, loopback addresses and routes, via pyroute2."""

from __future__ import annotations

import errno

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from edgesim import namespaces
from edgesim.plan import LabPlan, NodePlan, RoutePlan


class NodeRole:
    """Configures one node from its slice of the plan; roles add what is specific to them."""

    role = ""

    def __init__(self, plan: LabPlan, node: NodePlan) -> None:
        self.plan = plan
        self.node = node

    def prepare(self) -> None:
        """Settings that must exist before links are created (sysctls inherited by new interfaces)."""
        for key, value in self.node.sysctls.items():
            namespaces.write_sysctl(self.node.netns, key, value)

    def configure(self) -> None:
        """Addresses, links up and routes; safe to run again on a configured node."""
        with IPRoute(netns=self.node.netns) as ipr:
            for iface in self.node.interfaces:
                index = ipr.link_lookup(ifname=iface.name)[0]
                add_address(ipr, index, iface.address)
                ipr.link("set", index=index, state="up")
            lo = ipr.link_lookup(ifname="lo")[0]
            for cidr in self.node.loopback:
                add_address(ipr, lo, cidr)
            for route in self.node.routes:
                _replace_route(ipr, route)

    def started(self) -> None:
        """Work that needs the node's own services running (`up` calls it once they all listen)."""

    def summary(self) -> str:
        """What runs on this node, in a few words, for the status table."""
        return ", ".join(s.name for s in self.node.services) or "-"


def add_address(ipr: IPRoute, index: int, cidr: str) -> None:
    """Add an address to an interface; one that is already there is fine."""
    address, prefixlen = cidr.split("/")
    try:
        ipr.addr("add", index=index, address=address, prefixlen=int(prefixlen))
    except NetlinkError as err:
        if err.code != errno.EEXIST:
            raise


def _replace_route(ipr: IPRoute, route: RoutePlan) -> None:
    hops = [{"gateway": h.gateway, "oif": ipr.link_lookup(ifname=h.ifname)[0]} for h in route.nexthops]
    extra = {"metrics": {"mtu": route.mtu}} if route.mtu else {}
    if len(hops) == 1:
        ipr.route("replace", dst=route.dst, **hops[0], **extra)
    else:
        ipr.route("replace", dst=route.dst, multipath=hops, **extra)
