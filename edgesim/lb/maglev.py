"""Maglev consistent hashing (Eisenbud et al., NSDI 2016, as in Katran): edges → a prime-sized lookup table.

Pure and deterministic: every edge agent computes the same table from the same edge list, so the tables
agree without being shipped around. Each edge gets a permutation of the table's slots from two hashes of
its name; edges take turns claiming their next free preferred slot until the table is full. Shares differ
by at most one slot per round (weights scale the number of turns), and removing an edge moves little more
than the slots it held.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import lru_cache

# A prime well above 100 x the largest PoP (Katran's default size): balance and minimal disruption both
# improve with the table's size relative to the number of edges.
RING_SIZE = 65537
# A free slot while the table fills (a slot holds an edge's index, one byte).
EMPTY = 255


def _hash(name: str, salt: bytes) -> int:
    # Not Python's hash(): that one is randomised per process, and every agent must agree.
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8, person=salt).digest(), "little")


def permutation(name: str, size: int = RING_SIZE) -> tuple[int, int]:
    """(offset, skip) of an edge's preference list: slot j of its list is (offset + j * skip) mod size."""
    return _hash(name, b"maglev-offset") % size, _hash(name, b"maglev-skip") % (size - 1) + 1


def build(weights: Mapping[str, int], size: int = RING_SIZE) -> list[str]:
    """The table: slot → edge name, for the edges with a weight > 0 (an empty list when there is none)."""
    names, table = build_ids(weights, size)
    return [names[i] for i in table]


def build_ids(weights: Mapping[str, int], size: int = RING_SIZE) -> tuple[tuple[str, ...], bytes]:
    """The table as bytes: (the names with a weight > 0, sorted; slot → index into them, one byte each).

    65,537 bytes instead of a list of 65,537 references (what an agent keeps, and builds its BPF
    table from without a Python object per slot).
    """
    key = key_of(weights)
    return tuple(n for n, _ in key), _build(key, size)


def key_of(weights: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    """What a table depends on: the (name, weight) pairs with a weight > 0, sorted."""
    return tuple(sorted((n, w) for n, w in weights.items() if w > 0))


@lru_cache(maxsize=16)
def _build(weights: tuple[tuple[str, int], ...], size: int) -> bytes:
    if not weights:
        return b""
    if len(weights) >= EMPTY:
        raise ValueError(f"at most {EMPTY - 1} edges fit a table of one byte per slot")
    perms = [permutation(n, size) for n, _ in weights]
    top = max(w for _, w in weights)
    nxt = [0] * len(weights)
    credit = [0] * len(weights)
    table = bytearray([EMPTY]) * size
    filled = 0
    while True:
        for i, (offset, skip) in enumerate(perms):
            # Weighted Maglev (Katran): an edge claims a slot only once its accumulated weight reaches the
            # largest weight, so shares follow the weights.
            credit[i] += weights[i][1]
            if credit[i] < top:
                continue
            credit[i] -= top
            slot = (offset + nxt[i] * skip) % size
            while table[slot] != EMPTY:
                nxt[i] += 1
                slot = (offset + nxt[i] * skip) % size
            table[slot] = i
            nxt[i] += 1
            filled += 1
            if filled == size:
                return bytes(table)


def shares(table: Sequence[str]) -> dict[str, float]:
    """The fraction of the table each edge owns."""
    counts = Counter(table)
    return {name: counts[name] / len(table) for name in sorted(counts)}


def moved(before: Sequence[str], after: Sequence[str]) -> float:
    """The fraction of slots whose owner differs between two tables of the same size."""
    return sum(a != b for a, b in zip(before, after, strict=True)) / len(before)
