"""The router: spreads anycast prefixes over the edges with one ECMP route hashed on the L4 5-tuple.

Its routes come from routing (BGP from the edges' announcements, or static routes); this role gives it its
addresses and the pass XDP programs its edge-facing links need.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from edgesim.bpf import loader
from edgesim.nodes.base import NodeRole
from edgesim.offload import set_tx_checksum_here


@cache
def _pass_program() -> tuple[object, int]:
    # The BPF object is kept with the fd: when bcc's object is collected, it closes its programs' fds.
    program = loader.compile_program(Path("xdp_pass.c"))
    return program, loader.load_xdp(program, "xdp_pass")


def pass_program_fd() -> int:
    """One loaded XDP pass program for the whole `up` (attachments keep it alive after the process)."""
    return _pass_program()[1]


class Router(NodeRole):
    """ECMP router between the internet hosts and the edge nodes."""

    role = "router"

    def configure(self) -> None:
        """Addresses and routes, then a pass XDP program on the links whose peers send XDP_TX frames, and
        full checksums in what it sends over them."""
        super().configure()
        for ifname in self.node.xdp_pass:
            if loader.xdp_info(self.node.netns, ifname) is None:
                loader.attach_xdp(self.node.netns, ifname, pass_program_fd())
        # What arrives from a host with full checksums is merged by GRO and cut up again on the way out
        # (GSO), which leaves the TCP checksum to the "hardware"; an edge whose XDP forwards such a frame
        # as raw bytes to another edge would send it with the checksum never filled in.
        self._tx_checksum(offload=False)

    def teardown(self) -> None:
        """The pass programs off and checksum offload back on, then what every role undoes."""
        for ifname in self.node.xdp_pass:
            loader.detach_xdp(self.node.netns, ifname)
        self._tx_checksum(offload=True)
        super().teardown()

    def _tx_checksum(self, offload: bool) -> None:
        with self.backend.enter(self.node):
            for ifname in self.node.xdp_pass:
                set_tx_checksum_here(ifname, offload, where=f"{self.node.netns}/{ifname}")
