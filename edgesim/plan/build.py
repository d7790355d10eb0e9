"""build_plan: the topology through the planning stages, each role's and each feature's planner in turn."""

from __future__ import annotations

from types import ModuleType

from edgesim.features import parts
from edgesim.model import Topology
from edgesim.plan import roles
from edgesim.plan.builder import PlanBuilder
from edgesim.plan.records import LabPlan

# A feature's planner module defines any of these functions (taking the PlanBuilder); every feature's
# function of one stage runs, in registry order, before any of the next stage.
#   plan_links:  links of its own (the management network)
#   plan_nodes:  nodes of its own, and what it adds to the nodes and to the lab (services, sections, ...)
#   plan_routes: what needs every feature's nodes first (the router's routes over every edge's prefixes)
FEATURE_STAGES = ("plan_links", "plan_nodes", "plan_routes")


def build_plan(topology: Topology) -> LabPlan:
    """Compute the concrete lab from a validated topology."""
    (router,) = topology.nodes_with_role("router")
    builder = PlanBuilder(topology, router)
    planners = [planner for _, planner in parts("planner")]
    roles.plan_links(builder)
    _stage(planners, "plan_links", builder)
    builder.check_ifnames()
    roles.plan_nodes(builder)
    _stage(planners, "plan_nodes", builder)
    _stage(planners, "plan_routes", builder)
    return builder.freeze()


def _stage(planners: list[ModuleType], stage: str, builder: PlanBuilder) -> None:
    for planner in planners:
        hook = getattr(planner, stage, None)
        if hook is not None:
            hook(builder)
