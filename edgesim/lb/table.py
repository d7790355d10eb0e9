"""The buckets every edge writes into its BPF maps: (owner, previous owner) per Maglev slot. Pure."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from edgesim.lb import maglev
from edgesim.lb.store import LbState


def members(state: LbState, unhealthy: Collection[str]) -> dict[str, int]:
    """The weights of the edges that own buckets: not drained and not failing their health check."""
    return {e.name: e.weight for e in state.edges if e.name not in state.drained and e.name not in unhealthy}


def buckets(
    state: LbState,
    unhealthy: Collection[str],
    fallback: str,
    applied: Sequence[tuple[int, int]] | None = None,
) -> list[tuple[int, int]]:
    """(first, second) edge ids per slot. `first` takes new connections. Where a slot's owner changes from
    the `applied` table, `second` becomes the old owner, which holds the slot's open connections
    (Unimog's daisy chain); where it does not, the slot keeps its second hop. Whatever moved the slot — a
    drain, an undrain, a failed or recovered health check — connections stay with their socket, and a
    false health alarm costs none of them. With no edge left to own anything, every slot stays on
    `fallback` (the edge computing the table) rather than nowhere."""
    ids = {name: index for index, name in enumerate(state.names())}
    now = maglev.build(members(state, ()))
    if unhealthy:
        # Only a failing edge's own slots move (to where a table without it puts them): a health alarm must
        # not reshuffle other slots, whose daisy chains (one previous owner each) would break.
        without = maglev.build(members(state, unhealthy))
        now = [o if o not in unhealthy else a for o, a in zip(now, without, strict=True)] if without else []
    if not now:
        return [(ids[fallback], ids[fallback])] * maglev.RING_SIZE
    firsts = [ids[name] for name in now]
    if applied is None:
        return [(first, first) for first in firsts]
    return [
        (first, second if first == old_first else old_first)
        for first, (old_first, second) in zip(firsts, applied, strict=True)
    ]


def shares(state: LbState, unhealthy: Collection[str] = ()) -> dict[str, float]:
    """Each edge's share of new connections (0 for drained or failing edges)."""
    got = maglev.shares(maglev.build(members(state, unhealthy)))
    return {name: got.get(name, 0.0) for name in state.names()}
