"""Routing's metric families: the edge's BGP sessions as its own BIRD reports them (state, routes
exported) and whether the operator drained the edge. Served by the tenant agent (the edge's control-plane
agent), which asks the edge's BIRD over its control socket at each scrape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from edgesim.metrics.families import Family, Sample, Source
from edgesim.plan import NodePlan
from edgesim.routing import announcements, birdc
from edgesim.routing.bird import session_name

SESSION_UP = Family(
    "edgesim_bgp_session_up", "1 when the BGP session to the peer is Established.", ("peer",), kind="gauge"
)
EXPORTED = Family(
    "edgesim_bgp_routes_exported", "Routes this edge exports to the peer now.", ("peer",), kind="gauge"
)
DRAINED = Family(
    "edgesim_bgp_drained", "1 when the edge is drained (`edge down`): it announces nothing.", kind="gauge"
)
FAMILIES = (SESSION_UP, EXPORTED, DRAINED)


def source(state_dir: Path, node: NodePlan) -> Source:
    """The families of one edge's BIRD (no samples with `routing: static`)."""

    def read() -> Iterator[Sample]:
        if node.bgp is None:
            return
        sessions = {peer.node: session_name(peer.node) for peer in node.bgp.peers}
        found = birdc.protocols(state_dir, node)
        for peer, name in sessions.items():
            protocol = found.get(name)
            established = protocol is not None and protocol.bgp_state == "Established"
            yield SESSION_UP.name, (peer,), int(established)
            yield EXPORTED.name, (peer,), protocol.routes("exported") if protocol else 0
        yield DRAINED.name, (), int(announcements.read(state_dir, node).drained)

    return Source(FAMILIES, read)
