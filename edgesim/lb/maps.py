"""Write the load balancer's state into a loaded edge program's maps; the table switch is atomic.

Keys and values are bcc's own types for each map (`table.Key`, `table.Leaf`), built from the C structs.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address
from typing import Any

from edgesim.bpf.tables import be32
from edgesim.lb import layout
from edgesim.lb.store import LbState


def _mac(text: str) -> tuple[int, ...]:
    return tuple(int(part, 16) for part in text.split(":"))


def write_members(bpf: Any, state: LbState) -> None:
    """Edges (address, MAC), the peers accepted on the backplane, and the balanced VIP:ports."""
    edges, peers, vips = bpf[b"lb_edges"], bpf[b"lb_peers"], bpf[b"lb_vips"]
    for index in range(layout.MAX_EDGES):
        if index < len(state.edges):
            edge = state.edges[index]
            edges[index] = edges.Leaf(addr=be32(IPv4Address(edge.address)), mac=_mac(edge.mac), present=1)
        else:
            edges[index] = edges.Leaf()
    peers.clear()
    for index, edge in enumerate(state.edges):
        peers[peers.Key(be32(IPv4Address(edge.address)))] = peers.Leaf(index + 1)
    vips.clear()
    for vip, port in state.vips:
        vips[vips.Key(vip=be32(IPv4Address(vip)), port=port, proto=layout.IPPROTO_TCP)] = vips.Leaf(1)


def read_config(bpf: Any) -> Any:
    """The LB's switches as the program sees them (a struct lb_config)."""
    return bpf[b"lb_config"][0]


def write_config(bpf: Any, *, enabled: bool, active: int, self_id: int, ifindex: int) -> None:
    """Replace the switches in one map update (the program reads them once per packet)."""
    table = bpf[b"lb_config"]
    table[0] = table.Leaf(enabled=int(enabled), active=active, self=self_id, ifindex=ifindex)


def write_table(
    bpf: Any, buckets: Sequence[tuple[int, int]], enabled: bool, self_id: int, ifindex: int
) -> None:
    """Fill the inactive table in one batch, then make it the live one: a packet sees the old table or the
    new one, never a mix."""
    ring = bpf[b"lb_ring"]
    spare = 1 - read_config(bpf).active
    base = spare * layout.RING_SIZE
    keys = (ring.Key * layout.RING_SIZE)(*(base + i for i in range(layout.RING_SIZE)))
    values = (ring.Leaf * layout.RING_SIZE)(*(ring.Leaf(first, second) for first, second in buckets))
    ring.items_update_batch(keys, values)
    write_config(bpf, enabled=enabled, active=spare, self_id=self_id, ifindex=ifindex)
