"""Change and read a running lab's mitigation: the rule store, then every edge agent reloads from it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import ValidationError

from edgesim import runtime
from edgesim.errors import EdgesimError, Problem
from edgesim.mitigation import store
from edgesim.mitigation.agent import request
from edgesim.mitigation.layout import BFD_CONTROL_PORT, BFD_ECHO_PORT, BGP_PORT
from edgesim.mitigation.rules import (
    RULE_ADAPTER,
    Blocklist,
    ConnLimit,
    ConnRate,
    DropPort,
    DropSrc,
    PayloadMatch,
    Rule,
    RuleSet,
    SynCookie,
    VipCap,
)
from edgesim.model import INFRA_RANGE
from edgesim.plan import LabPlan
from edgesim.state import changes_lab

# The lab's control protocols by (protocol, port), for the warnings of rules that match them.
CONTROL_PORTS = {
    ("tcp", BGP_PORT): "BGP",
    ("udp", BFD_CONTROL_PORT): "BFD",
    ("udp", BFD_ECHO_PORT): "BFD echo",
}


def parse_rule(fields: dict[str, Any]) -> Rule:
    """A rule from command-line fields (None means not given); errors name the option to fix."""
    given = {k: v for k, v in fields.items() if v is not None}
    try:
        return RULE_ADAPTER.validate_python(given)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            field = next((str(p) for p in reversed(e["loc"]) if str(p) in given or str(p) in fields), "")
            where = f"--{field.replace('_', '-')}" if field else "rule"
            problems.append(Problem(where, e["msg"], "see `invoke mitigate add --help`"))
        raise EdgesimError(problems) from None


def edges(lab: str) -> list[str]:
    """The edge nodes of a running lab."""
    return [n.name for n in runtime.running_plan(lab).nodes_with_role("edge")]


def _each_edge(lab: str, op: str) -> dict[str, dict[str, Any]]:
    names = edges(lab)
    # In parallel, so a change reaches every edge within one round trip rather than one per edge.
    with ThreadPoolExecutor(max_workers=len(names) or 1) as pool:
        answers = pool.map(lambda e: request(store.agent_socket(lab, e), op), names)
        return dict(zip(names, answers, strict=True))


def reload_all(lab: str) -> dict[str, dict[str, Any]]:
    """Make every edge agent apply the stored rule set now."""
    return _each_edge(lab, "reload")


def stats(lab: str) -> dict[str, dict[str, Any]]:
    """Per-edge counters: built-in verdicts and one entry per rule."""
    return _each_edge(lab, "stats")


def rules(lab: str) -> RuleSet:
    """The rule set in force (as stored; agents apply it on every change)."""
    runtime.running_plan(lab)
    return store.read(store.rules_path(lab))


def infrastructure_warnings(plan: LabPlan, rule: Rule) -> list[str]:
    """What a rule would also hit of the lab's own infrastructure, in words for the user (empty: nothing).

    BGP and BFD with the router pass before every rule (ddos_consts.h), so no rule cuts the routing; the
    warning says what else it hits: the rest of the infrastructure range, the tenants' GRE tunnels."""
    warnings = []
    if isinstance(rule, DropSrc):
        if rule.prefix.overlaps(INFRA_RANGE):
            warnings.append(
                f"{rule.label()} covers the lab's infrastructure range {INFRA_RANGE} (router links,"
                " management, backplane): BGP and BFD with the router still pass (they are checked before"
                " every rule), anything else from there is dropped"
            )
        sites = [t for t in plan.tenants if t.site in rule.prefix]
        if sites:
            named = ", ".join(f"{t.name} {t.site}" for t in sites)
            warnings.append(
                f"{rule.label()} covers tenant site routers ({named}): their GRE tunnels carry nothing"
                " while it is in force"
            )
    if isinstance(rule, DropPort):
        ports = {CONTROL_PORTS.get((rule.proto, p)) for p in (rule.src_port, rule.dst_port)} - {None}
        if ports:
            warnings.append(
                f"{rule.label()} matches the port of {', '.join(sorted(ports))}: the lab's own sessions with"
                " the router are exempt, any other such traffic is dropped"
            )
    return warnings


@changes_lab
def add(lab: str, rule: Rule) -> RuleSet:
    """Add a rule on every edge; refuses duplicates and VIPs the lab does not serve."""
    plan = runtime.running_plan(lab)
    current = rules(lab)
    conflict = current.conflicts(rule)
    if conflict:
        raise EdgesimError(Problem("rule", conflict, "`invoke mitigate list` shows the rules in force"))
    if isinstance(rule, SynCookie | VipCap) and str(rule.vip) not in plan.vips:
        raise EdgesimError(
            Problem("--vip", f"{rule.vip} is not a VIP of lab {lab}", f"VIPs: {', '.join(plan.vips)}")
        )
    updated = current.with_rule(rule)
    _check_l7(lab, plan.vips, updated, rule)
    store.write(store.rules_path(lab), updated)
    reload_all(lab)
    return updated


def _check_l7(lab: str, vips: list[str], updated: RuleSet, rule: Rule) -> None:
    """A layer-7 rule's VIP must be the lab's, and the blocklist it adds offenders to must exist."""
    if isinstance(rule, ConnLimit | ConnRate | PayloadMatch) and rule.vip is not None:
        if str(rule.vip) not in vips:
            raise EdgesimError(
                Problem("--vip", f"{rule.vip} is not a VIP of lab {lab}", f"VIPs: {', '.join(vips)}")
            )
    for missing in updated.unresolved():
        raise EdgesimError(
            Problem("--block-set", missing, "add the blocklist first: `mitigate add blocklist`")
        )


@changes_lab
def delete(lab: str, name: str) -> RuleSet:
    """Remove the rule called `name` from every edge."""
    current = rules(lab)
    found = current.find(name)
    if found is None:
        known = ", ".join(current.names()) or "none"
        raise EdgesimError(Problem("name", f"no rule named {name!r}", f"rules: {known}"))
    updated = current.without(name)
    if isinstance(found.rule, Blocklist) and updated.unresolved():
        users = "; ".join(updated.unresolved())
        raise EdgesimError(
            Problem("name", f"blocklist {name!r} is in use ({users})", "delete those rules first")
        )
    store.write(store.rules_path(lab), updated)
    reload_all(lab)
    return updated
