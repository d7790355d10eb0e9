"""An edge node: the anycast VIPs on its loopback and the HTTP service answering on them."""

from __future__ import annotations

from edgesim import namespaces
from edgesim.bpf import loader
from edgesim.nodes.base import NodeRole


class Edge(NodeRole):
    """Terminates the anycast VIPs; later also runs XDP programs and tenant namespaces."""

    role = "edge"

    def summary(self) -> str:
        """Its services, where they listen, its BGP announcements and the XDP program on its uplink."""
        parts = [
            f"{s.name} on {', '.join(s.listens)}" for s in self.node.services if s.listens and s.name != "xdp"
        ]
        if self.node.bgp is not None:
            parts.append(f"bird: BGP AS {self.node.bgp.asn}, announces {', '.join(self.node.anycast)}")
        uplink = self.node.uplink
        xdp = loader.xdp_info(self.node.netns, uplink) if namespaces.exists(self.node.netns) else None
        parts.append(
            f"XDP {xdp['mode']} prog {xdp['prog_id']} on {uplink}" if xdp else f"[red]no XDP on {uplink}[/]"
        )
        return "; ".join(parts)
