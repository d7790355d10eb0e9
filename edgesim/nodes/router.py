"""The router: spreads anycast prefixes over the edges with one ECMP route hashed on the L4 5-tuple."""

from __future__ import annotations

from edgesim.nodes.base import NodeRole


class Router(NodeRole):
    """ECMP router between the internet hosts and the edge nodes."""

    role = "router"

    def summary(self) -> str:
        """The multipath routes it holds."""
        return "; ".join(
            f"ECMP {r.dst} over {len(r.nexthops)} edges" for r in self.node.routes if len(r.nexthops) > 1
        )
