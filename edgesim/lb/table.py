"""The buckets every edge writes into its BPF maps: (owner, previous owner) per Maglev slot. Pure."""

from __future__ import annotations

from collections.abc import Collection

from edgesim.lb import maglev
from edgesim.lb.store import LbState


def members(state: LbState, drained: Collection[str], unhealthy: Collection[str]) -> dict[str, int]:
    """The weights of the edges that own buckets: not drained and not failing their health check."""
    return {e.name: e.weight for e in state.edges if e.name not in drained and e.name not in unhealthy}


def buckets(state: LbState, unhealthy: Collection[str], fallback: str) -> list[tuple[int, int]]:
    """(first, second) edge ids per slot: `first` takes new connections, `second` is where the slot's
    connections went before the last drain/undrain (Unimog's daisy chain). With no edge left to own
    anything, every slot stays on `fallback` (the edge computing the table) rather than nowhere."""
    ids = {name: index for index, name in enumerate(state.names())}
    now = maglev.build(members(state, state.drained, unhealthy))
    before = maglev.build(members(state, state.previous_drained, unhealthy)) or now
    if not now:
        return [(ids[fallback], ids[fallback])] * maglev.RING_SIZE
    return [(ids[a], ids[b]) for a, b in zip(now, before, strict=True)]


def shares(state: LbState, unhealthy: Collection[str] = ()) -> dict[str, float]:
    """Each edge's share of new connections (0 for drained or failing edges)."""
    got = maglev.shares(maglev.build(members(state, state.drained, unhealthy)))
    return {name: got.get(name, 0.0) for name in state.names()}
