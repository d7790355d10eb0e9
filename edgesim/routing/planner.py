"""Routing's part of the plan: a BIRD per router and edge (`routing: bgp`) or the router's static ECMP routes.

Either way the router spreads every prefix the edges serve over the edges serving it; no edge may serve a
prefix outside the PoP's anycast pools. Pure.
"""

from __future__ import annotations

from ipaddress import IPv4Network

from edgesim.errors import EdgesimError, Problem
from edgesim.model import ANYCAST_POOLS, BgpTimers, Topology
from edgesim.plan.addressing import host_address
from edgesim.plan.builder import NodeDraft, PlanBuilder
from edgesim.plan.naming import bird_files
from edgesim.plan.records import BgpPeer, BgpPlan, InterfacePlan, NextHop, RoutePlan, ServicePlan

# BGP between the router and the edges (private AS numbers): the edges of a PoP share one AS.
ROUTER_ASN = 64512
EDGE_ASN = 64513


def plan_nodes(b: PlanBuilder) -> None:
    """With BGP: the router's BIRD with a session per edge, and each edge's BIRD with one to the router."""
    if b.topology.routing != "bgp":
        return
    owned = owned_pools(b.topology)
    timers = b.topology.bgp_timers
    router = b.nodes[b.router]
    _add_bird(
        router,
        _bgp_plan(router.name, ROUTER_ASN, _edge_links(b), EDGE_ASN, owned, timers, announcements=False),
    )
    for edge in b.with_role("edge"):
        uplinks = [i for i in edge.interfaces if i.peer_node == b.router]
        _add_bird(
            edge, _bgp_plan(edge.name, EDGE_ASN, uplinks, ROUTER_ASN, owned, timers, announcements=True)
        )


def plan_routes(b: PlanBuilder) -> None:
    """Refuse prefixes the PoP does not own; with static routing, one ECMP route per prefix on the router."""
    anycast_of = {edge.name: [*edge.anycast, *edge.announce] for edge in b.with_role("edge")}
    _check_owned(anycast_of, owned_pools(b.topology))
    if b.topology.routing == "static":
        b.nodes[b.router].routes += _anycast_routes(_edge_links(b), anycast_of)


def owned_pools(topology: Topology) -> list[str]:
    """The PoP's anycast pools: all the router accepts, all an edge may announce."""
    return [str(getattr(topology.pools, pool)) for pool in ANYCAST_POOLS]


def _edge_links(b: PlanBuilder) -> list[InterfacePlan]:
    return [i for i in b.nodes[b.router].interfaces if b.topology.nodes[i.peer_node].role == "edge"]


def _add_bird(node: NodeDraft, bgp: BgpPlan) -> None:
    node.bgp = bgp
    # -f: stay in the foreground under the supervisor. Paths are relative to the lab's state directory,
    # where the supervisor runs services. Readiness is the router's routes (checked by `up`), not a port.
    args = ["bird", "-f", "-c", bgp.config, "-s", bgp.socket, "-P", bgp.pidfile]
    node.services.append(ServicePlan(name="bird", module=None, args=args, listens=[]))


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
    node: str,
    asn: int,
    links: list[InterfacePlan],
    peer_asn: int,
    owned: list[str],
    timers: BgpTimers,
    announcements: bool,
) -> BgpPlan:
    """A BIRD instance with one eBGP session (and BFD) over each of `links`."""
    peers = [
        BgpPeer(node=i.peer_node, address=i.peer_address, local=host_address(i.address), asn=peer_asn)
        for i in links
    ]
    files = bird_files(node)
    return BgpPlan(
        asn=asn,
        # Any address of the node is a unique router id; its first session's is the easiest to recognise.
        router_id=peers[0].local,
        peers=peers,
        owned=owned,
        **timers.model_dump(),
        config=f"{files}.conf",
        socket=f"{files}.ctl",
        pidfile=f"{files}.pid",
        announcements=f"{files}.announce.conf" if announcements else None,
    )


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
