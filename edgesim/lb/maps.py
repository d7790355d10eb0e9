"""Write the load balancer's state into a loaded edge program's maps; the table switch is atomic."""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from ipaddress import IPv4Address
from typing import Any

from edgesim.lb import layout
from edgesim.lb.store import LbState
from edgesim.mitigation.maps import be32


def _mac(text: str) -> Any:
    return (ctypes.c_uint8 * 6)(*(int(part, 16) for part in text.split(":")))


def write_members(bpf: Any, state: LbState) -> None:
    """Edges (address, MAC), the peers accepted on the backplane, and the balanced VIP:ports."""
    edges, peers, vips = bpf[b"lb_edges"], bpf[b"lb_peers"], bpf[b"lb_vips"]
    for index in range(layout.MAX_EDGES):
        if index < len(state.edges):
            edge = state.edges[index]
            value = layout.Edge(be32(IPv4Address(edge.address)), _mac(edge.mac), 1, 0)
        else:
            value = layout.Edge()
        edges[ctypes.c_int(index)] = edges.Leaf.from_buffer_copy(bytes(value))
    peers.clear()
    for index, edge in enumerate(state.edges):
        peers[peers.Key(be32(IPv4Address(edge.address)))] = peers.Leaf(index + 1)
    vips.clear()
    for vip, port in state.vips:
        key = layout.VipKey(be32(IPv4Address(vip)), port, layout.IPPROTO_TCP)
        vips[vips.Key.from_buffer_copy(bytes(key))] = vips.Leaf(1)


def read_config(bpf: Any) -> layout.Config:
    """The LB's switches as the program sees them."""
    return layout.Config.from_buffer_copy(bytes(bpf[b"lb_config"][ctypes.c_int(0)]))


def write_config(bpf: Any, config: layout.Config) -> None:
    """Replace the switches in one map update (the program reads them once per packet)."""
    table = bpf[b"lb_config"]
    table[ctypes.c_int(0)] = table.Leaf.from_buffer_copy(bytes(config))


def write_table(
    bpf: Any, buckets: Sequence[tuple[int, int]], enabled: bool, self_id: int, ifindex: int
) -> None:
    """Fill the inactive table in one batch, then make it the live one: a packet sees the old table or the
    new one, never a mix."""
    ring = bpf[b"lb_ring"]
    current = read_config(bpf)
    spare = 1 - current.active
    base = spare * layout.RING_SIZE
    keys = (ring.Key * layout.RING_SIZE)(*(base + i for i in range(layout.RING_SIZE)))
    values = (ring.Leaf * layout.RING_SIZE)()
    for i, (first, second) in enumerate(buckets):
        values[i].first = first
        values[i].second = second
    ring.items_update_batch(keys, values)
    write_config(bpf, layout.Config(int(enabled), spare, self_id, ifindex))
