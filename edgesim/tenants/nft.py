"""The tenants' nftables rulesets: rendered as text (pure), applied inside a namespace in one transaction.

Two tables: on each edge, `edgesim_tenants` marks packets to tenant prefixes so that a policy rule routes
them into the tenant's namespace; in each tenant namespace, `edgesim_tenant` is the tenant's firewall.
Each table carries a digest of its text as its comment, so applying the same ruleset again is a no-op
(and its counters keep counting) even across agent restarts.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable

from edgesim import namespaces
from edgesim.errors import EdgesimError, Problem
from edgesim.tenants.rules import parse_rule
from edgesim.tenants.spec import TenantSpec

EDGE_TABLE = "edgesim_tenants"
TENANT_TABLE = "edgesim_tenant"
SITE_TABLE = "edgesim_site"
# Named counters of a tenant's firewall: packets accepted, packets dropped, TCP connection attempts seen.
TENANT_COUNTERS = ("accepted", "dropped", "syn")
# Clamp the MSS of connection attempts to what the route's MTU leaves: 1476 - 40 behind a GRE tunnel.
MSS_CLAMP = "tcp flags & (syn | rst) == syn tcp option maxseg size set rt mtu"
# The table's own comment: the first line inside it.
_COMMENT = re.compile(r'^\s*comment "([0-9a-f]+)"$', re.MULTILINE)


def edge_ruleset(tenants: Iterable[TenantSpec]) -> str:
    """The edge's marking table: destination in a tenant's prefixes -> that tenant's mark."""
    elements = ", ".join(f"{prefix} : {hex(t.mark)}" for t in tenants for prefix in t.prefixes)
    body = [
        "map marks {",
        "    type ipv4_addr : mark; flags interval;",
        *([f"    elements = {{ {elements} }}"] if elements else []),
        "}",
        "chain prerouting {",
        "    type filter hook prerouting priority mangle; policy accept;",
        "    meta mark set ip daddr map @marks",
        "}",
    ]
    return _table(EDGE_TABLE, body)


def tenant_ruleset(tenant: TenantSpec) -> str:
    """The tenant's firewall towards its customer: its rules in order, then drop; stateless, counted."""
    rules = [parse_rule(text) for text in tenant.rules]
    body = [
        *(f"counter {name} {{ }}" for name in TENANT_COUNTERS),
        "chain prerouting {",
        "    type filter hook prerouting priority raw; policy accept;",
        # No connection tracking at all: with anycast on both sides, this edge may never see the other
        # direction of a connection, so no verdict may depend on state.
        "    notrack",
        # The GRE program checks this mark: a packet is only tunneled to the site of the tenant it is for.
        f"    meta mark set {hex(tenant.mark)}",
        "}",
        "chain forward {",
        "    type filter hook forward priority filter; policy drop;",
        f"    {MSS_CLAMP}",
        '    tcp flags & (syn | ack) == syn counter name "syn"',
        *(f'    {rule.nft_matches()} counter name "{rule.verdict}ed" {rule.verdict}' for rule in rules),
        '    counter name "dropped" drop',
        "}",
    ]
    return _table(TENANT_TABLE, body)


def site_ruleset() -> str:
    """A customer site router's table: clamp the MSS of connections leaving through the tunnel."""
    body = [
        "chain forward {",
        "    type filter hook forward priority filter; policy accept;",
        f"    {MSS_CLAMP}",
        "}",
    ]
    return _table(SITE_TABLE, body)


def _table(name: str, body: list[str]) -> str:
    """A whole table, replaced atomically: add (so delete cannot fail), delete, add with its content."""
    digest = hashlib.sha256("\n".join(body).encode()).hexdigest()[:16]
    lines = [f"table ip {name}", f"delete table ip {name}", f"table ip {name} {{", f'    comment "{digest}"']
    lines += [f"    {line}" for line in body]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _digest(script: str) -> str:
    return script.split('comment "', 1)[1].split('"', 1)[0]


def _nft(namespace: str, command: str, json_output: bool = False) -> tuple[int, str, str]:
    import nftables

    # The context opens its netlink socket when created: create and use it inside the namespace.
    with namespaces.inside(namespace):
        nft = nftables.Nftables()
        nft.set_json_output(json_output)
        return nft.cmd(command)


def applied_digest(namespace: str, table: str) -> str | None:
    """The digest comment of a table in a namespace, or None when the table is not there."""
    # Text, not JSON: nft 1.0.6 leaves table comments out of its JSON output.
    rc, output, _ = _nft(namespace, f"list table ip {table}")
    found = _COMMENT.search(output) if rc == 0 else None
    return found[1] if found else None


def apply(namespace: str, script: str) -> bool:
    """Replace a table in one nft transaction unless it already holds this ruleset; whether it changed."""
    table = script.split("\n", 1)[0].split()[-1]
    if applied_digest(namespace, table) == _digest(script):
        return False
    rc, _, error = _nft(namespace, script)
    if rc != 0:
        raise EdgesimError(Problem(f"{namespace}: nft", f"the ruleset was refused: {error.strip()}"))
    return True


def counters(namespace: str, table: str = TENANT_TABLE) -> dict[str, int]:
    """Packets of each named counter of a table in a namespace (empty when the table is not there)."""
    rc, output, _ = _nft(namespace, f"list counters table ip {table}", json_output=True)
    if rc != 0:
        return {}
    return {
        item["counter"]["name"]: item["counter"]["packets"]
        for item in json.loads(output)["nftables"]
        if "counter" in item
    }


def remove(namespace: str, table: str) -> None:
    """Remove a table from a namespace, if it is there."""
    rc, _, error = _nft(namespace, f"table ip {table}\ndelete table ip {table}\n")
    if rc != 0:
        raise EdgesimError(Problem(f"{namespace}: nft", f"cannot remove table {table}: {error.strip()}"))
