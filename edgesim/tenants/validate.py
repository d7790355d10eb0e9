"""The checks a tenant must pass, shared by `load` (topology tenants) and `tenant add` (store tenants). Pure.

Both callers run the same checks; only the wording differs, because `load` names places by their path in
the topology file (`tenants.acme.prefixes[0]`) and `tenant add` by the value the user typed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Network

from edgesim.errors import Problem
from edgesim.tenants.rules import GRAMMAR_HINT, RuleError, parse_rule

OVERLAP_HINT = "every address belongs to one tenant"
OUTSIDE_POOL_HINT = "pick a prefix inside it"
RULE_OUTSIDE = "destination {} is outside the tenant's prefixes"


@dataclass(frozen=True)
class Wording:
    """How one caller words the shared checks' problems."""

    prefix_at: Callable[[int, IPv4Network], str]  # the location of a problem with the index-th prefix
    prefix_text: Callable[[IPv4Network], str]  # how a message starts that is about a prefix
    pool_name: Callable[[IPv4Network], str]  # the tenant pool as the message names it
    rule_at: Callable[[int, str], str]  # the location of a problem with the index-th rule
    rule_hint: str  # why a rule's destination must be the tenant's own


def topology_wording(tenant: str) -> Wording:
    """Problems worded as `load` reports them: at the tenant's path in the topology file."""
    where = f"tenants.{tenant}"
    return Wording(
        prefix_at=lambda index, _prefix: f"{where}.prefixes[{index}]",
        prefix_text=lambda prefix: f"{prefix} ",
        pool_name=lambda pool: f"pools.tenants ({pool})",
        rule_at=lambda index, _text: f"{where}.firewall[{index}]",
        rule_hint="a tenant's firewall only ever sees traffic to its own prefixes",
    )


def store_wording(tenant: str) -> Wording:
    """Problems worded as `tenant add` / `tenant.rule.add` report them: at the value given."""
    return Wording(
        prefix_at=lambda _index, prefix: f"tenant {tenant}: {prefix}",
        prefix_text=lambda _prefix: "",
        pool_name=lambda pool: f"the tenant pool {pool}",
        rule_at=lambda _index, text: f"rule {text!r}",
        rule_hint="a tenant's firewall only sees traffic to them",
    )


def check_prefixes(
    wording: Wording,
    tenant: str,
    prefixes: list[IPv4Network],
    pool: IPv4Network,
    taken: list[tuple[IPv4Network, str]],
) -> list[Problem]:
    """Each prefix lies in the pool and overlaps no other prefix: of other tenants (`taken`) or its own.

    A prefix that overlaps several tenants is reported once per tenant, at its first clash with each.
    """
    problems = []
    seen = list(taken)
    for index, prefix in enumerate(prefixes):
        at, text = wording.prefix_at(index, prefix), wording.prefix_text(prefix)
        if not prefix.subnet_of(pool):
            problems.append(Problem(at, f"{text}is outside {wording.pool_name(pool)}", OUTSIDE_POOL_HINT))
        clashes: dict[str, IPv4Network] = {}
        for other, owner in seen:
            if other.overlaps(prefix):
                clashes.setdefault(owner, other)
        for owner, other in clashes.items():
            whose = "the same tenant" if owner == tenant else f"tenant {owner}"
            problems.append(Problem(at, f"{text}overlaps {other} of {whose}", OVERLAP_HINT))
        seen.append((prefix, tenant))
    return problems


def check_rules(wording: Wording, rules: list[str], prefixes: list[IPv4Network]) -> list[Problem]:
    """Each firewall rule parses and only matches destinations inside the tenant's prefixes."""
    problems = []
    for index, text in enumerate(rules):
        at = wording.rule_at(index, text)
        try:
            rule = parse_rule(text)
        except RuleError as err:
            problems.append(Problem(at, f"cannot read rule {text!r}: {err}", GRAMMAR_HINT))
            continue
        problems += check_rule_destination(wording, at, rule.daddr, prefixes)
    return problems


def check_rule_destination(
    wording: Wording, at: str, daddr: IPv4Network | None, prefixes: list[IPv4Network]
) -> list[Problem]:
    """A rule's destination, if it names one, lies inside one of the tenant's prefixes."""
    if daddr is None or any(daddr.subnet_of(p) for p in prefixes):
        return []
    return [Problem(at, RULE_OUTSIDE.format(daddr), wording.rule_hint)]
