"""An internet host (client or attacker): one uplink to the router and a default route through it."""

from __future__ import annotations

from edgesim.nodes.base import NodeRole


class Host(NodeRole):
    """A client or attacker on the internet side of the router."""

    role = "host"

    def summary(self) -> str:
        """Hosts run nothing until a test or a task starts traffic."""
        return "traffic source"
