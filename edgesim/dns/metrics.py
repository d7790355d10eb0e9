"""The DNS socket filter's metric families: its totals map (datagrams passed, dropped over a source's rate,
unparsed; sources tracked), the server's answers by outcome and the socket's receive-buffer drops. Served by
the DNS server, which owns the socket and its filter. Per-source counters stay out: sources are unbounded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from edgesim.metrics.families import Family, Sample, Source

FILTER = Family(
    "edgesim_dns_filter_datagrams_total",
    "Datagrams the DNS socket's filter saw, by verdict: passed, dropped (over its source's rate), unparsed.",
    ("verdict",),
)
SOURCES = Family(
    "edgesim_dns_filter_sources_total", "Sources the DNS socket's filter has tracked (its LRU map's inserts)."
)
QUERIES = Family(
    "edgesim_dns_queries_total",
    "Queries the DNS server handled, by outcome (answered, nxdomain, refused, malformed, ...).",
    ("outcome",),
)
RX_DROPS = Family(
    "edgesim_dns_socket_rx_drops_total",
    "Datagrams the DNS socket dropped for a full receive buffer (the filter's own drops not included).",
)
FAMILIES = (FILTER, SOURCES, QUERIES, RX_DROPS)
VERDICTS = ("passed", "dropped", "unparsed")


def source(stats: Callable[[], dict[str, Any]]) -> Source:
    """The families, read from the server's `stats()`."""

    def read() -> Iterator[Sample]:
        now = stats()
        for verdict in VERDICTS:
            yield FILTER.name, (verdict,), now["filter"][verdict]
        yield SOURCES.name, (), now["filter"]["sources"]
        for outcome, count in sorted(now["queries"].items()):
            yield QUERIES.name, (outcome,), count
        yield RX_DROPS.name, (), now["rx_drops"]

    return Source(FAMILIES, read)
