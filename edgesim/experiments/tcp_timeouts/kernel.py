"""What the running kernel offers the experiment: its TCP timer sysctls (per namespace), its tick (HZ)."""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

from edgesim import namespaces

# The sysctls that shape TCP timeouts, reported with every case (those this kernel has).
TIMER_SYSCTLS = (
    "tcp_syn_retries",
    "tcp_synack_retries",
    "tcp_syn_linear_timeouts",
    "tcp_retries1",
    "tcp_retries2",
    "tcp_keepalive_time",
    "tcp_keepalive_intvl",
    "tcp_keepalive_probes",
    "tcp_orphan_retries",
    "tcp_early_retrans",
    "tcp_rto_min_us",
    "tcp_rto_max_ms",
)
_HZ_LINE = re.compile(rb"^CONFIG_HZ=(\d+)$", re.MULTILINE)


def read_sysctls(netns: str) -> dict[str, int]:
    """The TCP timer sysctls of a namespace, by short name (those that exist on this kernel)."""
    values = {}
    with namespaces.inside(netns):
        for key in TIMER_SYSCTLS:
            try:
                values[key] = int(Path("/proc/sys/net/ipv4", key).read_text())
            except FileNotFoundError:
                continue
    return values


def write_sysctls(netns: str, values: dict[str, int]) -> None:
    """Set TCP sysctls (short names) inside a namespace."""
    with namespaces.inside(netns):
        for key, value in values.items():
            Path("/proc/sys/net/ipv4", key).write_text(str(value))


def hz() -> int | None:
    """The kernel's timer frequency (CONFIG_HZ), or None when the kernel does not publish its config."""
    for path in (Path("/proc/config.gz"), Path(f"/boot/config-{os.uname().release}")):
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        text = gzip.decompress(raw) if path.suffix == ".gz" else raw
        match = _HZ_LINE.search(text)
        if match:
            return int(match.group(1))
    return None


def release() -> str:
    """The running kernel's release string."""
    return os.uname().release
