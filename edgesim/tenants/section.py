"""The `tenants:` section of a topology: each customer's prefixes, site router and firewall."""

from __future__ import annotations

from ipaddress import IPv4Network

from pydantic import Field

from edgesim.fields import NodeName, Strict


class Tenant(Strict):
    """A customer: its prefixes, its site router, and its firewall applied on every edge."""

    prefixes: list[IPv4Network] = Field(min_length=1, description="Customer prefixes, inside pools.tenants.")
    site: NodeName = Field(description="The customer node that is the tenant's GRE site router.")
    firewall: list[str] = Field(
        default_factory=list,
        description="Rules for traffic towards the customer, first match wins, the rest is dropped; "
        "e.g. `ip daddr 203.0.113.100 tcp dport 20-21 accept`.",
    )
