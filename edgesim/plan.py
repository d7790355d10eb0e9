"""Turn a validated Topology into a LabPlan: every name, address, route and service. Pure: no I/O, no root."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from edgesim.errors import EdgesimError, Problem
from edgesim.lb import store as lb_store
from edgesim.mitigation import store as mitigation_store
from edgesim.mitigation.rules import RuleSet, build_rule_set
from edgesim.model import ANYCAST_POOLS, MGMT_NODE, TcpProxy, Topology
from edgesim.tenants.spec import TUNNEL_MTU, TenantSpec

IFNAME_MAX = 15  # IFNAMSIZ - 1: the kernel refuses longer interface names
IFNAME_PREFIX = "eth-"
HTTP_MODULE = "edgesim.services.http_echo"
XDP_AGENT_MODULE = "edgesim.mitigation.agent"
# BGP between the router and the edges (private AS numbers): the edges of a PoP share one AS.
ROUTER_ASN = 64512
EDGE_ASN = 64513
# BFD: a dead or silent neighbour is detected after multiplier x interval = 300 ms; BGP's hold time
# (the RFC 4271 minimum, 3 s) is the fallback when BFD itself is broken.
BFD_INTERVAL_MS = 100
BFD_MULTIPLIER = 3
BGP_HOLD_S = 3
BGP_KEEPALIVE_S = 1
# Each BIRD's files, relative to the lab's state directory (services run there; `down` removes it).
BIRD_DIR = "bird"
PROXY_MODULE = "edgesim.services.tcp_proxy"
ORIGIN_MODULE = "edgesim.services.origin"
FTP_MODULE = "edgesim.services.ftp_server"
TENANT_AGENT_MODULE = "edgesim.tenants.agent"
# Customer servers answer HTTP on 80 and on 8080, which the default firewall does not open (a rule can).
CUSTOMER_HTTP_PORTS = (80, 8080)
STORE_PORT = 2379
# etcd's data, relative to the lab's state directory (services run there; `down` removes it).
STORE_DIR = "etcd"
STORE_PEER_PORT = 2380
TENANT_AGENT_PORT = 9180
# The infra pool in /24 blocks, one per use; block 0 (router links) is the one plans had before tenants.
INFRA_BLOCKS = {"router links": 0, "management": 1, "tenant veths": 2, "customer sites": 3, "backplane": 4}


def _none(value: Any) -> bool:
    return value is None


def _empty(value: Any) -> bool:
    return not value


# The backplane between the edges (the L4 load balancer's forwarding path): a bridge in a namespace of its
# own, one veth per edge. Its MTU leaves room for the 20-byte IP-in-IP header around a 1500-byte packet.
BACKPLANE = "backplane"
BACKPLANE_BRIDGE = "br-backplane"
BACKPLANE_IFNAME = "eth-backplane"
BACKPLANE_MTU = 1600


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
    role: str
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

    def namespaces(self) -> list[str]:
        """Every namespace of the lab, in creation order."""
        extra = [self.backplane.netns] if self.backplane else []
        return [node.netns for node in self.nodes.values()] + extra

    def nodes_with_role(self, role: str) -> list[NodePlan]:
        """The planned nodes with this role, in topology order."""
        return [node for node in self.nodes.values() if node.role == role]


def netns_name(lab: str, node: str) -> str:
    """The namespace of a node: `<lab>-<node>`."""
    return f"{lab}-{node}"


def ifname_for(peer: str) -> str:
    """Interface name facing `peer`: `eth-<peer>`, shortened with a stable hash when over 15 characters."""
    name = f"{IFNAME_PREFIX}{peer}"
    if len(name) <= IFNAME_MAX:
        return name
    digest = hashlib.sha1(peer.encode()).hexdigest()[:5]
    keep = IFNAME_MAX - len(IFNAME_PREFIX) - len(digest) - 1
    return f"{IFNAME_PREFIX}{peer[:keep]}-{digest}"


def first_subnet(pool: IPv4Network, prefixlen: int = 24) -> IPv4Network:
    """The first /prefixlen of a pool (the pool itself when it is already that small)."""
    if pool.prefixlen >= prefixlen:
        return pool
    return next(pool.subnets(new_prefix=prefixlen))


def infra_block(pool: IPv4Network, use: str) -> IPv4Network:
    """The /24 of the infra pool set aside for `use` (INFRA_BLOCKS); an error when the pool is too small."""
    block = _infra_block_if_room(pool, use)
    if block is None:
        raise EdgesimError(
            Problem(
                "pools.infra",
                f"{pool} has no /24 left for {use} (labs with tenants use {len(INFRA_BLOCKS)} of them)",
                "use a /22 or larger",
            )
        )
    return block


def _infra_block_if_room(pool: IPv4Network, use: str) -> IPv4Network | None:
    """The /24 of the infra pool set aside for `use`, or None when the pool has no room for it."""
    index = INFRA_BLOCKS[use]
    if index == 0:
        return first_subnet(pool)
    if pool.prefixlen > 24 or index >= 2 ** (24 - pool.prefixlen):
        return None
    return IPv4Network((int(pool.network_address) + index * 256, 24))


def gre_endpoint(pool: IPv4Network) -> IPv4Address:
    """The anycast GRE endpoint: the first host address of pools.gre."""
    return pool[1] if pool.num_addresses > 1 else pool.network_address


# Sysctls per role. rp_filter is off where traffic is asymmetric by design (anycast, ECMP, spoofed floods
# that XDP must see); IPv6 is off so captures show only the lab's own traffic.
COMMON_SYSCTLS = {
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
    # A locally generated packet carries its socket's flow hash across the veths, and the router's ECMP uses
    # it as the L4 hash. By default TCP picks a new random hash on every retransmission timeout, which
    # would move a connection to another edge mid-flight, a thing no real router does to a 5-tuple.
    "net.core.txrehash": "0",
}
ROLE_SYSCTLS: dict[str, dict[str, str]] = {
    "router": {
        "net.ipv4.ip_forward": "1",
        "net.ipv4.fib_multipath_hash_policy": "1",  # hash on the L4 5-tuple, not just addresses
        "net.ipv4.conf.all.rp_filter": "0",
        "net.ipv4.conf.default.rp_filter": "0",
    },
    "edge": {
        "net.ipv4.ip_forward": "1",
        "net.ipv4.conf.all.rp_filter": "0",
        "net.ipv4.conf.default.rp_filter": "0",
    },
    "host": {
        "net.ipv4.ip_forward": "0",
    },
    # A customer site router forwards between its tunnel and its servers; servers are plain hosts.
    "customer": {
        "net.ipv4.ip_forward": "1",
        "net.ipv4.conf.all.rp_filter": "0",
        "net.ipv4.conf.default.rp_filter": "0",
    },
    "mgmt": {
        "net.ipv4.ip_forward": "0",
    },
}
# Edges serving tenants receive, from their tenant namespaces, GRE packets whose source (the anycast GRE
# endpoint) is one of their own addresses; without accept_local the kernel drops them as martians.
TENANT_EDGE_SYSCTLS = {
    "net.ipv4.conf.all.accept_local": "1",
    "net.ipv4.conf.default.accept_local": "1",
}


class _Allocator:
    """Hands out /31 point-to-point subnets from a pool, in order."""

    def __init__(self, pool: IPv4Network, field: str) -> None:
        self._subnets: Iterator[IPv4Network] = pool.subnets(new_prefix=31)
        self._pool = pool
        self._field = field

    def next(self) -> IPv4Network:
        """The next free /31, or an error naming the pool that ran out."""
        try:
            return next(self._subnets)
        except StopIteration:
            raise EdgesimError(
                Problem(self._field, f"{self._pool} has no /31 left for another link", "use a larger pool")
            ) from None


def build_plan(topology: Topology) -> LabPlan:
    """Compute the concrete lab from a validated topology."""
    lab = topology.lab
    (router,) = topology.nodes_with_role("router")
    infra = _Allocator(first_subnet(topology.pools.infra), "pools.infra")
    internet = _Allocator(first_subnet(topology.pools.internet), "pools.internet")
    vips = [str(v.address) for v in topology.vips]
    tenants = topology.tenants or {}
    sites = (
        _Allocator(infra_block(topology.pools.infra, "customer sites"), "pools.infra") if tenants else None
    )

    interfaces: dict[str, list[InterfacePlan]] = {name: [] for name in topology.nodes}
    links: list[LinkPlan] = []
    for link in topology.effective_links():
        a, b = link.endpoints
        # The router (or a server's site router) always takes the lower address, so its address is even.
        if b == router or (topology.uplink_of(a) == b):
            a, b = b, a
        if a != router:
            subnet = sites.next() if sites else infra.next()  # a customer site's LAN
        elif topology.nodes[b].role in ("host", "customer"):
            subnet = internet.next()  # the internet: clients, attackers, customer routers' public side
        else:
            subnet = infra.next()
        links.append(_link(interfaces, a, b, subnet))

    if tenants:
        interfaces[MGMT_NODE] = []
        mgmt = _Allocator(infra_block(topology.pools.infra, "management"), "pools.infra")
        for edge in topology.nodes_with_role("edge"):
            links.append(_link(interfaces, MGMT_NODE, edge, mgmt.next()))

    _check_ifnames(interfaces)
    gre = gre_endpoint(topology.pools.gre)
    tenant_specs = _tenant_specs(topology, interfaces)
    # Every prefix the edges serve together; each is one ECMP route on the router over the edges serving it.
    edge_anycast = [str(topology.pools.vips)]
    if tenants:
        edge_anycast += [f"{gre}/32", *(str(p) for t in tenant_specs for p in t.prefixes)]
    # What each edge serves: the common prefixes, and those the topology gives it alone.
    anycast_of = {
        name: [*edge_anycast, *(str(p) for p in node.announce)]
        for name, node in topology.nodes.items()
        if node.role == "edge"
    }
    owned = [str(getattr(topology.pools, pool)) for pool in ANYCAST_POOLS]
    _check_owned(anycast_of, owned)
    tenancy = (
        TenancyPlan(
            store_node=MGMT_NODE,
            store_url=f"http://127.0.0.1:{STORE_PORT}",
            gre_endpoint=str(gre),
            prefix_pool=str(topology.pools.tenants),
            site_pool=str(topology.pools.internet),
            veth_pool=str(infra_block(topology.pools.infra, "tenant veths")),
        )
        if tenants
        else None
    )

    backplane = _backplane_plan(topology)
    nodes: dict[str, NodePlan] = {}
    if tenancy is not None:
        # First: the store must be up and seeded before the edges' agents can report ready.
        nodes[MGMT_NODE] = NodePlan(
            name=MGMT_NODE,
            role="mgmt",
            netns=netns_name(lab, MGMT_NODE),
            sysctls={**COMMON_SYSCTLS, **ROLE_SYSCTLS["mgmt"]},
            interfaces=interfaces[MGMT_NODE],
            loopback=[],
            anycast=[],
            routes=[],
            services=[_etcd_service(lab, interfaces[MGMT_NODE])],
            uplink=None,
            xdp_pass=[],
        )
    for name, node in topology.nodes.items():
        uplinks = [i for i in interfaces[name] if i.peer_node == (topology.uplink_of(name) or router)]
        routes: list[RoutePlan] = []
        loopback: list[str] = []
        services: list[ServicePlan] = []
        anycast: list[str] = []
        xdp_pass: list[str] = []
        bgp: BgpPlan | None = None
        sysctls = {**COMMON_SYSCTLS, **ROLE_SYSCTLS[node.role]}
        tunnel: TunnelPlan | None = None
        if node.role == "router":
            edges = [i for i in interfaces[name] if topology.nodes[i.peer_node].role == "edge"]
            # Edges answer SYNs (and later forward packets) with XDP_TX: the receiving veth end needs XDP.
            xdp_pass = [i.name for i in edges]
            # With BGP the router's anycast routes come only from the edges' announcements.
            if topology.routing == "static":
                routes += _anycast_routes(edges, anycast_of)
            else:
                bgp = _bgp_plan(name, ROUTER_ASN, edges, EDGE_ASN, owned, announcements=False)
                services.append(_bird_service(bgp))
        else:
            uplink = uplinks[0]
            default = NextHop(gateway=uplink.peer_address, ifname=uplink.name)
            # A site router's traffic back to the internet goes through the tunnel: leave room for GRE.
            mtu = (
                TUNNEL_MTU
                if node.role == "customer" and node.tenant and name == topology.site_of(node.tenant)
                else None
            )
            routes.append(RoutePlan(dst="0.0.0.0/0", nexthops=[default], mtu=mtu))
        if node.role == "edge":
            loopback = [f"{vip}/32" for vip in vips]
            anycast = anycast_of[name]
            services.append(_http_service(name, topology, backplane))
            services.append(_xdp_agent(lab, name, uplinks[0].name, backplane))
            if topology.routing == "bgp":
                bgp = _bgp_plan(name, EDGE_ASN, uplinks, ROUTER_ASN, owned, announcements=True)
                services.append(_bird_service(bgp))
            if topology.proxy is not None:
                origin = interfaces[topology.proxy.origin][0].address.split("/")[0]
                services.append(_proxy_service(name, topology, topology.proxy, origin))
            if tenancy is not None:
                loopback.append(f"{gre}/32")
                sysctls.update(TENANT_EDGE_SYSCTLS)
                services.append(_agent_service(lab, name, interfaces[name], uplink.name, tenancy))
        if topology.proxy is not None and name == topology.proxy.origin:
            address = interfaces[name][0].address.split("/")[0]
            listen = f"{address}:{topology.proxy.origin_port}"
            services.append(
                ServicePlan(name="origin", module=ORIGIN_MODULE, args=["--listen", listen], listens=[listen])
            )
        if node.role == "customer" and topology.is_customer_server(name):
            sysctls.update(ROLE_SYSCTLS["host"])
            loopback = [f"{node.address}/32"]
            services += _customer_services(name, str(node.address), node.services)
        elif node.role == "customer":
            spec = next(t for t in tenant_specs if t.name == node.tenant)
            routes += [
                RoutePlan(
                    dst=f"{server.address}/32",
                    nexthops=[NextHop(gateway=i.peer_address, ifname=i.name)],
                )
                for i in interfaces[name]
                if (server := topology.nodes[i.peer_node]).role == "customer" and server.address
            ]
            tunnel = TunnelPlan(
                mode=node.gre or "auto",
                ifname=uplink.name,
                local=str(spec.site),
                remote=str(gre),
                tenant=spec.id,
                prefixes=[str(p) for p in spec.prefixes],
            )
        nodes[name] = NodePlan(
            name=name,
            role=node.role,
            netns=netns_name(lab, name),
            sysctls=sysctls,
            interfaces=interfaces[name],
            loopback=loopback,
            anycast=anycast,
            routes=routes,
            services=services,
            tunnel=tunnel,
            uplink=uplinks[0].name if uplinks else None,
            xdp_pass=xdp_pass,
            bgp=bgp,
        )
    mitigation = build_rule_set(list(topology.mitigation.rules))
    return LabPlan(
        lab=lab,
        netns_prefix=f"{lab}-",
        routing=topology.routing,
        vips=vips,
        nodes=nodes,
        links=links,
        mitigation=mitigation,
        tenancy=tenancy,
        tenants=tenant_specs,
        backplane=backplane,
    )


def backplane_subnet(infra: IPv4Network) -> IPv4Network | None:
    """The backplane's /24 of the infra pool (INFRA_BLOCKS), or None when the pool has no room for it."""
    return _infra_block_if_room(infra, "backplane")


def backplane_mac(address: str) -> str:
    """A locally administered MAC derived from the backplane address (02:e5 + its four bytes)."""
    packed = IPv4Network(f"{address}/32").network_address.packed
    return ":".join(f"{b:02x}" for b in (0x02, 0xE5, *packed))


def _backplane_plan(topology: Topology) -> BackplanePlan | None:
    """A backplane for two or more edges, when the infra pool has room for one."""
    edges = [name for name, node in topology.nodes.items() if node.role == "edge"]
    subnet = backplane_subnet(topology.pools.infra)
    if len(edges) < 2 or subnet is None:
        return None
    if BACKPLANE in topology.nodes:
        raise EdgesimError(
            Problem(f"nodes.{BACKPLANE}", "the name is taken by the edges' backplane", "rename the node")
        )
    hosts = subnet.hosts()
    ports = []
    for edge in edges:
        address = str(next(hosts))
        port = f"bp-{edge}"
        if len(port) > IFNAME_MAX:
            port = f"bp-{hashlib.sha1(edge.encode()).hexdigest()[:8]}"
        ports.append(
            BackplanePort(
                edge=edge,
                ifname=BACKPLANE_IFNAME,
                bridge_port=port,
                address=f"{address}/{subnet.prefixlen}",
                mac=backplane_mac(address),
            )
        )
    return BackplanePlan(
        netns=netns_name(topology.lab, BACKPLANE),
        bridge=BACKPLANE_BRIDGE,
        subnet=str(subnet),
        mtu=BACKPLANE_MTU,
        ports=ports,
    )


def _anycast_routes(edges: list[InterfacePlan], anycast_of: dict[str, list[str]]) -> list[RoutePlan]:
    """Static routing: one route per anycast prefix, over every edge that serves it."""
    prefixes = list(dict.fromkeys(p for served in anycast_of.values() for p in served))
    return [
        RoutePlan(
            dst=prefix,
            nexthops=[
                NextHop(gateway=i.peer_address, ifname=i.name)
                for i in edges
                if prefix in anycast_of[i.peer_node]
            ],
        )
        for prefix in prefixes
    ]


def _bgp_plan(
    node: str, asn: int, links: list[InterfacePlan], peer_asn: int, owned: list[str], announcements: bool
) -> BgpPlan:
    """A BIRD instance with one eBGP session (and BFD) over each of `links`."""
    peers = [
        BgpPeer(node=i.peer_node, address=i.peer_address, local=i.address.split("/")[0], asn=peer_asn)
        for i in links
    ]
    files = f"{BIRD_DIR}/{node}"
    return BgpPlan(
        asn=asn,
        # Any address of the node is a unique router id; its first session's is the easiest to recognise.
        router_id=peers[0].local,
        peers=peers,
        owned=owned,
        bfd_interval_ms=BFD_INTERVAL_MS,
        bfd_multiplier=BFD_MULTIPLIER,
        hold_s=BGP_HOLD_S,
        keepalive_s=BGP_KEEPALIVE_S,
        config=f"{files}.conf",
        socket=f"{files}.ctl",
        pidfile=f"{files}.pid",
        announcements=f"{files}.announce.conf" if announcements else None,
    )


def _bird_service(bgp: BgpPlan) -> ServicePlan:
    # -f: stay in the foreground under the supervisor. Paths are relative to the lab's state directory,
    # where the supervisor runs services. Readiness is the router's routes (checked by `up`), not a port.
    return ServicePlan(
        name="bird",
        module=None,
        args=["bird", "-f", "-c", bgp.config, "-s", bgp.socket, "-P", bgp.pidfile],
        listens=[],
    )


def _link(interfaces: dict[str, list[InterfacePlan]], a: str, b: str, subnet: IPv4Network) -> LinkPlan:
    """Plan the link a-b on `subnet` (a takes the lower address) and record both interfaces."""
    addr_a, addr_b = subnet[0], subnet[1]
    if_a, if_b = ifname_for(b), ifname_for(a)
    interfaces[a].append(
        InterfacePlan(
            name=if_a, peer_node=b, peer_ifname=if_b, address=f"{addr_a}/31", peer_address=str(addr_b)
        )
    )
    interfaces[b].append(
        InterfacePlan(
            name=if_b, peer_node=a, peer_ifname=if_a, address=f"{addr_b}/31", peer_address=str(addr_a)
        )
    )
    return LinkPlan(a=LinkEnd(node=a, ifname=if_a), b=LinkEnd(node=b, ifname=if_b), subnet=str(subnet))


def _tenant_specs(topology: Topology, interfaces: dict[str, list[InterfacePlan]]) -> list[TenantSpec]:
    """The store records of the topology's tenants: ids in file order, the site router's public address."""
    specs = []
    for index, (name, tenant) in enumerate((topology.tenants or {}).items(), start=1):
        public = next(i for i in interfaces[tenant.site] if topology.nodes[i.peer_node].role == "router")
        specs.append(
            TenantSpec(
                name=name,
                id=index,
                prefixes=list(tenant.prefixes),
                site=IPv4Address(public.address.split("/")[0]),
                rules=list(tenant.firewall),
            )
        )
    return specs


def _etcd_service(lab: str, interfaces: list[InterfacePlan]) -> ServicePlan:
    """etcd in the management node: one member, listening on loopback and on its end of every edge link."""
    local = f"http://127.0.0.1:{STORE_PORT}"
    clients = [local, *(f"http://{i.address.split('/')[0]}:{STORE_PORT}" for i in interfaces)]
    peer = f"http://127.0.0.1:{STORE_PEER_PORT}"
    args = [
        "etcd",
        "--name",
        lab,
        "--data-dir",
        STORE_DIR,
        "--listen-client-urls",
        ",".join(clients),
        "--advertise-client-urls",
        local,
        "--listen-peer-urls",
        peer,
        "--initial-advertise-peer-urls",
        peer,
        "--initial-cluster",
        f"{lab}={peer}",
        "--logger",
        "zap",
        "--log-level",
        "warn",
    ]
    return ServicePlan(name="etcd", module=None, args=args, listens=[f"127.0.0.1:{STORE_PORT}"])


def _agent_service(
    lab: str, edge: str, interfaces: list[InterfacePlan], uplink: str, tenancy: TenancyPlan
) -> ServicePlan:
    """The edge's tenant agent: watches the store over the management link and reconciles the edge."""
    mgmt = next(i for i in interfaces if i.peer_node == MGMT_NODE)
    listen = f"{mgmt.address.split('/')[0]}:{TENANT_AGENT_PORT}"
    args = [
        "--lab",
        lab,
        "--edge",
        edge,
        "--store",
        f"http://{mgmt.peer_address}:{STORE_PORT}",
        "--listen",
        listen,
        "--uplink",
        uplink,
        "--gre-endpoint",
        tenancy.gre_endpoint,
        "--veth-pool",
        tenancy.veth_pool,
    ]
    return ServicePlan(name="tenants", module=TENANT_AGENT_MODULE, args=args, listens=[listen])


def _customer_services(node: str, address: str, services: list[str]) -> list[ServicePlan]:
    """A customer server's services on its address: HTTP (80, 8080) and FTP (21, active data from 20)."""
    planned = []
    if "http" in services:
        listens = [f"{address}:{port}" for port in CUSTOMER_HTTP_PORTS]
        args = ["--name", node]
        for listen in listens:
            args += ["--listen", listen]
        planned.append(ServicePlan(name="http", module=HTTP_MODULE, args=args, listens=listens))
    if "ftp" in services:
        listen = f"{address}:21"
        planned.append(
            ServicePlan(
                name="ftp", module=FTP_MODULE, args=["--name", node, "--listen", listen], listens=[listen]
            )
        )
    return planned


def _http_service(edge: str, topology: Topology, backplane: BackplanePlan | None) -> ServicePlan:
    listens = [f"{vip.address}:{port}" for vip in topology.vips for port in vip.ports]
    if backplane is not None:
        # The other edges' health checks reach the service over the backplane.
        address = backplane.port_of(edge).address.split("/")[0]
        listens.append(f"{address}:{lb_store.HEALTH_PORT}")
    args = ["--name", edge]
    for listen in listens:
        args += ["--listen", listen]
    return ServicePlan(name="http", module=HTTP_MODULE, args=args, listens=listens)


def _xdp_agent(lab: str, edge: str, uplink: str, backplane: BackplanePlan | None) -> ServicePlan:
    sock = mitigation_store.agent_socket(lab, edge)
    args = [
        "--netns",
        netns_name(lab, edge),
        "--uplink",
        uplink,
        "--rules",
        str(mitigation_store.rules_path(lab)),
        "--socket",
        str(sock),
    ]
    if backplane is not None:
        args += ["--edge", edge, "--backplane", BACKPLANE_IFNAME, "--lb", str(lb_store.state_path(lab))]
    return ServicePlan(name="xdp", module=XDP_AGENT_MODULE, args=args, listens=[f"unix:{sock}"])


def _check_owned(anycast_of: dict[str, list[str]], owned: list[str]) -> None:
    """Refuse any edge prefix outside the PoP's anycast pools: whatever adds it, it never reaches BIRD."""
    pools = [IPv4Network(p) for p in owned]
    problems = [
        Problem(
            f"nodes.{edge}",
            f"would announce {prefix}, which is not a prefix this PoP owns",
            f"announce only inside {', '.join(owned)}",
        )
        for edge, prefixes in anycast_of.items()
        for prefix in prefixes
        if not any(IPv4Network(prefix).subnet_of(pool) for pool in pools)
    ]
    if problems:
        raise EdgesimError(problems)


def _proxy_service(edge: str, topology: Topology, proxy: TcpProxy, origin: str) -> ServicePlan:
    listens = [f"{vip.address}:{proxy.port}" for vip in topology.vips]
    args = ["--name", edge]
    for listen in listens:
        args += ["--listen", listen]
    args += [
        "--origin",
        f"{origin}:{proxy.origin_port}",
        "--keepidle",
        str(proxy.keepalive.idle_s),
        "--keepintvl",
        str(proxy.keepalive.interval_s),
        "--keepcnt",
        str(proxy.keepalive.count),
        "--user-timeout-ms",
        str(proxy.effective_user_timeout_ms()),
        "--min-drain",
        str(proxy.min_drain_bytes_per_s),
        "--drain-window",
        str(proxy.drain_window_s),
    ]
    return ServicePlan(name="proxy", module=PROXY_MODULE, args=args, listens=listens)


def _check_ifnames(interfaces: dict[str, list[InterfacePlan]]) -> None:
    problems = []
    for node, ifaces in interfaces.items():
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
