"""The DNS socket filter's maps from Python: its per-source limit, and its counters per source and in all.

`source_counters` and `totals` are plain functions over the loaded program, for the status, the tasks and
metrics alike.
"""

from __future__ import annotations

import ctypes
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgesim.dns.section import DnsLimit

if TYPE_CHECKING:
    import bcc

# sf_totals' slots (SF_TOTAL_* in sockfilter_consts.h), in order.
TOTALS = ("sources", "passed", "dropped", "unparsed")
NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class SourceCount:
    """What the filter did with one source's datagrams."""

    address: str
    passed: int
    dropped: int


def set_limit(bpf: bcc.BPF, limit: DnsLimit) -> None:
    """Put the limit in force: the filter reads it for every datagram, so no reattach is needed."""
    table = bpf[b"sf_config"]
    config = table.Leaf()
    # GCRA's form of a bucket of `burst` tokens refilled at `rate`: one token every interval, and an
    # arrival may run up to burst - 1 intervals ahead of its schedule.
    config.interval_ns = NS_PER_S // limit.rate
    config.tolerance_ns = config.interval_ns * (limit.burst - 1)
    config.enabled = int(limit.enabled)
    table[ctypes.c_int(0)] = config


def source_counters(bpf: bcc.BPF) -> list[SourceCount]:
    """Every source the filter tracks now, with its passed and dropped datagrams."""
    return [
        SourceCount(socket.inet_ntoa(key.value.to_bytes(4, "little")), leaf.passed, leaf.dropped)
        for key, leaf in bpf[b"sf_sources"].items()
    ]


def totals(bpf: bcc.BPF) -> dict[str, int]:
    """The socket's counters: sources ever tracked, datagrams passed, dropped, and unparsed."""
    table = bpf[b"sf_totals"]
    return {name: table[ctypes.c_int(slot)].value for slot, name in enumerate(TOTALS)}


def top_sources(sources: list[SourceCount], count: int) -> list[SourceCount]:
    """The `count` sources with the most drops (then the most passed), most first."""
    return sorted(sources, key=lambda s: (s.dropped, s.passed, s.address), reverse=True)[:count]
