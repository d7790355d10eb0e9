"""The router's anycast routes as the kernel holds them (pyroute2), and waiting for them to match BGP."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.rtnl import rt_proto

from edgesim.errors import EdgesimError, Problem
from edgesim.plan import LabPlan, NodePlan
from edgesim.routing import announcements

MAIN_TABLE = 254
PROTO_BIRD = rt_proto["bird"]
POLL_S = 0.01


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


def wait_converged(plan: LabPlan, state_dir: Path, timeout: float) -> float:
    """Wait until the router's routes match every edge's announcements; return the seconds it took."""
    started = time.monotonic()
    with IPRoute(netns=router_of(plan).netns) as ipr:
        while True:
            problems = mismatches(plan, state_dir, routes(ipr))
            if not problems:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise EdgesimError(
                    Problem(
                        f"lab {plan.lab}",
                        f"the router did not learn the edges' routes over BGP in {timeout:.0f} s: "
                        + "; ".join(problems),
                        "see `invoke bgp status` and the bird logs in the lab's logs/",
                    )
                )
            time.sleep(POLL_S)


def wait_edge(plan: LabPlan, edge: str, announced: set[str], prefixes: set[str], timeout: float) -> float:
    """Wait until the router uses `edge` for exactly the `announced` ones of `prefixes`; return the seconds.

    Only this edge's next hop is looked at, so a failure elsewhere in the lab does not hold this up.
    """
    gateway = next(i.peer_address for i in router_of(plan).interfaces if i.peer_node == edge)
    started = time.monotonic()
    with IPRoute(netns=router_of(plan).netns) as ipr:
        while True:
            table = routes(ipr)
            wrong = sorted(
                p
                for p in prefixes
                if (p in announced)
                != (p in table and table[p].proto == PROTO_BIRD and gateway in table[p].gateways)
            )
            if not wrong:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise EdgesimError(
                    Problem(
                        f"edge {edge}",
                        f"the router did not follow its announcements within {timeout:.0f} s: "
                        + ", ".join(wrong),
                        "see `invoke bgp status` and the bird logs in the lab's logs/",
                    )
                )
            time.sleep(POLL_S)
