"""Maglev tables shared by a lab's agents through files: computed once per set of edges, read by the rest.

A health verdict reaches every agent within the same fraction of a second, and each needs the same table
(Maglev is deterministic): 64 agents each spending ~0.2 s of CPU on it (more under load) kept a 2-core
machine busy for seconds. The first agent to need a table takes its lock, builds it and files it under
`lb-rings/<digest>.ring` in the lab's state directory (one rename); the others wait for the lock and read
65,537 bytes. A file that is not a whole table is built again, never used.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

from edgesim import locks
from edgesim.files import atomic_write_bytes
from edgesim.lb import maglev

RINGS_DIR = "lb-rings"
# Longer than any build takes on a loaded machine; past it the agent builds the table itself.
LOCK_WAIT_S = 30.0


class SharedRings:
    """A `table.Builder` whose tables are filed under `directory`/lb-rings (the lab's state directory)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory / RINGS_DIR

    def build(self, weights: Mapping[str, int]) -> tuple[tuple[str, ...], bytes]:
        """The table of `weights`, as maglev.build_ids gives it."""
        key = maglev.key_of(weights)
        names = tuple(n for n, _ in key)
        if not key:
            return names, b""
        digest = hashlib.sha256(json.dumps([key, maglev.RING_SIZE]).encode()).hexdigest()[:32]
        path = self.directory / f"{digest}.ring"
        table = _read(path, len(names))
        if table is not None:
            return names, table
        try:
            with locks.hold(self.directory / f"{digest}.lock", wait_s=LOCK_WAIT_S):
                table = _read(path, len(names))  # built by the holder we waited for
                if table is None:
                    table = maglev.build_ids(weights)[1]
                    atomic_write_bytes(path, table)
        except locks.Busy:
            table = maglev.build_ids(weights)[1]
        return names, table


def _read(path: Path, edges: int) -> bytes | None:
    """The table filed at `path`, when it is one: RING_SIZE slots, each naming one of the edges."""
    try:
        table = path.read_bytes()
    except OSError:
        return None
    return table if len(table) == maglev.RING_SIZE and max(table) < edges else None
