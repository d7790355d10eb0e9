"""DoS mitigation's part of the plan: the rule set every edge starts with, and each edge's XDP agent.

The agent (one per edge) hosts the whole XDP chain: the DoS program on the uplink and, with a backplane,
the L4 load balancer behind it (they share maps). Pure.
"""

from __future__ import annotations

from edgesim.mitigation.rules import build_rule_set
from edgesim.plan.builder import NodeDraft, PlanBuilder
from edgesim.plan.naming import (
    BACKPLANE_IFNAME,
    LB_STATE_FILE,
    RULES_FILE,
    netns_name,
    xdp_agent_socket,
)
from edgesim.plan.records import BackplanePlan, ServicePlan

XDP_AGENT_MODULE = "edgesim.mitigation.agent"
# The XDP agent's /metrics, on the edge's management address (ebpf_exporter's port).
XDP_METRICS_PORT = 9435


def plan_nodes(b: PlanBuilder) -> None:
    """The rule set, an XDP agent on every edge, and pass programs where the router receives XDP_TX."""
    b.sections["mitigation"] = build_rule_set(list(b.topology.mitigation.rules))
    backplane = b.sections.get("backplane")
    for edge in b.with_role("edge"):
        edge.services.append(_xdp_agent(b.lab, edge, backplane))
    router = b.nodes[b.router]
    # Edges answer SYNs (and later forward packets) with XDP_TX: the receiving veth end needs XDP.
    router.xdp_pass = [i.name for i in router.interfaces if b.topology.nodes[i.peer_node].role == "edge"]


def _xdp_agent(lab: str, edge: NodeDraft, backplane: BackplanePlan | None) -> ServicePlan:
    sock = xdp_agent_socket(edge.name)
    # Paths relative to the lab's state directory, where the supervisor runs every service.
    args = ["--netns", netns_name(lab, edge.name), "--uplink", edge.uplink or "", "--rules", RULES_FILE]
    args += ["--socket", sock]
    # The control sessions on the uplink (BGP, BFD with the router): the XDP program passes them first.
    uplink = next((i for i in edge.interfaces if i.name == edge.uplink), None)
    if uplink is not None:
        args += ["--control-peer", f"{uplink.peer_address}={uplink.address.split('/')[0]}"]
    if backplane is not None:
        args += ["--edge", edge.name, "--backplane", BACKPLANE_IFNAME, "--lb", LB_STATE_FILE]
    # With a management network, the agent serves its maps' counters there for the lab's Prometheus.
    metrics = edge.metrics_listen(XDP_METRICS_PORT)
    if metrics is not None:
        args += ["--metrics", metrics]
    return ServicePlan(
        name="xdp", module=XDP_AGENT_MODULE, args=args, listens=[f"unix:{sock}"], metrics=metrics
    )
