"""BGP at a glance: each edge's session as the router sees it, what it announces, the router's routes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgesim import runtime
from edgesim.errors import EdgesimError, Problem
from edgesim.plan import NodePlan
from edgesim.routing import announcements, birdc, kernel
from edgesim.routing.bird import session_name


@dataclass
class SessionStatus:
    """One edge: its session with the router, its BFD state, and what it announces."""

    edge: str
    address: str
    bgp_state: str  # the router's view: Established, Active, Connect, Idle, or "?" when unknown
    bfd_state: str  # the router's BFD session with the edge: Up, Down, Init, or "-" when there is none
    since: str
    received: int  # prefixes the router accepted from this edge
    announcing: list[str]
    drained: bool
    bird_running: bool  # the edge's own BIRD answers on its control socket


@dataclass
class RouteStatus:
    """A route of the router's main table to an anycast prefix."""

    prefix: str
    proto: str
    nexthops: list[str]  # the edges it spreads over


@dataclass
class BgpStatus:
    """The lab's BGP picture; `problems` is empty when the router's routes match every announcement."""

    lab: str
    router_bird_running: bool
    sessions: list[SessionStatus] = field(default_factory=list)
    routes: list[RouteStatus] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """Every session established and the router's routes as the announcements say."""
        return (
            self.router_bird_running
            and all(s.bgp_state == "Established" for s in self.sessions)
            and not self.problems
        )


def bgp_status(lab: str) -> BgpStatus:
    """Ask every BIRD of the lab and the router's kernel how BGP stands now."""
    plan = runtime.running_plan(lab)
    state = runtime.lab_state(lab)
    if plan.routing != "bgp":
        raise EdgesimError(
            Problem(f"lab {lab}", f"uses `routing: {plan.routing}`: no BGP", "set `routing: bgp` to use BGP")
        )
    router = kernel.router_of(plan)
    try:
        protocols = birdc.protocols(state.dir, router)
        bfd = {s.address: s.state for s in birdc.bfd_sessions(state.dir, router)}
        report = BgpStatus(lab, router_bird_running=True)
    except EdgesimError as err:
        protocols, bfd = {}, {}
        report = BgpStatus(lab, router_bird_running=False, problems=[str(p) for p in err.problems])
    for edge in plan.nodes_with_role("edge"):
        address = router.interface_to(edge.name).peer_address
        session = protocols.get(session_name(edge.name))
        record = announcements.read(state.dir, edge)
        report.sessions.append(
            SessionStatus(
                edge=edge.name,
                address=address,
                bgp_state=session.bgp_state if session else "?",
                bfd_state=bfd.get(address, "-"),
                since=session.since if session else "",
                received=session.routes("imported") if session else 0,
                announcing=record.prefixes,
                drained=record.drained,
                bird_running=_answers(state.dir, edge),
            )
        )
    table = kernel.router_routes(plan)
    names = kernel.edge_names(plan)
    prefixes = dict.fromkeys(p for edge in plan.nodes_with_role("edge") for p in edge.anycast)
    prefixes.update(dict.fromkeys(kernel.expected(plan, state.dir)))
    prefixes.update(dict.fromkeys(d for d, r in table.items() if r.proto == kernel.PROTO_BIRD))
    for prefix in prefixes:
        route = table.get(prefix)
        if route is not None:
            hops = sorted(names.get(g, g) for g in route.gateways)
            report.routes.append(RouteStatus(prefix, route.proto_name, hops))
    report.problems += kernel.mismatches(plan, state.dir, table)
    return report


def _answers(state_dir: Path, node: NodePlan) -> bool:
    try:
        birdc.run(state_dir, node, "show", "status")
        return True
    except EdgesimError:
        return False
