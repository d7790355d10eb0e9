"""The router: spreads anycast prefixes over the edges with one ECMP route hashed on the L4 5-tuple.

With `routing: bgp` the routes come from the edges' announcements (its BIRD, started by the supervisor).
"""

from __future__ import annotations

from edgesim.nodes.base import NodeRole


class Router(NodeRole):
    """ECMP router between the internet hosts and the edge nodes."""

    role = "router"

    def summary(self) -> str:
        """The multipath routes it holds, or where they come from (BGP)."""
        if self.node.bgp is not None:
            bgp = self.node.bgp
            return f"bird: BGP AS {bgp.asn} with {len(bgp.peers)} edges, ECMP from their announcements"
        return "; ".join(
            f"ECMP {r.dst} over {len(r.nexthops)} edges" for r in self.node.routes if len(r.nexthops) > 1
        )
