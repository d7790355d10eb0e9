"""The buckets every edge writes into its BPF maps: (owner, previous owner) per Maglev slot. Pure.

A table is two byte strings (first and second owner's id per slot), not 65,537 Python tuples: an agent
keeps the one it applied, and writes it into the map as one buffer.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import overload

from edgesim.lb import maglev
from edgesim.lb.store import LbState

# A Maglev table builder: maglev.build_ids, or one that shares its results between processes.
Builder = Callable[[Mapping[str, int]], tuple[tuple[str, ...], bytes]]


@dataclass(frozen=True)
class Buckets(Sequence[tuple[int, int]]):
    """Per slot, the edge id that takes new connections (`firsts`) and the one before it (`seconds`)."""

    firsts: bytes
    seconds: bytes

    @classmethod
    def every(cls, first: int, second: int) -> Buckets:
        """Every slot with the same owners (packet tests and benchmarks)."""
        return cls(bytes([first]) * maglev.RING_SIZE, bytes([second]) * maglev.RING_SIZE)

    def __len__(self) -> int:
        return len(self.firsts)

    @overload
    def __getitem__(self, index: int) -> tuple[int, int]: ...
    @overload
    def __getitem__(self, index: slice) -> list[tuple[int, int]]: ...
    def __getitem__(self, index: int | slice) -> tuple[int, int] | list[tuple[int, int]]:
        if isinstance(index, slice):
            return list(zip(self.firsts[index], self.seconds[index], strict=True))
        return self.firsts[index], self.seconds[index]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self.firsts, self.seconds, strict=True)

    def packed(self) -> bytes:
        """The slots as struct lb_bucket {__u8 first; __u8 second;} one after the other."""
        out = bytearray(2 * len(self.firsts))
        out[0::2] = self.firsts
        out[1::2] = self.seconds
        return bytes(out)


def members(state: LbState, unhealthy: Collection[str]) -> dict[str, int]:
    """The weights of the edges that own buckets: not drained and not failing their health check."""
    return {e.name: e.weight for e in state.edges if e.name not in state.drained and e.name not in unhealthy}


def _ids(state: LbState, weights: Mapping[str, int], build: Builder) -> bytes:
    """The Maglev table of `weights` with each slot holding the edge's id (its index in the state)."""
    names, table = build(weights)
    ids = {name: index for index, name in enumerate(state.names())}
    translation = bytearray(range(256))
    for index, name in enumerate(names):
        translation[index] = ids[name]
    return table.translate(translation)


def buckets(
    state: LbState,
    unhealthy: Collection[str],
    fallback: str,
    applied: Buckets | None = None,
    build: Builder = maglev.build_ids,
) -> Buckets:
    """(first, second) edge ids per slot. `first` takes new connections. Where a slot's owner changes from
    the `applied` table, `second` becomes the old owner, which holds the slot's open connections
    (Unimog's daisy chain); where it does not, the slot keeps its second hop. Whatever moved the slot — a
    drain, an undrain, a failed or recovered health check — connections stay with their socket, and a
    false health alarm costs none of them. With no edge left to own anything, every slot stays on
    `fallback` (the edge computing the table) rather than nowhere."""
    names = state.names()
    now = _ids(state, members(state, ()), build)
    failing = {names.index(name) for name in unhealthy if name in names}
    if failing and now:
        # Only a failing edge's own slots move (to where a table without it puts them): a health alarm must
        # not reshuffle other slots, whose daisy chains (one previous owner each) would break.
        without = _ids(state, members(state, unhealthy), build)
        now = bytes(a if o in failing else o for o, a in zip(now, without, strict=True)) if without else b""
    if not now:
        now = bytes([names.index(fallback)]) * maglev.RING_SIZE
        return Buckets(now, now)
    if applied is None:
        return Buckets(now, now)
    seconds = bytes(
        second if first == old_first else old_first
        for first, old_first, second in zip(now, applied.firsts, applied.seconds, strict=True)
    )
    return Buckets(now, seconds)


def shares(state: LbState, unhealthy: Collection[str] = ()) -> dict[str, float]:
    """Each edge's share of new connections (0 for drained or failing edges)."""
    got = maglev.shares(maglev.build(members(state, unhealthy)))
    return {name: got.get(name, 0.0) for name in state.names()}
