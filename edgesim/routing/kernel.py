"""The router's anycast routes as the kernel holds them (pyroute2), and waiting for them to match BGP."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.rtnl import rt_proto

from edgesim.errors import Problem
from edgesim.plan import LabPlan, NodePlan
from edgesim.routing import announcements
from edgesim.waiting import wait_until

MAIN_TABLE = 254
PROTO_BIRD = rt_proto["bird"]
POLL_S = 0.01
BGP_HINT = "see `invoke bgp status` and the bird logs in the lab's logs/"


@dataclass(frozen=True)
class KernelRoute:
    """One route of the main table: its destination, who installed it, and its next hops."""

    dst: str
    proto: int
    gateways: frozenset[str]

    @property
    def proto_name(self) -> str:
        """The installing protocol's name (bird, static, boot, kernel, ...)."""
        return rt_proto.get(self.proto, str(self.proto))


def router_of(plan: LabPlan) -> NodePlan:
    """The lab's router."""
    (router,) = plan.nodes_with_role("router")
    return router


def routes(ipr: IPRoute) -> dict[str, KernelRoute]:
    """Every IPv4 route of the main table, by destination CIDR."""
    found = {}
    for msg in ipr.get_routes(family=socket.AF_INET, table=MAIN_TABLE):
        dst = f"{msg.get('RTA_DST') or '0.0.0.0'}/{msg['dst_len']}"
        hops = msg.get("RTA_MULTIPATH")
        gateways = [h.get("RTA_GATEWAY") for h in hops] if hops else [msg.get("RTA_GATEWAY")]
        found[dst] = KernelRoute(dst, msg["proto"], frozenset(g for g in gateways if g))
    return found


def router_routes(plan: LabPlan) -> dict[str, KernelRoute]:
    """The router's main table now."""
    with IPRoute(netns=router_of(plan).netns) as ipr:
        return routes(ipr)


def edge_names(plan: LabPlan) -> dict[str, str]:
    """Router-side next-hop address → the edge behind it."""
    return {i.peer_address: i.peer_node for i in router_of(plan).interfaces}


def expected(plan: LabPlan, state_dir: Path) -> dict[str, frozenset[str]]:
    """What the router should hold now: each announced prefix → the next hops of the edges announcing it."""
    gateways = {i.peer_node: i.peer_address for i in router_of(plan).interfaces}
    wanted: dict[str, set[str]] = {}
    for edge in plan.nodes_with_role("edge"):
        if edge.bgp is None:
            continue
        for prefix in announcements.read(state_dir, edge).effective():
            wanted.setdefault(prefix, set()).add(gateways[edge.name])
    return {prefix: frozenset(hops) for prefix, hops in wanted.items()}


def mismatches(plan: LabPlan, state_dir: Path, table: dict[str, KernelRoute]) -> list[str]:
    """How the router's table differs from the edges' announcements, one line each; empty when converged."""
    names = edge_names(plan)
    wanted = expected(plan, state_dir)
    problems = []
    for prefix, hops in wanted.items():
        route = table.get(prefix)
        if route is None:
            problems.append(f"no route to {prefix}")
        elif route.proto != PROTO_BIRD:
            problems.append(f"{prefix} is a {route.proto_name} route, not one learnt by BIRD")
        elif route.gateways != hops:
            missing = sorted(names.get(g, g) for g in hops - route.gateways)
            extra = sorted(names.get(g, g) for g in route.gateways - hops)
            problems.append(f"{prefix}: missing {missing or 'none'}, unexpected {extra or 'none'}")
    # A prefix nobody announces any more must have left the table too.
    problems += [
        f"{prefix} is still routed although no edge announces it"
        for prefix, route in table.items()
        if route.proto == PROTO_BIRD and prefix not in wanted
    ]
    return problems


def _wait_table(
    plan: LabPlan, wrong: Callable[[dict[str, KernelRoute]], list[str]], timeout: float, where: str, why: str
) -> float:
    """Poll the router's table until `wrong` finds nothing; return the seconds, or raise saying what."""
    with IPRoute(netns=router_of(plan).netns) as ipr:
        return wait_until(
            lambda: wrong(routes(ipr)),
            lambda problems: not problems,
            timeout=timeout,
            interval=POLL_S,
            failure=lambda problems: Problem(where, why.format(timeout) + "".join(problems), BGP_HINT),
        ).seconds


def wait_converged(plan: LabPlan, state_dir: Path, timeout: float) -> float:
    """Wait until the router's routes match every edge's announcements; return the seconds it took."""

    def wrong(table: dict[str, KernelRoute]) -> list[str]:
        return ["; ".join(problems)] if (problems := mismatches(plan, state_dir, table)) else []

    why = "the router did not learn the edges' routes over BGP in {:.0f} s: "
    return _wait_table(plan, wrong, timeout, f"lab {plan.lab}", why)


def wait_edge(plan: LabPlan, edge: str, announced: set[str], prefixes: set[str], timeout: float) -> float:
    """Wait until the router uses `edge` for exactly the `announced` ones of `prefixes`; return the seconds.

    Only this edge's next hop is looked at, so a failure elsewhere in the lab does not hold this up.
    """
    gateway = next(i.peer_address for i in router_of(plan).interfaces if i.peer_node == edge)

    def uses_edge(table: dict[str, KernelRoute], prefix: str) -> bool:
        return prefix in table and table[prefix].proto == PROTO_BIRD and gateway in table[prefix].gateways

    def wrong(table: dict[str, KernelRoute]) -> list[str]:
        bad = sorted(p for p in prefixes if (p in announced) != uses_edge(table, p))
        return [", ".join(bad)] if bad else []

    why = "the router did not follow its announcements within {:.0f} s: "
    return _wait_table(plan, wrong, timeout, f"edge {edge}", why)
