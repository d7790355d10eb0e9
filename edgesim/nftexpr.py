"""nftables' JSON form, built in Python: the commands and expressions of edgesim's rulesets. Pure.

The builders keep rulesets readable where they are written (tenants, synproxy, the experiments' path);
edgesim.nft runs them.
"""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Any

Command = dict[str, Any]
Expr = dict[str, Any]

# Hook priorities by name, as `nft` spells them in its text form.
PRIORITY = {"raw": -300, "mangle": -150, "filter": 0}


def add(table: str, body: list[Command], family: str = "ip") -> list[Command]:
    """The commands that add `body`'s objects (chains, rules, ... without family and table) to `table`."""
    return [
        {"add": {kind: {"family": family, "table": table, **spec}}}
        for item in body
        for kind, spec in item.items()
    ]


def replace_table(name: str, body: list[Command], family: str = "ip") -> list[Command]:
    """The commands that replace table `name` with `body` atomically."""
    table = {"family": family, "name": name}
    return [
        {"add": {"table": table}},
        {"delete": {"table": table}},
        {"add": {"table": table}},
        *add(name, body, family),
    ]


def delete_table(name: str, family: str = "ip") -> list[Command]:
    """The commands that remove table `name` whether or not it is there."""
    table = {"family": family, "name": name}
    return [{"add": {"table": table}}, {"delete": {"table": table}}]


def list_table(name: str, family: str = "ip") -> list[Command]:
    """The command that lists table `name` with its counters, sets and rules."""
    return [{"list": {"table": {"family": family, "name": name}}}]


def base_chain(name: str, hook: str, priority: str, policy: str) -> Command:
    """A chain attached to a netfilter hook."""
    return {
        "chain": {"name": name, "type": "filter", "hook": hook, "prio": PRIORITY[priority], "policy": policy}
    }


def rule(chain: str, *expr: Expr, comment: str | None = None) -> Command:
    """A rule of `chain`: its expressions in order, and an optional comment."""
    return {"rule": {"chain": chain, "expr": list(expr), **({"comment": comment} if comment else {})}}


def payload(protocol: str, field: str) -> Expr:
    """A header field, e.g. payload("ip", "daddr")."""
    return {"payload": {"protocol": protocol, "field": field}}


def address(net: IPv4Network) -> object:
    """An address (a /32) or a prefix, as a match's or a map element's value."""
    if net.prefixlen == 32:
        return str(net.network_address)
    return {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}


def match(left: Expr, right: object, op: str = "==") -> Expr:
    """A comparison; `in` for flags (ct state invalid,untracked)."""
    return {"match": {"op": op, "left": left, "right": right}}


def tcp_flags(mask: list[str], value: str) -> Expr:
    """`tcp flags & (mask) == value`: e.g. a connection attempt is syn among syn|ack."""
    return match({"&": [payload("tcp", "flags"), mask]}, value)


def set_mark(value: object) -> Expr:
    """`meta mark set value` (a number, or a map lookup)."""
    return {"mangle": {"key": {"meta": {"key": "mark"}}, "value": value}}


def clamp_mss_to_route() -> list[Expr]:
    """`tcp flags & (syn | rst) == syn tcp option maxseg size set rt mtu`: new connections' MSS per route."""
    mss = {"tcp option": {"name": "maxseg", "field": "size"}}
    return [tcp_flags(["syn", "rst"], "syn"), {"mangle": {"key": mss, "value": {"rt": {"key": "mtu"}}}}]


def counter(name: str) -> Expr:
    """Count into the table's named counter `name`."""
    return {"counter": name}


def verdict(name: str) -> Expr:
    """accept or drop."""
    return {name: None}
