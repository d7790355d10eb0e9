"""Managing the tenants of a running lab: what `invoke tenant.*` does, as an API for tasks and tests.

Writes go to the config store (the agents do the rest), and a new tenant's prefixes are announced: by every
edge's BIRD with `routing: bgp`, as static ECMP routes on the router with `routing: static`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from pydantic import ValidationError
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from edgesim import runtime
from edgesim.errors import EdgesimError, Problem
from edgesim.plan import LabPlan, TenancyPlan
from edgesim.routing import control as routing
from edgesim.state import changes_lab
from edgesim.tenants import validate
from edgesim.tenants.rules import GRAMMAR_HINT, Rule, RuleError, parse_rule
from edgesim.tenants.spec import MAX_TENANT_ID, TenantSpec
from edgesim.tenants.store import Snapshot, Store, StoreError
from edgesim.waiting import wait_until

# How often a read-modify-write is retried when another writer changed the record in between.
WRITE_ATTEMPTS = 5


@dataclass(frozen=True)
class Change:
    """A write to the store: the tenant as written (as it was, if removed) and the revision after it."""

    spec: TenantSpec
    revision: int


def _tenancy(plan: LabPlan) -> TenancyPlan:
    if plan.tenancy is None:
        raise EdgesimError(
            Problem(
                f"lab {plan.lab}",
                "has no tenants (no config store)",
                "add a `tenants:` section to its topology",
            )
        )
    return plan.tenancy


def store_for(lab: str) -> Store:
    """A client of the lab's config store, reaching it from inside the management node."""
    plan = runtime.running_plan(lab)
    tenancy = _tenancy(plan)
    return Store(tenancy.store_url, netns=plan.nodes[tenancy.store_node].netns)


def _snapshot(store: Store) -> Snapshot:
    try:
        return store.snapshot()
    except StoreError as err:
        raise EdgesimError(
            Problem("config store", f"unreachable: {err}", "is etcd running? `invoke status` shows mgmt/etcd")
        ) from err


def list_tenants(lab: str) -> Snapshot:
    """The tenants in the lab's store now."""
    return _snapshot(store_for(lab))


@changes_lab
def add_tenant(lab: str, name: str, prefixes: list[str], site: str, rules: list[str] | None = None) -> Change:
    """Add a tenant to the store (the agents build it on every edge) and announce its prefixes."""
    plan = runtime.running_plan(lab)
    tenancy = _tenancy(plan)
    store = store_for(lab)
    snapshot = _snapshot(store)
    where = f"tenant {name}"
    if name in snapshot.tenants:
        raise EdgesimError(
            Problem(where, "already exists", f"remove it first with `invoke tenant.rm {name}`")
        )
    used = {t.id for t in snapshot.tenants.values()}
    free = next((i for i in range(1, MAX_TENANT_ID + 1) if i not in used), None)
    if free is None:
        raise EdgesimError(Problem(where, f"the lab has {MAX_TENANT_ID} tenants already", "remove one first"))
    try:
        spec = TenantSpec(name=name, id=free, prefixes=prefixes, site=site, rules=rules or [])
    except ValidationError as err:
        raise EdgesimError([_validation_problem(where, e) for e in err.errors()]) from None
    problems = _check_spec(spec, tenancy, snapshot)
    if problems:
        raise EdgesimError(problems)
    try:
        revision = store.put_tenant(spec, None)
    except StoreError as err:
        raise EdgesimError(Problem("config store", f"unreachable: {err}")) from err
    if revision is None:
        raise EdgesimError(
            Problem(where, "was added by someone else meanwhile", "look at `invoke tenant.list`")
        )
    announce(plan, spec.prefixes)
    return Change(spec, revision)


@changes_lab
def remove_tenant(lab: str, name: str) -> Change:
    """Remove a tenant from the store (the agents remove it from every edge) and withdraw its prefixes."""
    plan = runtime.running_plan(lab)
    store = store_for(lab)

    def delete(snapshot: Snapshot, spec: TenantSpec) -> Change | None:
        revision = store.delete_tenant(name, snapshot.mod_revisions[name])
        return Change(spec, revision) if revision is not None else None

    change = _update(store, name, delete)
    withdraw(plan, change.spec.prefixes)
    return change


@changes_lab
def add_rule(lab: str, tenant: str, text: str, position: int | None = None) -> Change:
    """Add a firewall rule to a tenant, at 1-based `position` (default: last, before the final drop)."""
    rule = checked_rule(text)  # before the store: a bad rule is an error whether or not the lab is up
    store = store_for(lab)

    def insert(snapshot: Snapshot, spec: TenantSpec) -> Change | None:
        wording = validate.store_wording(tenant)
        problems = validate.check_rule_destination(wording, f"rule {text!r}", rule.daddr, spec.prefixes)
        if problems:
            raise EdgesimError(problems)
        rules = insert_rule(tenant, spec.rules, rule.text(), position)
        return _put(store, snapshot, spec.model_copy(update={"rules": rules}))

    return _update(store, tenant, insert)


def checked_rule(text: str) -> Rule:
    """A rule's text parsed, or a one-line error saying what is wrong with it and how rules are written."""
    try:
        return parse_rule(text)
    except RuleError as err:
        raise EdgesimError(Problem(f"rule {text!r}", str(err), GRAMMAR_HINT)) from None


def insert_rule(tenant: str, rules: list[str], text: str, position: int | None) -> list[str]:
    """The rules with `text` inserted as number `position` (1-based; None or 0: last), or a clear error."""
    if text in rules:
        raise EdgesimError(Problem(f"tenant {tenant}", f"already has the rule {text!r}"))
    if position is None or position == 0:
        return [*rules, text]
    if not isinstance(position, int) or isinstance(position, bool) or not 1 <= position <= len(rules) + 1:
        raise EdgesimError(
            Problem(
                "--position",
                f"{position!r} is not a rule number of tenant {tenant}",
                f"it has {len(rules)} rules: give 1-{len(rules) + 1} (or leave it out: last)",
            )
        )
    return [*rules[: position - 1], text, *rules[position - 1 :]]


@changes_lab
def remove_rule(lab: str, tenant: str, rule: str) -> Change:
    """Remove a tenant's firewall rule, given as its text (any spelling) or its 1-based number."""
    store = store_for(lab)

    def delete(snapshot: Snapshot, spec: TenantSpec) -> Change | None:
        rules = list(spec.rules)
        rules.pop(_rule_index(tenant, spec.rules, rule))
        return _put(store, snapshot, spec.model_copy(update={"rules": rules}))

    return _update(store, tenant, delete)


def _rule_index(tenant: str, rules: list[str], rule: str) -> int:
    if rule.isdigit():
        if 1 <= int(rule) <= len(rules):
            return int(rule) - 1
        raise EdgesimError(
            Problem(f"tenant {tenant}", f"has no rule number {rule}", f"it has {len(rules)} rules")
        )
    try:
        text = parse_rule(rule).text()
    except RuleError as err:
        raise EdgesimError(Problem(f"rule {rule!r}", str(err), GRAMMAR_HINT)) from None
    if text not in rules:
        raise EdgesimError(
            Problem(
                f"tenant {tenant}", f"has no rule {text!r}", "`invoke tenant.list` shows its rules, numbered"
            )
        )
    return rules.index(text)


def _put(store: Store, snapshot: Snapshot, spec: TenantSpec) -> Change | None:
    """Write a changed tenant if nobody wrote it since the snapshot."""
    revision = store.put_tenant(spec, snapshot.mod_revisions[spec.name])
    return Change(spec, revision) if revision is not None else None


def _update(store: Store, name: str, change: Callable[[Snapshot, TenantSpec], Change | None]) -> Change:
    """Read the tenant, apply `change` (a transaction on its revision); retry if another writer was first."""
    for _ in range(WRITE_ATTEMPTS):
        snapshot = _snapshot(store)
        spec = snapshot.tenants.get(name)
        if spec is None:
            known = ", ".join(sorted(snapshot.tenants)) or "none"
            raise EdgesimError(Problem(f"tenant {name}", "does not exist", f"tenants: {known}"))
        try:
            done = change(snapshot, spec)
        except StoreError as err:
            raise EdgesimError(Problem("config store", f"unreachable: {err}")) from err
        if done is not None:
            return done
    raise EdgesimError(Problem(f"tenant {name}", "kept changing while being updated", "try again"))


def _check_spec(spec: TenantSpec, tenancy: TenancyPlan, snapshot: Snapshot) -> list[Problem]:
    wording = validate.store_wording(spec.name)
    taken = [(p, other.name) for other in snapshot.tenants.values() for p in other.prefixes]
    problems = validate.check_prefixes(
        wording, spec.name, spec.prefixes, IPv4Network(tenancy.prefix_pool), taken
    )
    if spec.site not in IPv4Network(tenancy.site_pool):
        problems.append(
            Problem(
                f"tenant {spec.name}: site {spec.site}",
                f"is outside {tenancy.site_pool}",
                "the site router's public address",
            )
        )
    return problems + validate.check_rules(wording, spec.rules, spec.prefixes)


def _validation_problem(where: str, error: Any) -> Problem:
    field = ".".join(str(p) for p in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    return Problem(f"{where}: {field}", message, GRAMMAR_HINT if field == "rules" else "")


def _router_hops(plan: LabPlan) -> tuple[str, list[dict[str, Any]]]:
    """Static routing: the router's namespace and its next hops over the edges (the GRE endpoint's route)."""
    tenancy = _tenancy(plan)
    (router,) = plan.nodes_with_role("router")
    route = next(r for r in router.routes if r.dst == f"{tenancy.gre_endpoint}/32")
    return router.netns, [{"gateway": h.gateway, "ifname": h.ifname} for h in route.nexthops]


def announce(plan: LabPlan, prefixes: list[IPv4Network]) -> None:
    """Have the router send prefixes to every edge: each edge announces them (BGP), or a static ECMP route."""

    def add(ipr: IPRoute, hops: list[dict[str, Any]]) -> None:
        multipath = [{"gateway": h["gateway"], "oif": ipr.link_lookup(ifname=h["ifname"])[0]} for h in hops]
        for prefix in prefixes:
            ipr.route("replace", dst=str(prefix), multipath=multipath)

    _route(plan, prefixes, routing.announce, add)


def withdraw(plan: LabPlan, prefixes: list[IPv4Network]) -> None:
    """Stop the router sending prefixes to the edges: withdrawn by every edge (BGP), or the route removed."""

    def remove(ipr: IPRoute, _hops: list[dict[str, Any]]) -> None:
        for prefix in prefixes:
            try:
                ipr.route("del", dst=str(prefix))
            except NetlinkError:
                pass  # already gone

    _route(plan, prefixes, routing.withdraw, remove)


def _route(
    plan: LabPlan,
    prefixes: list[IPv4Network],
    bgp: Callable[[str, str, list[str]], object],
    static: Callable[[IPRoute, list[dict[str, Any]]], None],
) -> None:
    """Change what the router sends to the edges: through every edge's BGP, or on the router's own table."""
    if plan.routing == "bgp":
        for edge in plan.nodes_with_role("edge"):
            bgp(plan.lab, edge.name, [str(p) for p in prefixes])
        return
    netns, hops = _router_hops(plan)
    with IPRoute(netns=netns) as ipr:
        static(ipr, hops)


def agent_status(lab: str, timeout: float = 2.0) -> dict[str, dict[str, Any]]:
    """Each edge agent's /status, or {"error": why} for an agent that does not answer."""
    plan = runtime.running_plan(lab)
    backend = runtime.backend(lab)
    report: dict[str, dict[str, Any]] = {}
    for edge in plan.nodes_with_role("edge"):
        agent = next((s for s in edge.services if s.name == "tenants"), None)
        if agent is None:
            continue
        try:
            with backend.enter(edge):
                with urllib.request.urlopen(f"http://{agent.listens[0]}/status", timeout=timeout) as answer:
                    report[edge.name] = json.loads(answer.read())
        except (OSError, urllib.error.URLError, ValueError) as err:
            report[edge.name] = {"error": str(err)}
    return report


def wait_applied(lab: str, revision: int, timeout: float = 10.0) -> float:
    """Wait until every agent has applied at least `revision`; return how long it took."""

    def behind(report: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return {e: s.get("applied", {}).get("revision", s.get("error")) for e, s in report.items()}

    return wait_until(
        lambda: agent_status(lab),
        lambda report: all(s.get("applied", {}).get("revision", 0) >= revision for s in report.values()),
        timeout=timeout,
        interval=0.05,
        failure=lambda report: Problem(
            f"lab {lab}", f"agents did not apply revision {revision} within {timeout:.0f} s: {behind(report)}"
        ),
    ).seconds


def site_address_of(lab: str, node: str) -> IPv4Address:
    """The public address of a customer site router node (what `tenant.add --site` takes)."""
    plan = runtime.running_plan(lab)
    target = plan.nodes.get(node)
    if target is None or target.tunnel is None:
        raise EdgesimError(Problem(f"node {node}", "is not a customer site router of this lab"))
    return IPv4Address(target.tunnel.local)
