"""Exclusive file locks (flock): one writer per lab, one instance per supervisor or agent.

A lock is held on an open file; the kernel drops it when the holder exits, however it dies, so a killed
`up` never leaves a lab locked. The holder writes its pid and command line into the file, so that a
waiter can say whom it waits for. A lock file may be removed while held (`down` removes the lab's):
a waiter that then gets the lock on the removed file notices (another inode is, or no file is, at the
path) and starts over on the path's current file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

# Locks this process holds, by path: taking one again (up calls down) nests instead of deadlocking.
_held: dict[Path, tuple[int, int]] = {}


class Busy(Exception):
    """The lock is held by another process (and waiting for it was not allowed or took too long)."""

    def __init__(self, path: Path, holder: str) -> None:
        self.path = path
        self.holder = holder
        super().__init__(f"{path} is held by {holder}")


def holder(path: Path) -> str:
    """Who holds the lock at `path`, as its holder wrote it ("pid N: command"), or "another process"."""
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    return text or "another process"


def _describe() -> str:
    command = " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:]) if sys.argv else "python"
    return f"pid {os.getpid()}: {command}"


def same_file(path: Path, fd: int) -> bool:
    """Whether `fd` is the file at `path` now (not one removed or replaced since it was opened)."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _try(path: Path) -> int | None:
    """The fd of `path` locked by us, or None when another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if not same_file(path, fd):
        # Removed (or replaced) by the previous holder after we opened it: this lock guards nothing.
        os.close(fd)
        return _try(path)
    os.ftruncate(fd, 0)
    os.pwrite(fd, (_describe() + "\n").encode(), 0)
    return fd


def try_own(path: Path) -> int | None:
    """Take the lock at `path` now, on a file descriptor of its own, or None when it is held (by anyone,
    this process included: unlike `acquire`, it never nests). Closing the fd gives it back."""
    return _try(Path(path).absolute())


def acquire(path: Path, wait_s: float = 0.0, waiting: Callable[[str], None] | None = None) -> None:
    """Take the lock at `path`, waiting up to `wait_s` (telling `waiting` once whom for); raises Busy."""
    path = Path(path).absolute()
    if path in _held:
        fd, depth = _held[path]
        _held[path] = (fd, depth + 1)
        return
    deadline = time.monotonic() + wait_s
    told = False
    while (fd := _try(path)) is None:
        if time.monotonic() >= deadline:
            raise Busy(path, holder(path))
        if waiting is not None and not told:
            waiting(holder(path))
            told = True
        time.sleep(0.1)
    _held[path] = (fd, 1)


def release(path: Path) -> None:
    """Give back one level of the lock at `path` (the last one unlocks it)."""
    path = Path(path).absolute()
    fd, depth = _held[path]
    if depth > 1:
        _held[path] = (fd, depth - 1)
        return
    del _held[path]
    os.close(fd)


def is_held(path: Path) -> bool:
    """Whether this process holds the lock at `path`."""
    return Path(path).absolute() in _held


@contextlib.contextmanager
def hold(path: Path, wait_s: float = 0.0, waiting: Callable[[str], None] | None = None) -> Iterator[None]:
    """The lock at `path` for the block (see acquire)."""
    acquire(path, wait_s, waiting)
    try:
        yield
    finally:
        release(path)
