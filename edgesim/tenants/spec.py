"""What a tenant is, as the config store holds it, and the names and numbers derived from it. Pure.

The same records come from the topology (planned by `up`, which seeds the store) and from `invoke tenant.add`;
every edge agent derives the same namespace, interface, address, mark and table from them.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from edgesim.tenants.rules import RuleError, parse_rule

# Tenant names appear in namespace names (`<lab>-<edge>-<tenant>`) and interface names (`t-<tenant>`).
TENANT_NAME_PATTERN = r"^[a-z][a-z0-9]*$"
TENANT_NAME_MAX = 16
TenantName = Annotated[str, StringConstraints(pattern=TENANT_NAME_PATTERN, max_length=TENANT_NAME_MAX)]
# Each tenant owns one /31 of the tenant-veth /24 (index = id), so ids run 1..127.
MAX_TENANT_ID = 127

# GRE: outer IPv4 header (20 bytes) + RFC 2784 base header (4 bytes) in front of every tunneled packet.
GRE_OVERHEAD = 24
LINK_MTU = 1500
TUNNEL_MTU = LINK_MTU - GRE_OVERHEAD

# Fwmark, routing table and policy-rule priority of tenant N: the base plus N, in ranges of their own.
MARK_BASE = 0x10000
TABLE_BASE = 10000
RULE_PRIORITY_BASE = 10000


class TenantSpec(BaseModel):
    """One tenant as stored under /edgesim/tenants/<name>: prefixes, site router address, firewall rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: TenantName
    id: int = Field(ge=1, le=MAX_TENANT_ID, description="Stable number: mark, table, veth subnet.")
    prefixes: list[IPv4Network] = Field(min_length=1, description="Customer prefixes served by every edge.")
    site: IPv4Address = Field(description="Public address of the customer's GRE site router.")
    rules: list[str] = Field(default_factory=list, description="Firewall towards the customer, first match.")

    @field_validator("rules")
    @classmethod
    def _canonical_rules(cls, rules: list[str]) -> list[str]:
        """Every rule parses, and is kept in its canonical spelling."""
        canonical = []
        for index, text in enumerate(rules):
            try:
                canonical.append(parse_rule(text).text())
            except RuleError as err:
                raise ValueError(f"rule {index + 1} ({text!r}): {err}") from None
        return canonical

    @property
    def mark(self) -> int:
        """The fwmark of packets to the tenant's prefixes (the edge sets it, the tenant namespace again)."""
        return MARK_BASE + self.id

    @property
    def table(self) -> int:
        """The edge's routing table that sends marked packets into the tenant namespace."""
        return TABLE_BASE + self.id

    @property
    def rule_priority(self) -> int:
        """The priority of the edge's policy rule `fwmark <mark> lookup <table>`."""
        return RULE_PRIORITY_BASE + self.id


def veth_addresses(pool: IPv4Network, tenant_id: int) -> tuple[IPv4Address, IPv4Address]:
    """The (edge, tenant namespace) addresses of a tenant's veth: the id-th /31 of the tenant-veth pool.

    The same on every edge: each pair lives in its own edge's namespaces.
    """
    subnet = IPv4Network((int(pool.network_address) + 2 * tenant_id, 31))
    return subnet[0], subnet[1]
