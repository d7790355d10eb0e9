"""Write the load balancer's state into a loaded edge program's maps; the table switch is atomic.

Keys and values are bcc's own types for each map (`table.Key`, `table.Leaf`), built from the C structs.
"""

from __future__ import annotations

import ctypes
from array import array
from ipaddress import IPv4Address
from typing import Any

from edgesim.bpf.tables import be32
from edgesim.lb import layout
from edgesim.lb.store import LbState
from edgesim.lb.table import Buckets


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


def write_table(bpf: Any, buckets: Buckets, enabled: bool, self_id: int, ifindex: int) -> None:
    """Fill the inactive table in one batch, then make it the live one: a packet sees the old table or the
    new one, never a mix."""
    ring = bpf[b"lb_ring"]
    spare = 1 - read_config(bpf).active
    base = spare * layout.RING_SIZE
    # Whole buffers into ctypes arrays: no Python object per slot (65,537 of them cost an agent ~0.2 s).
    keys = (ring.Key * layout.RING_SIZE).from_buffer_copy(_keys(base, ctypes.sizeof(ring.Key)))
    values = (ring.Leaf * layout.RING_SIZE).from_buffer_copy(buckets.packed())
    ring.items_update_batch(keys, values)
    write_config(bpf, enabled=enabled, active=spare, self_id=self_id, ifindex=ifindex)


def _keys(base: int, size: int) -> bytes:
    """The array indexes base … base + RING_SIZE - 1 as native integers of `size` bytes."""
    if size != 4:
        raise ValueError(f"lb_ring's key is {size} bytes, expected a __u32")
    return array("I", range(base, base + layout.RING_SIZE)).tobytes()
