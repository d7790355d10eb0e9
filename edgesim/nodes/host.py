"""An internet host (client or attacker): one uplink to the router and a default route through it."""

from __future__ import annotations

from edgesim import namespaces
from edgesim.nodes.base import NodeRole


class Host(NodeRole):
    """A client or attacker on the internet side of the router."""

    role = "host"

    def configure(self) -> None:
        """Addresses and routes; then full TCP/UDP checksums in every packet the host sends."""
        super().configure()
        # A veth leaves checksums to "hardware" (CHECKSUM_PARTIAL): fine while the packet stays an skb, but
        # an edge's XDP program that forwards it to another edge sends the raw frame, whose checksum was
        # never filled in, and the other edge drops it. A real wire always carries full checksums.
        namespaces.run_in(
            self.node.netns,
            ["ethtool", "-K", self.node.uplink or "", "tx", "off"],
            check=True,
            capture_output=True,
        )

    def summary(self) -> str:
        """What the host serves (an origin server), or that it is a traffic source."""
        if self.node.services:
            return "; ".join(f"{s.name} on {', '.join(s.listens)}" for s in self.node.services)
        return "traffic source"
