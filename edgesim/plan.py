"""Turn a validated Topology into a LabPlan: every name, address, route and service. Pure: no I/O, no root."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from ipaddress import IPv4Network

from pydantic import BaseModel, ConfigDict

from edgesim.errors import EdgesimError, Problem
from edgesim.lb import store as lb_store
from edgesim.mitigation import store as mitigation_store
from edgesim.mitigation.rules import RuleSet, build_rule_set
from edgesim.model import ANYCAST_POOLS, Topology

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


class ServicePlan(Frozen):
    """A long-running process the lab supervises inside a node: a Python module of edgesim, or a command."""

    name: str
    module: str | None  # run as `python -m module args…`; None: `args` is the whole command line
    args: list[str]
    listens: list[str]  # address:port (TCP) or unix:/path it must accept connections on before `up` succeeds

    def argv(self, python: str) -> list[str]:
        """The command line to start the service with, given the interpreter for Python modules."""
        return [python, "-m", self.module, *self.args] if self.module else list(self.args)


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
    xdp_pass: list[str]  # interfaces that get a pass XDP program, so XDP_TX frames from the peer are received
    bgp: BgpPlan | None = None  # routing: bgp — the node's BIRD instance

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


# Sysctls per role. rp_filter is off where traffic is asymmetric by design (anycast, ECMP, spoofed floods
# that XDP must see); IPv6 is off so captures show only the lab's own traffic.
COMMON_SYSCTLS = {
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
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

    interfaces: dict[str, list[InterfacePlan]] = {name: [] for name in topology.nodes}
    links: list[LinkPlan] = []
    for link in topology.effective_links():
        a, b = link.endpoints
        # The router always takes the lower address, so a router-side address is even.
        if b == router:
            a, b = b, a
        peer_role = topology.nodes[b].role
        subnet = (internet if peer_role == "host" else infra).next()
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
        links.append(
            LinkPlan(a=LinkEnd(node=a, ifname=if_a), b=LinkEnd(node=b, ifname=if_b), subnet=str(subnet))
        )

    _check_ifnames(interfaces)
    # Every prefix the edges serve together; each is one ECMP route on the router over the edges serving it.
    edge_anycast = [str(topology.pools.vips)]
    # What each edge serves: the common prefixes, and those the topology gives it alone.
    anycast_of = {
        name: [*edge_anycast, *(str(p) for p in node.announce)]
        for name, node in topology.nodes.items()
        if node.role == "edge"
    }
    owned = [str(getattr(topology.pools, pool)) for pool in ANYCAST_POOLS]
    _check_owned(anycast_of, owned)
    backplane = _backplane_plan(topology)
    nodes: dict[str, NodePlan] = {}
    for name, node in topology.nodes.items():
        uplinks = [i for i in interfaces[name] if i.peer_node == router]
        routes: list[RoutePlan] = []
        loopback: list[str] = []
        services: list[ServicePlan] = []
        anycast: list[str] = []
        xdp_pass: list[str] = []
        bgp: BgpPlan | None = None
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
            routes.append(
                RoutePlan(
                    dst="0.0.0.0/0", nexthops=[NextHop(gateway=uplink.peer_address, ifname=uplink.name)]
                )
            )
        if node.role == "edge":
            loopback = [f"{vip}/32" for vip in vips]
            anycast = anycast_of[name]
            services.append(_http_service(name, topology, backplane))
            services.append(_xdp_agent(lab, name, uplinks[0].name, backplane))
            if topology.routing == "bgp":
                bgp = _bgp_plan(name, EDGE_ASN, uplinks, ROUTER_ASN, owned, announcements=True)
                services.append(_bird_service(bgp))
        nodes[name] = NodePlan(
            name=name,
            role=node.role,
            netns=netns_name(lab, name),
            sysctls={**COMMON_SYSCTLS, **ROLE_SYSCTLS[node.role]},
            interfaces=interfaces[name],
            loopback=loopback,
            anycast=anycast,
            routes=routes,
            services=services,
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
        backplane=backplane,
    )


def backplane_subnet(infra: IPv4Network) -> IPv4Network | None:
    """The backplane's /24: the infra pool's second /24 (the first holds the router links), if it has one."""
    if infra.prefixlen > 23:
        return None
    return IPv4Network(f"{infra.network_address + 256}/24")


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
