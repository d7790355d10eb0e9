"""The sk_lookup dispatcher's metric families: its per-label counters (lookups that matched a binding, misses
with no registered socket, drops) and its totals (lookups left to the kernel, connections handed to a
socket). Served by the edge's dispatch agent. Labels are the lab's binding labels: few, planned."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from edgesim.metrics.families import Family, Sample, Source

LOOKUPS = Family(
    "edgesim_dispatch_label_lookups_total",
    "sk_lookup lookups that matched a binding of the label (map label_stats).",
    ("label",),
)
MISSES = Family(
    "edgesim_dispatch_label_misses_total",
    "Lookups for the label while no socket was registered under it (map label_stats).",
    ("label",),
)
DROPS = Family(
    "edgesim_dispatch_label_drops_total",
    "Connections the dispatcher dropped for the label (map label_stats).",
    ("label",),
)
TOTALS = Family(
    "edgesim_dispatch_lookups_total",
    "sk_lookup lookups by result: no_binding (left to the kernel), assigned (map dispatch_totals).",
    ("result",),
)
REGISTERED = Family(
    "edgesim_dispatch_label_registered",
    "1 when a socket is registered under the label.",
    ("label",),
    kind="gauge",
)
FAMILIES = (LOOKUPS, MISSES, DROPS, TOTALS, REGISTERED)


def source(stats: Callable[[], dict[str, Any]]) -> Source:
    """The families, read from the agent's `stats()`."""

    def read() -> Iterator[Sample]:
        now = stats()
        for label, counters in sorted(now["labels"].items()):
            yield LOOKUPS.name, (label,), counters["lookups"]
            yield MISSES.name, (label,), counters["misses"]
            yield DROPS.name, (label,), counters["drops"]
            yield REGISTERED.name, (label,), int(bool(counters["registered"]))
        for result, count in sorted(now["totals"].items()):
            yield TOTALS.name, (result,), count

    return Source(FAMILIES, read)
