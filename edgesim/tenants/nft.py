"""The tenants' nftables rulesets: built as nft JSON (pure), applied inside a namespace in one transaction.

Three tables: on each edge, `edgesim_tenants` marks packets to tenant prefixes so that a policy rule routes
them into the tenant's namespace; in each tenant namespace, `edgesim_tenant` is the tenant's firewall; on a
customer site router, `edgesim_site` clamps the MSS. Each table's first rule carries a digest of the table's
content as its comment, so applying the same ruleset again is a no-op (and its counters keep counting) even
across agent restarts. (A rule comment, not a table comment: nft 1.0.6 neither reads nor lists table
comments in JSON.)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Network

from edgesim import nft
from edgesim.errors import Problem
from edgesim.plan.naming import TENANT_EDGE_IFNAME_PREFIX
from edgesim.tenants.rules import parse_rule
from edgesim.tenants.spec import TenantSpec

EDGE_TABLE = "edgesim_tenants"
TENANT_TABLE = "edgesim_tenant"
SITE_TABLE = "edgesim_site"
# Named counters of a tenant's firewall: towards the customer, packets accepted, packets dropped, TCP
# connection attempts seen; from the site, packets refused (to a refused range) and passed on (outbound).
TENANT_COUNTERS = ("accepted", "dropped", "syn", "refused", "outbound")
# The edge's counter of what its tenant namespaces sent to it or to a refused range.
EDGE_REFUSED_COUNTER = "from_tenants_refused"
COUNTER_OF_VERDICT = {"accept": "accepted", "drop": "dropped"}


@dataclass(frozen=True)
class Ruleset:
    """One table as nft JSON commands that replace it whole, and the digest its first rule carries."""

    table: str
    commands: list[nft.Command]
    digest: str


def edge_ruleset(tenants: Iterable[TenantSpec], refused: Iterable[IPv4Network] = ()) -> Ruleset:
    """The edge's marking table: destination in a tenant's prefixes -> that tenant's mark; and the wall
    between the tenant namespaces and the edge: nothing from them to the edge itself or to a refused range."""
    elements = [[nft.address(prefix), t.mark] for t in tenants for prefix in t.prefixes]
    marks = {"name": "marks", "type": "ipv4_addr", "map": "mark", "flags": ["interval"]}
    from_tenant = nft.match({"meta": {"key": "iifname"}}, f"{TENANT_EDGE_IFNAME_PREFIX}*")
    body = [
        {"counter": {"name": EDGE_REFUSED_COUNTER}},
        {"map": {**marks, **({"elem": elements} if elements else {})}},
        _refused_set(refused),
        nft.base_chain("prerouting", "prerouting", "mangle", "accept"),
        # Before every filter-priority chain: the XDP agent's synproxy table answers SYNs to a protected
        # VIP in its input chain, and would answer a tenant namespace's (seen as a flake: chain order at
        # equal priority is the order the tables were made in).
        nft.base_chain("input", "input", "mangle", "accept"),
        nft.base_chain("forward", "forward", "mangle", "accept"),
        nft.rule("prerouting", nft.set_mark({"map": {"key": nft.payload("ip", "daddr"), "data": "@marks"}})),
        # A tenant namespace sends the edge only GRE towards its site and the traffic its site sent towards
        # the internet: never anything for the edge's own addresses, the infrastructure or the services.
        nft.rule("input", from_tenant, nft.counter(EDGE_REFUSED_COUNTER), nft.verdict("drop")),
        nft.rule(
            "forward",
            from_tenant,
            nft.match(nft.payload("ip", "daddr"), "@refused"),
            nft.counter(EDGE_REFUSED_COUNTER),
            nft.verdict("drop"),
        ),
    ]
    return _ruleset(EDGE_TABLE, body)


def tenant_ruleset(tenant: TenantSpec, refused: Iterable[IPv4Network] = ()) -> Ruleset:
    """The tenant's firewall: towards its customer, its rules in order, then drop; from its site (what the
    edge decapsulated), the internet only, never a refused range. Stateless, counted."""
    rules = [parse_rule(text) for text in tenant.rules]
    own = {
        "name": "own",
        "type": "ipv4_addr",
        "flags": ["interval"],
        "elem": [nft.address(p) for p in tenant.prefixes],
    }
    body = [
        *({"counter": {"name": name}} for name in TENANT_COUNTERS),
        {"set": own},
        _refused_set(refused),
        nft.base_chain("prerouting", "prerouting", "raw", "accept"),
        nft.base_chain("forward", "forward", "filter", "drop"),
        {"chain": {"name": "from_site"}},
        # No connection tracking at all: with anycast on both sides, this edge may never see the other
        # direction of a connection, so no verdict may depend on state.
        nft.rule("prerouting", {"notrack": None}),
        # From the site (the GRE program let only the tenant's own sources through): its own chain.
        nft.rule("forward", nft.match(nft.payload("ip", "saddr"), "@own"), {"jump": {"target": "from_site"}}),
        # The GRE program checks this mark: a packet is only tunneled to the site of the tenant it is for.
        nft.rule("forward", nft.set_mark(tenant.mark)),
        nft.rule("forward", *nft.clamp_mss_to_route()),
        nft.rule("forward", nft.tcp_flags(["syn", "ack"], "syn"), nft.counter("syn")),
        *(
            nft.rule(
                "forward", *r.nft_expr(), nft.counter(COUNTER_OF_VERDICT[r.verdict]), nft.verdict(r.verdict)
            )
            for r in rules
        ),
        nft.rule("forward", nft.counter("dropped"), nft.verdict("drop")),
        nft.rule(
            "from_site",
            nft.match(nft.payload("ip", "daddr"), "@refused"),
            nft.counter("refused"),
            nft.verdict("drop"),
        ),
        nft.rule("from_site", nft.counter("outbound"), nft.verdict("accept")),
    ]
    return _ruleset(TENANT_TABLE, body)


def _refused_set(refused: Iterable[IPv4Network]) -> nft.Command:
    """The set `refused`: ranges a tenant's traffic never reaches (infrastructure, services, tenants)."""
    elements = [nft.address(net) for net in refused]
    return {
        "set": {
            "name": "refused",
            "type": "ipv4_addr",
            "flags": ["interval"],
            **({"elem": elements} if elements else {}),
        }
    }


def site_ruleset() -> Ruleset:
    """A customer site router's table: clamp the MSS of connections leaving through the tunnel."""
    body = [
        nft.base_chain("forward", "forward", "filter", "accept"),
        nft.rule("forward", *nft.clamp_mss_to_route()),
    ]
    return _ruleset(SITE_TABLE, body)


def _ruleset(table: str, body: list[nft.Command]) -> Ruleset:
    """The table's replacing commands, its first rule commented with the digest of the whole body."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    first = next(i for i, item in enumerate(body) if "rule" in item)
    marked = [*body[:first], {"rule": {**body[first]["rule"], "comment": digest}}, *body[first + 1 :]]
    return Ruleset(table, nft.replace_table(table, marked), digest)


def _listing(namespace: str, table: str) -> list[dict] | None:
    """The table's objects as nft lists them, or None when the table is not there."""
    found = nft.try_json_cmd(namespace, nft.list_table(table))
    return None if isinstance(found, str) else found


def applied_digest(namespace: str, table: str) -> str | None:
    """The digest a table in a namespace carries, or None when the table (or its digest) is not there."""
    rules = (item["rule"] for item in _listing(namespace, table) or [] if "rule" in item)
    return next((r["comment"] for r in rules if "comment" in r), None)


def apply(namespace: str, ruleset: Ruleset) -> bool:
    """Replace a table in one nft transaction unless it already holds this ruleset; whether it changed."""
    if applied_digest(namespace, ruleset.table) == ruleset.digest:
        return False
    nft.json_cmd(
        namespace,
        ruleset.commands,
        lambda error: Problem(f"{namespace}: nft", f"the ruleset was refused: {error}"),
    )
    return True


def counters(namespace: str, table: str = TENANT_TABLE) -> dict[str, int]:
    """Packets of each named counter of a table in a namespace (empty when the table is not there)."""
    return {
        item["counter"]["name"]: item["counter"]["packets"]
        for item in _listing(namespace, table) or []
        if "counter" in item
    }


def remove(namespace: str, table: str) -> None:
    """Remove a table from a namespace, if it is there (a site router's teardown)."""
    nft.json_cmd(
        namespace,
        nft.delete_table(table),
        lambda error: Problem(f"{namespace}: nft", f"cannot remove table {table}: {error}"),
    )
