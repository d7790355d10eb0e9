"""What a metric family is, the ebpf_exporter way: one family per BPF map (or kernel table), counters
ending in `_total`, labels decoded from the map's keys (rule names, verdicts, tenants), never a label
with unbounded values (addresses, ports, flows). Pure.

A feature exports its counters with a `metrics` part, `edgesim/<feature>/metrics.py`, which defines
`FAMILIES` (a tuple of Family) and a `source(...)` function returning a Source: those families and a
function reading their samples now. The agent that owns the maps serves the sources it hosts
(edgesim.metrics.exporter); the node's name is not a label of the family, Prometheus adds it per target.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

PREFIX = "edgesim_"

# One sample: the family's name, its label values (in the family's label order) and the value.
Sample = tuple[str, tuple[str, ...], float]


@dataclass(frozen=True)
class Family:
    """One metric family: its full name (counters end in `_total`), help text, label names, type."""

    name: str
    help: str
    labels: tuple[str, ...] = ()
    kind: Literal["counter", "gauge"] = "counter"

    def __post_init__(self) -> None:
        if not self.name.startswith(PREFIX):
            raise ValueError(f"metric {self.name} does not start with {PREFIX}")
        if (self.kind == "counter") != self.name.endswith("_total"):
            raise ValueError(f"metric {self.name}: counters, and only counters, end in _total")


@dataclass(frozen=True)
class Source:
    """The families one part of an agent exports, and how to read their samples now."""

    families: tuple[Family, ...]
    read: Callable[[], Iterable[Sample]]


def slug(text: str) -> str:
    """A label value from a verdict's name: lowercase words joined by `_` (`bad encap` → `bad_encap`)."""
    return "_".join("".join(c if c.isalnum() else " " for c in text.lower()).split())
