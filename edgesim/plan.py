"""Turn a validated Topology into a LabPlan: every name, address, route and service. Pure: no I/O, no root."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from ipaddress import IPv4Network

from pydantic import BaseModel, ConfigDict

from edgesim.errors import EdgesimError, Problem
from edgesim.model import TcpProxy, Topology

IFNAME_MAX = 15  # IFNAMSIZ - 1: the kernel refuses longer interface names
IFNAME_PREFIX = "eth-"
HTTP_MODULE = "edgesim.services.http_echo"
PROXY_MODULE = "edgesim.services.tcp_proxy"
ORIGIN_MODULE = "edgesim.services.origin"


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
    listens: list[str]  # address:port it must be accepting on before `up` reports success

    def argv(self, python: str) -> list[str]:
        """The command line to start the service with, given the interpreter for Python modules."""
        return [python, "-m", self.module, *self.args] if self.module else list(self.args)


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

    def interface_to(self, peer: str) -> InterfacePlan:
        """This node's interface facing `peer`."""
        return next(i for i in self.interfaces if i.peer_node == peer)


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
    vips: list[str]
    nodes: dict[str, NodePlan]
    links: list[LinkPlan]

    def namespaces(self) -> list[str]:
        """Every namespace of the lab, in creation order."""
        return [node.netns for node in self.nodes.values()]

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
    nodes: dict[str, NodePlan] = {}
    for name, node in topology.nodes.items():
        uplinks = [i for i in interfaces[name] if i.peer_node == router]
        routes: list[RoutePlan] = []
        loopback: list[str] = []
        services: list[ServicePlan] = []
        anycast: list[str] = []
        if node.role == "router":
            edges = [i for i in interfaces[name] if topology.nodes[i.peer_node].role == "edge"]
            hops = [NextHop(gateway=i.peer_address, ifname=i.name) for i in edges]
            routes += [RoutePlan(dst=prefix, nexthops=hops) for prefix in edge_anycast]
        else:
            uplink = uplinks[0]
            routes.append(
                RoutePlan(
                    dst="0.0.0.0/0", nexthops=[NextHop(gateway=uplink.peer_address, ifname=uplink.name)]
                )
            )
        if node.role == "edge":
            loopback = [f"{vip}/32" for vip in vips]
            anycast = list(edge_anycast)
            services.append(_http_service(name, topology))
            if topology.proxy is not None:
                origin = interfaces[topology.proxy.origin][0].address.split("/")[0]
                services.append(_proxy_service(name, topology, topology.proxy, origin))
        if topology.proxy is not None and name == topology.proxy.origin:
            address = interfaces[name][0].address.split("/")[0]
            listen = f"{address}:{topology.proxy.origin_port}"
            services.append(
                ServicePlan(name="origin", module=ORIGIN_MODULE, args=["--listen", listen], listens=[listen])
            )
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
        )
    return LabPlan(lab=lab, netns_prefix=f"{lab}-", vips=vips, nodes=nodes, links=links)


def _http_service(edge: str, topology: Topology) -> ServicePlan:
    listens = [f"{vip.address}:{port}" for vip in topology.vips for port in vip.ports]
    args = ["--name", edge]
    for listen in listens:
        args += ["--listen", listen]
    return ServicePlan(name="http", module=HTTP_MODULE, args=args, listens=listens)


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
