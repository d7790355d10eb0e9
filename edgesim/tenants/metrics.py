"""Tenants' metric families: the GRE program's counters map per tenant and verdict, each tenant
firewall's named counters, and the agent's view of the config store. Served by the tenant agent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from edgesim.metrics.families import Family, Sample, Source

GRE_PACKETS = Family(
    "edgesim_gre_packets_total",
    "Packets through the edge's GRE programs by tenant and verdict (map counters).",
    ("tenant", "verdict"),
)
GRE_BYTES = Family(
    "edgesim_gre_bytes_total",
    "Bytes through the edge's GRE programs by tenant and verdict (map counters).",
    ("tenant", "verdict"),
)
FIREWALL = Family(
    "edgesim_tenant_firewall_packets_total",
    "Packets counted by each tenant firewall's named counters: accepted, dropped, syn.",
    ("tenant", "counter"),
)
STORE_REACHABLE = Family(
    "edgesim_tenant_store_reachable",
    "1 when the agent's last read of the config store succeeded.",
    kind="gauge",
)
REVISION = Family(
    "edgesim_tenant_applied_revision", "The config store revision the agent has applied.", kind="gauge"
)
FAMILIES = (GRE_PACKETS, GRE_BYTES, FIREWALL, STORE_REACHABLE, REVISION)


def source(status: Callable[[], dict[str, Any]]) -> Source:
    """The families, read from the agent's status (the same numbers its /status page shows)."""

    def read() -> Iterator[Sample]:
        now = status()
        yield STORE_REACHABLE.name, (), int(bool(now["store"]["reachable"]))
        yield REVISION.name, (), now["applied"]["revision"]
        for tenant, verdicts in sorted(now["gre"].items()):
            for verdict, (packets, size) in sorted(verdicts.items()):
                yield GRE_PACKETS.name, (tenant, verdict), packets
                yield GRE_BYTES.name, (tenant, verdict), size
        for tenant, counters in sorted(now["firewall"].items()):
            for name, packets in sorted(counters.items()):
                yield FIREWALL.name, (tenant, name), packets

    return Source(FAMILIES, read)
