"""Writing files so that a reader (an agent, BIRD, a concurrent task) never sees half of one."""

from __future__ import annotations

import json
import os
from pathlib import Path


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` in one rename, making its directory if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Hidden, so a daemon reading the directory (BIRD's includes) never picks the half-written file up;
    # the pid keeps two writers of the same file from sharing one temporary file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data` in one rename, making its directory if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_json(path: Path, data: object) -> None:
    """Replace `path` with `data` as indented JSON, keys in the order given (plan.json: topology order)."""
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
