"""Routing in the lab's life cycle: BIRD's files before it starts, the router's routes before `up` returns."""

from __future__ import annotations

from edgesim.hooks import FeatureHooks, LabContext
from edgesim.plan import NodePlan
from edgesim.routing import announcements, kernel


class RoutingHooks(FeatureHooks):
    """BGP labs wait for the edges' routes; static labs have theirs from the plan (node roles set them)."""

    waits_for = "BGP routes from the edges"

    def prepare(self, ctx: LabContext) -> None:
        """BIRD reads its configuration when the supervisor starts it, so it must be written first."""
        if ctx.plan.routing == "bgp":
            announcements.write_all(ctx.plan, ctx.state.dir)

    def wait_ready(self, ctx: LabContext) -> None:
        """With BGP: until the router's routes match every edge's announcements."""
        if ctx.plan.routing == "bgp":
            kernel.wait_converged(ctx.plan, ctx.state.dir, ctx.timeout_s)

    def status_lines(self, ctx: LabContext, node: NodePlan) -> list[str]:
        """The router: its BGP sessions or static ECMP routes; an edge: what its BIRD announces."""
        bgp = node.bgp
        if node.role == "router":
            if bgp is not None:
                return [f"bird: BGP AS {bgp.asn} with {len(bgp.peers)} edges, ECMP from their announcements"]
            return [f"ECMP {r.dst} over {len(r.nexthops)} edges" for r in node.routes if len(r.nexthops) > 1]
        if node.role == "edge" and bgp is not None:
            return [f"bird: BGP AS {bgp.asn}, announces {', '.join(node.anycast)}"]
        return []


HOOKS = RoutingHooks()
