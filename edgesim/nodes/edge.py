"""An edge node: the anycast VIPs on its loopback and the HTTP service answering on them."""

from __future__ import annotations

from edgesim.nodes.base import NodeRole


class Edge(NodeRole):
    """Terminates the anycast VIPs; later also runs XDP programs and tenant namespaces."""

    role = "edge"

    def summary(self) -> str:
        """Its services and where they listen."""
        parts = [f"{s.name} on {', '.join(s.listens)}" for s in self.node.services if s.listens]
        if self.node.bgp is not None:
            parts.append(f"bird: BGP AS {self.node.bgp.asn}, announces {', '.join(self.node.anycast)}")
        return "; ".join(parts)
