"""A running lab's live state for the topology picture: which nodes exist, which edges are drained (at
the routing layer or in the L4 load balancer), and each edge's BGP session as the router sees it."""

from __future__ import annotations

from edgesim import runtime
from edgesim.errors import EdgesimError
from edgesim.lb import store as lb_store
from edgesim.metrics.graph import NodeLive
from edgesim.routing.status import bgp_status


def live_state(lab: str) -> dict[str, NodeLive]:
    """NodeLive for every node of the running lab."""
    plan = runtime.running_plan(lab)
    backend = runtime.backend(lab)
    lb = lb_store.read(lb_store.state_path(lab))
    sessions = {}
    if plan.routing == "bgp":
        try:
            sessions = {s.edge: s for s in bgp_status(lab).sessions}
        except EdgesimError:
            sessions = {}
    found = {}
    for node in plan.nodes.values():
        if not backend.node_exists(node):
            found[node.name] = NodeLive(False, ["DOWN (no namespace)"])
            continue
        if node.role != "edge":
            found[node.name] = NodeLive(True)
            continue
        notes, ok = [], True
        session = sessions.get(node.name)
        if session is not None:
            notes.append(f"BGP {session.bgp_state}, BFD {session.bfd_state}")
            ok = session.bgp_state == "Established"
            if session.drained:
                notes.append("drained (edge down)")
                ok = False
        if node.name in lb.drained:
            notes.append("LB drained")
            ok = False
        found[node.name] = NodeLive(ok, notes)
    return found
