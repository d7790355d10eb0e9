"""The `dns:` section of a topology: the edges' lab zone and the per-source limit of their DNS socket."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Annotated

from pydantic import Field, StringConstraints

from edgesim.fields import Strict

# A DNS name of letters, digits and hyphens, dot-separated (no trailing dot): the zone and its labels.
ZONE_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
LABEL_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
# Bounds of the per-source limit: what the filter's GCRA arithmetic (nanoseconds in 64 bits) handles well.
MAX_RATE = 1_000_000
MAX_BURST = 1_000_000
Label = Annotated[str, StringConstraints(pattern=LABEL_PATTERN)]


class DnsLimit(Strict):
    """The socket filter's token bucket per source address (changeable at run time: `dns limit`)."""

    rate: int = Field(20, ge=1, le=MAX_RATE, description="Queries per second each source may send.")
    burst: int = Field(40, ge=1, le=MAX_BURST, description="Queries a source may send at once.")
    enabled: bool = Field(True, description="false: the filter counts every source but drops nothing.")


class Dns(Strict):
    """An authoritative DNS server on every edge's VIPs (port 53), from one UDP socket per edge."""

    zone: str = Field(
        "pop.example", pattern=ZONE_PATTERN, max_length=200, description="The lab zone the edges serve."
    )
    names: dict[Label, IPv4Address] = Field(
        default_factory=dict,
        description="Extra A records (label -> address) besides the planned ones (www, ns1, vipN, servers).",
    )
    limit: DnsLimit = Field(default_factory=DnsLimit)
