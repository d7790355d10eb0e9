"""Waiting until no BPF program still works on map values it read before a change (an RCU grace period).

XDP and TC programs run inside RCU read-side sections (softirq, bottom halves off), so once a grace period
has passed after a write, every program run that could have read the old value has ended. membarrier's
MEMBARRIER_CMD_GLOBAL is synchronize_rcu() from user space (no privilege needed); the kernel waits the same
way after a write to a map of maps (maybe_wait_bpf_programs).
"""

from __future__ import annotations

import ctypes
import platform
import time
from functools import cache

MEMBARRIER_CMD_GLOBAL = 1
_SYS_MEMBARRIER = {"x86_64": 324, "aarch64": 283}
# Without membarrier (another architecture, or nohz_full CPUs, where the command is refused): a program
# run lasts microseconds, so this is far past the last one that could have read the old value.
_FALLBACK_S = 0.05


@cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def wait_for_programs() -> None:
    """Return once every BPF program run that started before the call has finished."""
    number = _SYS_MEMBARRIER.get(platform.machine())
    if number is None or _libc().syscall(number, MEMBARRIER_CMD_GLOBAL, 0, 0) != 0:
        time.sleep(_FALLBACK_S)
