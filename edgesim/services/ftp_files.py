"""The files the customer FTP server offers, reproducible so that a test can check what it received."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

DATA_SIZE = 1 << 20


def data_bytes(size: int = DATA_SIZE) -> bytes:
    """The content of data.bin: a SHA-256 chain, so that no two blocks are alike."""
    blocks, block = [], b"edgesim"
    for _ in range(-(-size // hashlib.sha256().digest_size)):
        block = hashlib.sha256(block).digest()
        blocks.append(block)
    return b"".join(blocks)[:size]


def make_root(name: str) -> Path:
    """A temporary directory with the files: hello.txt (the node's name) and data.bin (DATA_SIZE bytes)."""
    root = Path(tempfile.mkdtemp(prefix="edgesim-ftp-"))
    (root / "hello.txt").write_text(f"{name}\n")
    (root / "data.bin").write_bytes(data_bytes())
    return root
