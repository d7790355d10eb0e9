"""The plan's records: every concrete thing `up` creates, as immutable pydantic models. Pure data."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from edgesim.dispatch.bindings import BindingTable
from edgesim.mitigation.rules import RuleSet
from edgesim.model import PlanRole
from edgesim.tenants.spec import TenantSpec


def _none(value: Any) -> bool:
    return value is None


def _empty(value: Any) -> bool:
    return not value


class Frozen(BaseModel):
    """Base of every plan record: immutable and free of unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class InterfacePlan(Frozen):
    """One end of a link inside a node."""

    name: str
    peer_node: str
    peer_ifname: str
    address: str  # CIDR, e.g. 198.18.0.1/31
    peer_address: str  # the other end's address, without prefix length


class NextHop(Frozen):
    """A gateway reached through one of the node's interfaces."""

    gateway: str
    ifname: str


class RoutePlan(Frozen):
    """A route; more than one next hop makes it an ECMP (multipath) route."""

    dst: str
    nexthops: list[NextHop]
    # Route MTU, where a tunnel's overhead must be left free; absent (and not in plan.json) otherwise.
    mtu: int | None = Field(None, exclude_if=_none)


class ServicePlan(Frozen):
    """A long-running process the lab supervises inside a node: a Python module of edgesim, or a command."""

    name: str
    module: str | None  # run as `python -m module args…`; None: `args` is the whole command line
    args: list[str]
    listens: list[str]  # address:port (TCP) or unix:/path it must accept connections on before `up` succeeds
    # address:port where it serves Prometheus /metrics: the lab's Prometheus scrapes every such service.
    metrics: str | None = Field(None, exclude_if=_none)

    def argv(self, python: str) -> list[str]:
        """The command line to start the service with, given the interpreter for Python modules."""
        return [python, "-m", self.module, *self.args] if self.module else list(self.args)


class TunnelPlan(Frozen):
    """A customer site router's end of its tenant's GRE tunnel to the edges' anycast endpoint."""

    mode: str  # kernel | ebpf | auto (auto: kernel when this kernel has ip_gre, else ebpf)
    ifname: str  # the public interface, towards the router
    local: str  # the site router's public address (outer source of what it sends)
    remote: str  # the edges' anycast GRE endpoint
    tenant: int  # the tenant's id
    prefixes: list[str]  # the tenant's prefixes: what they send goes back into the tunnel


class TenancyPlan(Frozen):
    """Lab-wide tenant settings: where the config store runs and the address pools tenants draw from."""

    store_node: str  # the management node running etcd
    store_url: str  # etcd's client URL from inside the management node
    gre_endpoint: str  # the anycast GRE endpoint on every edge
    prefix_pool: str  # pools.tenants: tenant prefixes lie inside it
    site_pool: str  # pools.internet: customer site routers' public addresses lie inside it
    veth_pool: str  # the infra /24 whose /31s join each edge to its tenant namespaces
    refused: dict[str, str] = {}  # prefix -> why a tenant's traffic never goes there (tenants.planner)


class ScrapeTarget(Frozen):
    """One service's /metrics that the lab's Prometheus scrapes, and the labels it adds to its series."""

    job: str  # the service's name (xdp, tenants, ...)
    node: str
    address: str  # address:port, reachable from the node running Prometheus


class MetricsPlan(Frozen):
    """The lab's Prometheus: where it runs, what it scrapes, and the host's loopback forward to its UI."""

    node: str  # the management node
    listen: str  # address:port inside that node
    config: str  # files relative to the lab's state directory
    data: str
    scrape_interval_s: float
    targets: list[ScrapeTarget]
    ui_port: int  # the relay's first choice on the host's 127.0.0.1 (the next free one if taken)
    ui_record: str  # where the relay writes the address it listens on


class BgpPeer(Frozen):
    """A BGP session to a directly connected neighbour."""

    node: str
    address: str  # the neighbour's address on the link
    local: str  # this node's address on the link
    asn: int


class BgpPlan(Frozen):
    """A node's BIRD instance: AS, sessions, failure detection, filters, and its files."""

    asn: int
    router_id: str
    peers: list[BgpPeer]
    owned: list[str]  # the PoP's anycast pools: all the router accepts, all an edge may announce
    bfd_interval_ms: int
    bfd_multiplier: int
    hold_s: int
    keepalive_s: int
    config: str  # files relative to the lab's state directory
    socket: str
    pidfile: str
    announcements: str | None  # edges: the include file holding what the edge announces now


class NodePlan(Frozen):
    """Everything needed to build and configure one node."""

    name: str
    role: PlanRole
    netns: str
    sysctls: dict[str, str]
    interfaces: list[InterfacePlan]
    loopback: list[str]  # CIDRs added to lo (anycast VIPs on edges)
    anycast: list[str]  # prefixes this node serves for the whole PoP (edges); the router spreads them by ECMP
    routes: list[RoutePlan]
    services: list[ServicePlan]
    uplink: str | None  # the interface facing the router (None on the router itself)
    # Interfaces that get a pass XDP program, so that XDP_TX frames from their peer are received.
    xdp_pass: list[str]
    bgp: BgpPlan | None = None  # routing: bgp — the node's BIRD instance
    tunnel: TunnelPlan | None = Field(None, exclude_if=_none)  # customer site routers

    def interface_to(self, peer: str) -> InterfacePlan:
        """This node's interface facing `peer`."""
        return next(i for i in self.interfaces if i.peer_node == peer)


class DnsPlan(Frozen):
    """The edges' DNS: the zone, its A records, the socket filter's starting limit and its files."""

    zone: str
    records: dict[str, str]  # label -> IPv4 address, inside the zone
    serves: list[str]  # the destination addresses answered (the VIPs); others are ignored
    rate: int  # queries per second per source
    burst: int
    enabled: bool
    limit_file: str  # the limit set at run time (`dns limit`), relative to the state directory
    sockets: dict[str, str]  # edge -> its DNS service's control socket, relative to the state directory


class DispatchPlan(Frozen):
    """Socket dispatch on every edge: the bindings table it starts with, and each edge's agent socket."""

    table: BindingTable
    table_file: str  # the table in force (`dispatch bind|unbind|register`), relative to the state directory
    sockets: dict[str, str]  # edge -> its dispatch agent's control socket, relative to the state directory


class BackplanePort(Frozen):
    """An edge's attachment to the backplane: its interface, the bridge's port facing it, address and MAC."""

    edge: str
    ifname: str  # in the edge
    bridge_port: str  # in the backplane namespace
    address: str  # CIDR
    mac: str  # fixed, so every edge knows every other edge's MAC without ARP


class BackplanePlan(Frozen):
    """The edges' shared L2 segment for the L4 load balancer: a bridge in its own lab namespace."""

    netns: str
    bridge: str
    subnet: str
    mtu: int
    ports: list[BackplanePort]

    def port_of(self, edge: str) -> BackplanePort:
        """The port of one edge."""
        return next(p for p in self.ports if p.edge == edge)


class LinkEnd(Frozen):
    """A link endpoint: node and interface name."""

    node: str
    ifname: str


class LinkPlan(Frozen):
    """A point-to-point link (veth pair) and its subnet."""

    a: LinkEnd
    b: LinkEnd
    subnet: str


class LabPlan(Frozen):
    """The whole lab, concrete: what `up` creates and `down` removes."""

    lab: str
    netns_prefix: str
    routing: str  # bgp | static
    vips: list[str]
    nodes: dict[str, NodePlan]
    links: list[LinkPlan]
    mitigation: RuleSet  # the rules every edge's XDP program starts with, each with its counter slot
    # With tenants: the store and pools, and the tenants `up` seeds the store with. Absent without tenants.
    tenancy: TenancyPlan | None = Field(None, exclude_if=_none)
    tenants: list[TenantSpec] = Field(default_factory=list, exclude_if=_empty)
    backplane: BackplanePlan | None = None  # None when the infra pool has no room for it
    dns: DnsPlan | None = Field(None, exclude_if=_none)  # the edges' DNS, with a `dns:` section
    dispatch: DispatchPlan | None = Field(None, exclude_if=_none)  # sk_lookup, with a `dispatch:` section
    # Processes the supervisor runs in the host's root namespace (only loopback relays: nothing routed).
    host_services: list[ServicePlan] = Field(default_factory=list, exclude_if=_empty)
    metrics: MetricsPlan | None = Field(None, exclude_if=_none)  # with a management node only

    def namespaces(self) -> list[str]:
        """Every namespace of the lab, in creation order."""
        extra = [self.backplane.netns] if self.backplane else []
        return [node.netns for node in self.nodes.values()] + extra

    def nodes_with_role(self, role: PlanRole) -> list[NodePlan]:
        """The planned nodes with this role, in topology order."""
        return [node for node in self.nodes.values() if node.role == role]
