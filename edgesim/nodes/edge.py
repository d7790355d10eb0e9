"""An edge node: the anycast VIPs on its loopback and the HTTP service answering on them."""

from __future__ import annotations

from edgesim.nodes.base import NodeRole


class Edge(NodeRole):
    """Terminates the anycast VIPs; later also runs XDP programs and tenant namespaces."""

    role = "edge"

    def summary(self) -> str:
        """Its services and where they listen."""
        return "; ".join(f"{s.name} on {', '.join(s.listens)}" for s in self.node.services)
