"""The plan while it is being built: mutable drafts that the role and feature planners fill in, then freeze.

Each planner gets the one PlanBuilder and adds to it (a node's services, routes, sysctls; links; the lab's
feature sections); `freeze` turns it into the immutable LabPlan.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from ipaddress import IPv4Network
from typing import Any

from edgesim.errors import EdgesimError, Problem
from edgesim.model import MGMT_NODE, Topology
from edgesim.plan.addressing import host_address
from edgesim.plan.naming import ifname_for, netns_name
from edgesim.plan.records import (
    BgpPlan,
    InterfacePlan,
    LabPlan,
    LinkEnd,
    LinkPlan,
    NodePlan,
    RoutePlan,
    ServicePlan,
    TunnelPlan,
)


@dataclass
class NodeDraft:
    """A node's plan while planners still add to it (NodePlan's fields, mutable)."""

    name: str
    role: str
    interfaces: list[InterfacePlan]
    sysctls: dict[str, str] = field(default_factory=dict)
    loopback: list[str] = field(default_factory=list)
    anycast: list[str] = field(default_factory=list)
    # What the topology has this node announce itself: after every planner's prefixes in `anycast`.
    announce: list[str] = field(default_factory=list)
    routes: list[RoutePlan] = field(default_factory=list)
    services: list[ServicePlan] = field(default_factory=list)
    uplink: str | None = None
    xdp_pass: list[str] = field(default_factory=list)
    bgp: BgpPlan | None = None
    tunnel: TunnelPlan | None = None

    def service(self, name: str) -> ServicePlan:
        """The planned service called `name`."""
        return next(s for s in self.services if s.name == name)

    def replace_service(self, service: ServicePlan) -> None:
        """Put `service` in the place of the planned service of the same name."""
        self.services = [service if s.name == service.name else s for s in self.services]

    def interface_to(self, peer: str) -> InterfacePlan:
        """This node's interface facing `peer`."""
        return next(i for i in self.interfaces if i.peer_node == peer)

    def metrics_listen(self, port: int) -> str | None:
        """Where a service of this node serves /metrics: its management address, or None without one."""
        mgmt = next((i for i in self.interfaces if i.peer_node == MGMT_NODE), None)
        return f"{host_address(mgmt.address)}:{port}" if mgmt is not None else None

    def freeze(self, lab: str) -> NodePlan:
        """The immutable NodePlan."""
        planned = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "announce"}
        return NodePlan(
            **{**planned, "anycast": [*self.anycast, *self.announce]}, netns=netns_name(lab, self.name)
        )


@dataclass
class PlanBuilder:
    """Everything planned so far: interfaces and links, node drafts, and the lab's feature sections."""

    topology: Topology
    router: str
    interfaces: dict[str, list[InterfacePlan]] = field(default_factory=dict)
    links: list[LinkPlan] = field(default_factory=list)
    nodes: dict[str, NodeDraft] = field(default_factory=dict)
    # LabPlan's feature fields (mitigation, tenancy, tenants, backplane), set by their planners.
    sections: dict[str, Any] = field(default_factory=dict)

    @property
    def lab(self) -> str:
        """The lab's name."""
        return self.topology.lab

    def add_link(self, a: str, b: str, subnet: IPv4Network) -> None:
        """Plan the link a-b on `subnet` (a takes the lower address) and record both interfaces."""
        addr_a, addr_b = subnet[0], subnet[1]
        if_a, if_b = ifname_for(b), ifname_for(a)
        self.interfaces.setdefault(a, []).append(
            InterfacePlan(
                name=if_a, peer_node=b, peer_ifname=if_b, address=f"{addr_a}/31", peer_address=str(addr_b)
            )
        )
        self.interfaces.setdefault(b, []).append(
            InterfacePlan(
                name=if_b, peer_node=a, peer_ifname=if_a, address=f"{addr_b}/31", peer_address=str(addr_a)
            )
        )
        self.links.append(
            LinkPlan(a=LinkEnd(node=a, ifname=if_a), b=LinkEnd(node=b, ifname=if_b), subnet=str(subnet))
        )

    def add_node(self, draft: NodeDraft, first: bool = False) -> None:
        """Add a node the topology does not list (e.g. the management node); `first` puts it before all."""
        self.nodes = {draft.name: draft, **self.nodes} if first else {**self.nodes, draft.name: draft}

    def with_role(self, role: str) -> list[NodeDraft]:
        """The drafts of the nodes with this role, in plan order."""
        return [node for node in self.nodes.values() if node.role == role]

    def check_ifnames(self) -> None:
        """Refuse two interfaces of one node with the same name (peers whose names shorten alike)."""
        problems = []
        for node, ifaces in self.interfaces.items():
            names = [i.name for i in ifaces]
            for name in sorted({n for n in names if names.count(n) > 1}):
                problems.append(
                    Problem(
                        f"nodes.{node}",
                        f"two interfaces would both be named {name}",
                        "rename one of the peers so their first letters differ",
                    )
                )
        if problems:
            raise EdgesimError(problems)

    def freeze(self) -> LabPlan:
        """The immutable LabPlan."""
        topology = self.topology
        return LabPlan(
            lab=self.lab,
            netns_prefix=f"{self.lab}-",
            routing=topology.routing,
            vips=[str(v.address) for v in topology.vips],
            nodes={name: draft.freeze(self.lab) for name, draft in self.nodes.items()},
            links=self.links,
            **self.sections,
        )
