"""nftables through its JSON API: `{"nftables": [...]}` commands run inside a namespace, refusals as errors.

A ruleset here is one table, replaced whole in one transaction (add it so that the delete cannot fail, delete
it, add it again with its content): readers never see half a table, and nothing else in the namespace is
touched. Builders of expressions keep the JSON readable where rulesets are written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from ipaddress import IPv4Network
from typing import Any

from edgesim.errors import EdgesimError, Problem

Command = dict[str, Any]
Expr = dict[str, Any]

# Hook priorities by name, as `nft` spells them in its text form.
PRIORITY = {"raw": -300, "mangle": -150, "filter": 0}


def json_cmd(
    netns: str | None, commands: list[Command], refused: Callable[[str], Problem], dry_run: bool = False
) -> list[dict[str, Any]]:
    """Run `commands` in one transaction in `netns` (None: this one); raise the caller's Problem if refused.

    Returns nft's output objects (listings). `dry_run`: the kernel checks the commands, applies nothing.
    """
    found = try_json_cmd(netns, commands, dry_run)
    if isinstance(found, str):
        raise EdgesimError(refused(found))
    return found


def try_json_cmd(
    netns: str | None, commands: list[Command], dry_run: bool = False
) -> list[dict[str, Any]] | str:
    """Like json_cmd, but a refusal comes back as nft's error text (e.g. listing a missing table)."""
    # Imported here so that the builders below stay pure: rules and plans use them without I/O.
    import nftables  # the distribution's binding, linked into the venv by setup

    from edgesim import namespaces

    # The context opens its netlink socket when created: create and use it inside the namespace.
    with namespaces.inside(netns) if netns else contextlib.nullcontext():
        nft = nftables.Nftables()
        nft.set_dry_run(dry_run)
        rc, output, error = nft.json_cmd({"nftables": commands})
    if rc != 0:
        return error.strip() or f"rc {rc}"
    return output.get("nftables", []) if isinstance(output, dict) else []


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
