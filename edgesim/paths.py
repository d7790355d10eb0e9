"""Where a lab keeps its files on the host (constants only, so the pure plan may name them)."""

from __future__ import annotations

import os
from pathlib import Path

STATE_ROOT = Path(os.environ.get("EDGESIM_STATE_ROOT", "/run/edgesim"))


def lab_dir(lab: str) -> Path:
    """The directory holding one lab's state, logs and control sockets."""
    return STATE_ROOT / lab
