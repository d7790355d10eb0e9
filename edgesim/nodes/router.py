"""The router: spreads anycast prefixes over the edges with one ECMP route hashed on the L4 5-tuple.

With `routing: bgp` the routes come from the edges' announcements (its BIRD, started by the supervisor).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from edgesim.bpf import loader
from edgesim.nodes.base import NodeRole


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
        """Addresses and routes, then a pass XDP program on the links whose peers send XDP_TX frames."""
        super().configure()
        for ifname in self.node.xdp_pass:
            if loader.xdp_info(self.node.netns, ifname) is None:
                loader.attach_xdp(self.node.netns, ifname, pass_program_fd())

    def summary(self) -> str:
        """The multipath routes it holds, or where they come from (BGP)."""
        if self.node.bgp is not None:
            bgp = self.node.bgp
            return f"bird: BGP AS {bgp.asn} with {len(bgp.peers)} edges, ECMP from their announcements"
        return "; ".join(
            f"ECMP {r.dst} over {len(r.nexthops)} edges" for r in self.node.routes if len(r.nexthops) > 1
        )
