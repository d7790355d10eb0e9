"""BPF run-time statistics: the kernel's own count of a program's runs and of the time spent in them.

Counting costs two clock reads per program run, so the kernel counts only while someone asks:
`collecting()` holds a BPF_ENABLE_STATS file descriptor (libbpf's bpf_enable_stats) for as long as its block
runs, and closing it stops the counting (unlike the kernel.bpf_stats_enabled sysctl, nothing stays on if the
caller dies). `read(fd)` takes run_cnt and run_time_ns from the program's /proc fdinfo.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from edgesim.errors import EdgesimError

BPF_STATS_RUN_TIME = 0


@dataclass(frozen=True)
class RunStats:
    """A program's runs and the time spent in them since it was loaded (while counting was on)."""

    runs: int
    run_time_ns: int

    def __sub__(self, other: RunStats) -> RunStats:
        return RunStats(self.runs - other.runs, self.run_time_ns - other.run_time_ns)

    @property
    def ns_per_run(self) -> float:
        """Average time per run."""
        return self.run_time_ns / self.runs if self.runs else 0.0


@cache
def _libbpf() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("bpf") or "libbpf.so.1", use_errno=True)
    lib.bpf_enable_stats.argtypes = [ctypes.c_int]
    lib.bpf_enable_stats.restype = ctypes.c_int
    return lib


@contextmanager
def collecting() -> Iterator[None]:
    """Have the kernel count every BPF program's runs and run time while the block runs."""
    fd = _libbpf().bpf_enable_stats(BPF_STATS_RUN_TIME)
    if fd < 0:
        code = ctypes.get_errno() or -fd
        raise EdgesimError(f"BPF_ENABLE_STATS failed: {os.strerror(code)}")
    try:
        yield
    finally:
        os.close(fd)


def read(prog_fd: int) -> RunStats:
    """The program's run count and total run time, from its file descriptor's fdinfo."""
    fields = dict(
        line.split(":", 1)
        for line in Path(f"/proc/self/fdinfo/{prog_fd}").read_text().splitlines()
        if ":" in line
    )
    return RunStats(int(fields.get("run_cnt", "0")), int(fields.get("run_time_ns", "0")))
