"""Turn a validated Topology into a LabPlan: every name, address, route and service. Pure: no I/O, no root.

records (what a plan is), naming (every name), addressing (pools), builder (the plan while it is built),
roles (each node role's planner) and build (the stages); each feature adds its own planner.
"""

from edgesim.plan.build import build_plan
from edgesim.plan.naming import IFNAME_MAX, ifname_for, netns_name
from edgesim.plan.records import (
    BackplanePlan,
    BackplanePort,
    BgpPeer,
    BgpPlan,
    DispatchPlan,
    DnsPlan,
    InterfacePlan,
    LabPlan,
    LinkEnd,
    LinkPlan,
    MetricsPlan,
    NextHop,
    NodePlan,
    RoutePlan,
    ScrapeTarget,
    ServicePlan,
    TenancyPlan,
    TunnelPlan,
)

__all__ = [
    "IFNAME_MAX",
    "BackplanePlan",
    "BackplanePort",
    "BgpPeer",
    "BgpPlan",
    "DispatchPlan",
    "DnsPlan",
    "InterfacePlan",
    "LabPlan",
    "LinkEnd",
    "LinkPlan",
    "MetricsPlan",
    "NextHop",
    "NodePlan",
    "RoutePlan",
    "ScrapeTarget",
    "ServicePlan",
    "TenancyPlan",
    "TunnelPlan",
    "build_plan",
    "ifname_for",
    "netns_name",
]
