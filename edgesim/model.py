"""The topology model: what a topology file may say, validated by pydantic."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Literal

from pydantic import Field, model_validator

from edgesim.dispatch.section import Dispatch
from edgesim.dns.section import Dns
from edgesim.fields import (
    LAB_NAME_MAX,
    LAB_NAME_PATTERN,
    NODE_NAME_MAX,
    NODE_NAME_PATTERN,
    LabName,
    NodeName,
    Port,
    Strict,
)
from edgesim.mitigation.rules import Mitigation
from edgesim.proxy.section import Keepalive, TcpProxy
from edgesim.tenants.section import Tenant
from edgesim.tenants.spec import TenantName

# The field types and the features' sections are part of the model's face: callers import them from here.
__all__ = [
    "ANYCAST_POOLS",
    "DESIGN_RANGES",
    "INFRA_RANGE",
    "LAB_NAME_MAX",
    "LAB_NAME_PATTERN",
    "MGMT_NODE",
    "NODE_NAME_MAX",
    "NODE_NAME_PATTERN",
    "RESERVED_ROLES",
    "Dispatch",
    "Dns",
    "Keepalive",
    "LabName",
    "Link",
    "Node",
    "NodeName",
    "PlanRole",
    "Pools",
    "Port",
    "Role",
    "Strict",
    "TcpProxy",
    "Tenant",
    "Topology",
    "Vip",
]

# The roles a topology's node may have. The plan adds nodes of its own with roles of their own (mgmt, the
# tenants' config store): PlanRole is every role a planned node can have.
Role = Literal["router", "edge", "host", "customer"]
PlanRole = Literal["router", "edge", "host", "customer", "mgmt"]
# How the router learns the anycast prefixes: from the edges' BGP announcements (BIRD), or static routes.
Routing = Literal["bgp", "static"]
# Tenants are not nodes: they are declared under `tenants:` and get a namespace on every edge. Writing the
# word as a role gets a hint of its own (load), rather than a bare "not allowed" listing the roles there are.
RESERVED_ROLES = frozenset({"tenant"})
# What a customer server can run (ports 80, and 21 with active-mode data from port 20).
CustomerService = Literal["http", "ftp"]
# GRE on a customer site router: the kernel's ip_gre device, edgesim's eBPF programs, or kernel when present.
GreMode = Literal["kernel", "ebpf", "auto"]
# The management namespace (config store) is planned as a node of this name when there are tenants.
MGMT_NODE = "mgmt"

# DESIGN.md's address plan: each pool must lie inside its range; RFC 1918 is never used.
DESIGN_RANGES: dict[str, IPv4Network] = {
    "infra": IPv4Network("198.18.0.0/16"),
    "vips": IPv4Network("198.51.100.0/24"),
    "gre": IPv4Network("192.0.2.0/24"),
    "tenants": IPv4Network("203.0.113.0/24"),
    "internet": IPv4Network("100.64.0.0/10"),
}

# RFC 2544's benchmarking range: the infrastructure pool lies in it, and so do the hosts' management networks
# (198.19.0.0/16). Nothing from the outside or from a tenant may reach it.
INFRA_RANGE = IPv4Network("198.18.0.0/15")

# The pools whose prefixes belong to the PoP's edges: the only ones an edge may announce.
ANYCAST_POOLS = ("vips", "gre", "tenants")


class Pools(Strict):
    """Address pools the plan allocates from (defaults: DESIGN.md's address plan)."""

    infra: IPv4Network = Field(DESIGN_RANGES["infra"], description="Point-to-point and infrastructure links.")
    vips: IPv4Network = Field(DESIGN_RANGES["vips"], description="Anycast service VIPs on every edge.")
    gre: IPv4Network = Field(DESIGN_RANGES["gre"], description="Anycast GRE endpoint shared by every edge.")
    tenants: IPv4Network = Field(DESIGN_RANGES["tenants"], description="Customer (tenant) prefixes.")
    internet: IPv4Network = Field(
        DESIGN_RANGES["internet"], description="Internet clients, attackers, customer routers' public side."
    )


class Vip(Strict):
    """An anycast service address served by every edge node."""

    address: IPv4Address = Field(description="The VIP, inside pools.vips.")
    ports: list[Port] = Field(default_factory=lambda: [80], min_length=1, description="TCP ports served.")


class Node(Strict):
    """One node of the lab and the role it plays."""

    role: Role = Field(description="router | edge | host | customer (tenants are declared under `tenants`).")
    description: str = ""
    announce: list[IPv4Network] = Field(
        default_factory=list,
        description="Edges only: prefixes this edge announces besides pools.vips (inside pools.vips, gre or "
        "tenants); the router sends them to the edges announcing them.",
    )
    tenant: TenantName | None = Field(
        None, description="Customer nodes: the tenant whose site they are part of."
    )
    address: IPv4Address | None = Field(
        None, description="Customer servers: their address inside the tenant's prefixes."
    )
    services: list[CustomerService] = Field(
        default_factory=list, description="Customer servers: what they serve (http on 80, ftp on 20/21)."
    )
    gre: GreMode | None = Field(
        None, description="Customer site routers: GRE by the kernel's ip_gre, by eBPF, or auto (default)."
    )


class Link(Strict):
    """A point-to-point link between two nodes (a veth pair in the netns backend)."""

    endpoints: tuple[NodeName, NodeName] = Field(description="The two nodes the link joins.")


class BgpTimers(Strict):
    """BFD and BGP timers of every session between the router and the edges.

    The defaults detect a dead edge in 300 ms. On a slow machine (a VM under QEMU's software emulation
    runs this lab many times slower) a busy BIRD misses that deadline and the sessions flap:
    give such a machine longer ones.
    """

    bfd_interval_ms: int = Field(100, ge=10, le=10000, description="BFD transmit and receive interval.")
    bfd_multiplier: int = Field(3, ge=1, le=255, description="BFD packets missed before a neighbour is down.")
    hold_s: int = Field(3, ge=3, le=65535, description="BGP hold time (the fallback when BFD itself fails).")
    keepalive_s: int = Field(1, ge=1, le=21845, description="BGP keepalive interval, at most hold_s / 3.")

    @model_validator(mode="after")
    def _keepalive_fits_hold(self) -> BgpTimers:
        if self.keepalive_s * 3 > self.hold_s:
            raise ValueError(f"keepalive_s {self.keepalive_s} is more than a third of hold_s {self.hold_s}")
        return self


class Topology(Strict):
    """A whole lab: its name, address pools, VIPs, nodes and links."""

    lab: LabName = Field(description="Lab name: prefix of every namespace (`<lab>-<node>`).")
    description: str = ""
    routing: Routing = Field(
        "bgp",
        description="bgp: the edges announce their prefixes to the router over BGP with BFD (BIRD); "
        "static: the router gets fixed ECMP routes (hosts without BIRD).",
    )
    bgp_timers: BgpTimers = Field(
        default_factory=BgpTimers,
        description="routing bgp: BFD and BGP timers of the router's sessions with the edges (longer ones "
        "for slow machines).",
    )
    pools: Pools = Field(default_factory=Pools)
    vips: list[Vip] = Field(min_length=1, description="Anycast VIPs served by every edge.")
    nodes: dict[NodeName, Node] = Field(min_length=1)
    links: list[Link] | None = Field(
        None,
        description="Links; when omitted, every node gets one link to the router "
        "(a customer server: to its tenant's site router).",
    )
    tenants: dict[TenantName, Tenant] | None = Field(
        None,
        description="Customers served by every edge; `up` then also runs the config store (etcd) and an "
        "agent per edge.",
    )
    mitigation: Mitigation = Field(
        default_factory=Mitigation, description="XDP DoS mitigation rules applied on every edge's uplink."
    )
    proxy: TcpProxy | None = Field(None, description="The edges' TCP proxy to an origin host (optional).")
    dns: Dns | None = Field(
        None, description="The edges' authoritative DNS on the VIPs, behind a per-source socket filter."
    )
    dispatch: Dispatch | None = Field(
        None, description="Socket dispatch with sk_lookup on every edge: all-ports proxy, shared ports."
    )

    def nodes_with_role(self, role: Role) -> list[str]:
        """Names of the nodes with this role, in file order."""
        return [name for name, node in self.nodes.items() if node.role == role]

    def effective_links(self) -> list[Link]:
        """The links as given, or the default star around the router."""
        if self.links is not None:
            return self.links
        routers = self.nodes_with_role("router")
        if len(routers) != 1:
            return []
        return [
            Link(endpoints=(self.uplink_of(name) or routers[0], name))
            for name in self.nodes
            if name != routers[0]
        ]

    def site_of(self, tenant: str) -> str | None:
        """The site router node of a tenant, when the tenant is declared."""
        declared = (self.tenants or {}).get(tenant)
        return declared.site if declared else None

    def is_customer_server(self, name: str) -> bool:
        """Whether a node is a customer server (a customer node that is not its tenant's site router)."""
        node = self.nodes.get(name)
        return (
            node is not None
            and node.role == "customer"
            and node.tenant is not None
            and self.site_of(node.tenant) not in (None, name)
        )

    def uplink_of(self, name: str) -> str | None:
        """The node a customer server hangs off (its site router); None for every other node (the router)."""
        if not self.is_customer_server(name):
            return None
        return self.site_of(self.nodes[name].tenant or "")
