"""The jobs' scratch trees under /var/tmp: one job of a kind at a time, and what a crashed one left removed.

A job killed with its machine (power loss, a CI runner restarted) never reaches its cleanup, so its scratch
tree stays. The next job of the same kind removes it, under the kind's lock: a tree is only stale when no job
of that kind runs. The kind is one of the code's own names, never a user's, so the glob cannot leave the
`edgesim-KIND-` prefix under /var/tmp.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from rich.console import Console

from edgesim import locks
from edgesim.errors import EdgesimError, Problem

SCRATCH_ROOT = Path("/var/tmp")
Kind = Literal["vagrant", "vm"]


def _prefix(kind: Kind) -> str:
    if kind not in ("vagrant", "vm"):  # a Literal is not checked at run time; the glob below must stay ours
        raise ValueError(f"unknown job kind {kind!r}")
    return f"edgesim-{kind}-"


def stale_trees(kind: Kind) -> list[Path]:
    """Scratch trees of this kind: directories (never symlinks) named edgesim-KIND-* right under /var/tmp."""
    found = SCRATCH_ROOT.glob(_prefix(kind) + "*")
    return sorted(p for p in found if p.is_dir() and not p.is_symlink())


@contextmanager
def scratch_dir(kind: Kind, lock_dir: Path, console: Console, keep: bool = False) -> Iterator[Path]:
    """A fresh scratch directory for one job, held under the kind's lock; a crashed job's trees go first."""
    lock = lock_dir / f"{kind}-job.lock"
    try:
        locks.acquire(lock)
    except locks.Busy as busy:
        raise EdgesimError(
            Problem(f"the {kind} job", f"another one runs ({busy.holder})", "wait for it to finish")
        ) from None
    try:
        for stale in stale_trees(kind):
            shutil.rmtree(stale)
            console.print(f"removed {stale}, left by a job that did not finish")
        path = Path(tempfile.mkdtemp(prefix=_prefix(kind), dir=SCRATCH_ROOT))
        try:
            yield path
        finally:
            if not keep:
                shutil.rmtree(path, ignore_errors=True)
    finally:
        locks.release(lock)
