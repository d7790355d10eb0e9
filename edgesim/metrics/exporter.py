"""Serve an agent's metric sources over HTTP `/metrics` with prometheus_client, inside the agent's process
(the maps are its own; no second process per edge)."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence

from prometheus_client import generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from edgesim.metrics.families import Family, Source

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _empty(family: Family) -> Metric:
    if family.kind == "counter":
        # prometheus_client adds `_total` to a counter's samples itself.
        return CounterMetricFamily(family.name.removesuffix("_total"), family.help, labels=family.labels)
    return GaugeMetricFamily(family.name, family.help, labels=family.labels)


class SourcesCollector(Collector):
    """Reads every source at each scrape; a source that fails is logged and exports no samples."""

    def __init__(self, sources: Sequence[Source]) -> None:
        self.sources = list(sources)

    def collect(self) -> Iterator[Metric]:
        """Every family of every source, with the samples read now."""
        for source in self.sources:
            metrics = {family.name: (family, _empty(family)) for family in source.families}
            try:
                for name, labels, value in source.read():
                    family, metric = metrics[name]
                    if len(labels) != len(family.labels):
                        raise ValueError(f"{name}: labels {labels} for {family.labels}")
                    metric.add_metric(list(labels), value)
            except Exception as err:  # a scrape must never kill the agent
                print(f"metrics: reading {sorted(metrics)[0]}…: {err}", file=sys.stderr, flush=True)
                metrics = {family.name: (family, _empty(family)) for family in source.families}
            yield from (metric for _, metric in metrics.values())


def registry(sources: Sequence[Source]) -> CollectorRegistry:
    """A registry holding only these sources (no process or platform collectors: the families are ours)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(SourcesCollector(sources))
    return reg


def exposition(reg: CollectorRegistry) -> bytes:
    """The registry as Prometheus text, for an agent that serves `/metrics` from its own HTTP server."""
    return generate_latest(reg)


def serve(listen: str, sources: Sequence[Source]) -> object:
    """Serve `/metrics` on listen (address:port) from a daemon thread; returns the server."""
    host, port = listen.rsplit(":", 1)
    server, _thread = start_http_server(int(port), addr=host, registry=registry(sources))
    return server
