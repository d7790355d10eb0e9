"""An internet host (client or attacker): one uplink to the router and a default route through it."""

from __future__ import annotations

from edgesim.nodes.base import NodeRole
from edgesim.offload import set_tx_checksum_here


class Host(NodeRole):
    """A client or attacker on the internet side of the router."""

    role = "host"

    def configure(self) -> None:
        """Addresses and routes; then full TCP/UDP checksums in every packet the host sends."""
        super().configure()
        # A veth leaves checksums to "hardware" (CHECKSUM_PARTIAL): fine while the packet stays an skb, but
        # an edge's XDP program that forwards it to another edge sends the raw frame, whose checksum was
        # never filled in, and the other edge drops it. A real wire always carries full checksums.
        self._tx_checksum(offload=False)

    def teardown(self) -> None:
        """Checksum offload back on, then what every role undoes."""
        self._tx_checksum(offload=True)
        super().teardown()

    def _tx_checksum(self, offload: bool) -> None:
        if self.node.uplink:
            with self.backend.enter(self.node):
                set_tx_checksum_here(self.node.uplink, offload, where=f"{self.node.netns}/{self.node.uplink}")

    def summary_parts(self) -> list[str]:
        """What the host serves (an origin server), or that it is a traffic source."""
        return super().summary_parts() or ["traffic source"]
