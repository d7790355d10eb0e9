"""The node-role planners: links from the topology, and each node's own part of the plan by its role.

What a feature adds to a node (BIRD, XDP agent, tenant agent, proxy, ...) is planned by the feature's own
planner (`edgesim/<feature>/planner.py`), after these.
"""

from __future__ import annotations

from collections.abc import Callable

from edgesim.plan.addressing import Allocator, first_subnet, infra_block
from edgesim.plan.builder import NodeDraft, PlanBuilder
from edgesim.plan.records import NextHop, RoutePlan, ServicePlan
from edgesim.tenants.spec import TUNNEL_MTU

HTTP_MODULE = "edgesim.services.http_echo"
FTP_MODULE = "edgesim.services.ftp_server"
# Customer servers answer HTTP on 80 and on 8080, which the default firewall does not open (a rule can).
CUSTOMER_HTTP_PORTS = (80, 8080)

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
_ASYMMETRIC = {"net.ipv4.conf.all.rp_filter": "0", "net.ipv4.conf.default.rp_filter": "0"}
ROLE_SYSCTLS: dict[str, dict[str, str]] = {
    "router": {
        "net.ipv4.ip_forward": "1",
        "net.ipv4.fib_multipath_hash_policy": "1",  # hash on the L4 5-tuple, not just addresses
        **_ASYMMETRIC,
    },
    "edge": {"net.ipv4.ip_forward": "1", **_ASYMMETRIC},
    "host": {"net.ipv4.ip_forward": "0"},
    # A customer site router forwards between its tunnel and its servers; servers are plain hosts.
    "customer": {"net.ipv4.ip_forward": "1", **_ASYMMETRIC},
    "mgmt": {"net.ipv4.ip_forward": "0"},
}


def plan_links(b: PlanBuilder) -> None:
    """The topology's links with their /31s: router links from the infra and internet pools, site LANs."""
    topology, router = b.topology, b.router
    infra = Allocator(first_subnet(topology.pools.infra), "pools.infra")
    internet = Allocator(first_subnet(topology.pools.internet), "pools.internet")
    sites = (
        Allocator(infra_block(topology.pools.infra, "customer sites"), "pools.infra")
        if topology.tenants
        else None
    )
    b.interfaces = {name: [] for name in topology.nodes}
    for link in topology.effective_links():
        a, z = link.endpoints
        # The router (or a server's site router) always takes the lower address, so its address is even.
        if z == router or (topology.uplink_of(a) == z):
            a, z = z, a
        if a != router:
            subnet = sites.next() if sites else infra.next()  # a customer site's LAN
        elif topology.nodes[z].role in ("host", "customer"):
            subnet = internet.next()  # the internet: clients, attackers, customer routers' public side
        else:
            subnet = infra.next()
        b.add_link(a, z, subnet)


def plan_nodes(b: PlanBuilder) -> None:
    """A draft per topology node, in file order, with what its role alone gives it."""
    for name, node in b.topology.nodes.items():
        draft = _draft(b, name)
        _ROLE_PLANNERS.get(node.role, _nothing)(b, draft)
        b.nodes[name] = draft


def _draft(b: PlanBuilder, name: str) -> NodeDraft:
    """Interfaces, sysctls, uplink and (but on the router) the default route through it."""
    topology = b.topology
    node = topology.nodes[name]
    interfaces = b.interfaces[name]
    uplinks = [i for i in interfaces if i.peer_node == (topology.uplink_of(name) or b.router)]
    draft = NodeDraft(
        name=name,
        role=node.role,
        interfaces=interfaces,
        sysctls={**COMMON_SYSCTLS, **ROLE_SYSCTLS[node.role]},
        uplink=uplinks[0].name if uplinks else None,
    )
    if node.role != "router":
        uplink = uplinks[0]
        # A site router's traffic back to the internet goes through the tunnel: leave room for GRE.
        site_router = node.role == "customer" and node.tenant and name == topology.site_of(node.tenant)
        default = NextHop(gateway=uplink.peer_address, ifname=uplink.name)
        draft.routes.append(
            RoutePlan(dst="0.0.0.0/0", nexthops=[default], mtu=TUNNEL_MTU if site_router else None)
        )
    return draft


def _nothing(b: PlanBuilder, draft: NodeDraft) -> None:
    """Routers and hosts: what the features add is all (the router's routes come from routing)."""


def _edge(b: PlanBuilder, draft: NodeDraft) -> None:
    """The anycast VIPs on its loopback, announced as the VIP pool, and the HTTP service answering on them."""
    topology = b.topology
    draft.loopback = [f"{vip.address}/32" for vip in topology.vips]
    draft.anycast = [str(topology.pools.vips)]
    draft.announce = [str(p) for p in topology.nodes[draft.name].announce]
    listens = [f"{vip.address}:{port}" for vip in topology.vips for port in vip.ports]
    draft.services.append(listening_service(HTTP_MODULE, "http", draft.name, listens))


def _customer(b: PlanBuilder, draft: NodeDraft) -> None:
    """A server: its address and services. A site router: a route to each of its servers."""
    topology = b.topology
    node = topology.nodes[draft.name]
    if topology.is_customer_server(draft.name):
        draft.sysctls.update(ROLE_SYSCTLS["host"])
        draft.loopback = [f"{node.address}/32"]
        draft.services += _customer_services(draft.name, str(node.address), node.services)
        return
    draft.routes += [
        RoutePlan(dst=f"{server.address}/32", nexthops=[NextHop(gateway=i.peer_address, ifname=i.name)])
        for i in draft.interfaces
        if (server := topology.nodes[i.peer_node]).role == "customer" and server.address
    ]


def _customer_services(node: str, address: str, services: list[str]) -> list[ServicePlan]:
    """A customer server's services on its address: HTTP (80, 8080) and FTP (21, active data from 20)."""
    planned = []
    if "http" in services:
        planned.append(
            listening_service(
                HTTP_MODULE, "http", node, [f"{address}:{port}" for port in CUSTOMER_HTTP_PORTS]
            )
        )
    if "ftp" in services:
        planned.append(listening_service(FTP_MODULE, "ftp", node, [f"{address}:21"]))
    return planned


def listening_service(module: str, name: str, node: str, listens: list[str], *extra: str) -> ServicePlan:
    """A service of edgesim's own that takes `--name NODE` and one `--listen` per address it serves."""
    args = ["--name", node]
    for listen in listens:
        args += ["--listen", listen]
    return ServicePlan(name=name, module=module, args=[*args, *extra], listens=listens)


_ROLE_PLANNERS: dict[str, Callable[[PlanBuilder, NodeDraft], None]] = {
    "router": _nothing,
    "host": _nothing,
    "edge": _edge,
    "customer": _customer,
}
