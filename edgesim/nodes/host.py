"""An internet host (client or attacker): one uplink to the router and a default route through it."""

from __future__ import annotations

from edgesim.nodes.base import NodeRole


class Host(NodeRole):
    """A client or attacker on the internet side of the router."""

    role = "host"

    def summary(self) -> str:
        """What the host serves (an origin server), or that it is a traffic source."""
        if self.node.services:
            return "; ".join(f"{s.name} on {', '.join(s.listens)}" for s in self.node.services)
        return "traffic source"
