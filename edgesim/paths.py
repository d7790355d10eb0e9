"""Where a lab keeps its files on the host (constants and names only, so the pure plan may name them)."""

from __future__ import annotations

import os
from pathlib import Path

from edgesim.guard import lab_name

STATE_ROOT = Path(os.environ.get("EDGESIM_STATE_ROOT", "/run/edgesim"))


def lab_dir(lab: str) -> Path:
    """The directory holding one lab's state, logs and control sockets (the name is checked first)."""
    return STATE_ROOT / lab_name(lab, "lab")


def lock_file(lab: str) -> Path:
    """The lab's lock file: beside its state directory, so that removing the directory keeps the lock."""
    return STATE_ROOT / f"{lab_name(lab, 'lab')}.lock"
