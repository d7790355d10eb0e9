"""The L4 load balancer's metric families: its counters map (local, forwarded, chained, received, bad
encapsulation) and which table generation it applied. Served by the XDP agent, which hosts the LB."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from edgesim.lb import layout
from edgesim.metrics.families import Family, Sample, Source

PACKETS = Family(
    "edgesim_xdp_lb_packets_total",
    "Packets by the load balancer's verdict: local, forwarded, chained, received, bad_encap (its counters).",
    ("verdict",),
)
GENERATION = Family(
    "edgesim_xdp_lb_table_generation",
    "The generation of the lab's LB state this edge's table was computed from.",
    kind="gauge",
)
ENABLED = Family(
    "edgesim_xdp_lb_enabled", "1 when the load balancer forwards flows to their owner.", kind="gauge"
)
FAMILIES = (PACKETS, GENERATION, ENABLED)


def source(stats: Callable[[], dict[str, Any]]) -> Source:
    """The families, read from the balancer's counters (not its table: reading 131,074 buckets is slow)."""

    def read() -> Iterator[Sample]:
        applied = stats()
        for name in layout.COUNTER_SLOTS.values():
            yield PACKETS.name, (name,), applied["counters"][name]
        yield GENERATION.name, (), applied.get("generation", 0)
        yield ENABLED.name, (), int(bool(applied.get("enabled")))

    return Source(FAMILIES, read)
