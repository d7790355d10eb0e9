"""`invoke tenant.*`: list, add and remove tenants and their firewall rules in a running lab's config store.

invoke names tasks of a sub-collection with dots: `invoke tenant.list`, `invoke tenant.rule.add acme RULE`.
For a task with two positional arguments invoke only takes `--help` before the task name:
`invoke --help tenant.rule.add` (it would need both arguments first).
"""

from __future__ import annotations

import json as json_module
import time
from collections.abc import Callable
from typing import Any

from invoke import Collection, Context, Program, task
from rich.markup import escape
from rich.table import Table

from edgesim import runtime
from edgesim.errors import EdgesimError, Problem
from edgesim.taskutil import console, need_root, out, user_errors
from edgesim.tenants import admin
from edgesim.tenants.store import Snapshot

# How long a change task waits for every edge's agent to apply it before saying which have not.
APPLY_WAIT_S = 5.0
LAB_HELP = "lab (default: the only lab up)"


def _help_asked(task_name: str, *values: str) -> bool:
    """Show the task's help when `--help` came where a positional argument goes (invoke hands it over)."""
    if not any(value in ("-h", "--help") for value in values):
        return False
    # invoke's own help printer over this area's collection alone: a task's help depends on nothing else,
    # and importing the whole program (edgesim.cli, which imports this module) would be an import cycle.
    help_program = Program(namespace=Collection(ns), name="edgesim", binary="edgesim")
    help_program.run(["edgesim", "--help", task_name], exit=False)
    return True


def _report_applied(lab: str, revision: int) -> None:
    """Say how quickly every agent applied a revision, or which have not (e.g. cut off from the store)."""
    try:
        took = admin.wait_applied(lab, revision, timeout=APPLY_WAIT_S)
    except EdgesimError as err:
        console.print(
            f"[yellow]stored, but not applied everywhere yet:[/] {escape(str(err))}", highlight=False
        )
        return
    console.print(f"applied on every edge in {took:.2f} s (revision {revision})")


@task(name="list", help={"lab": LAB_HELP, "json": "print JSON instead of tables"})
@user_errors
def list_(c: Context, lab: str | None = None, json: bool = False) -> None:
    """List the tenants (prefixes, site, numbered firewall rules) and what each edge's agent has applied."""
    need_root("tenant.list")
    name = runtime.resolve_lab(lab)
    snapshot = admin.list_tenants(name)
    agents = admin.agent_status(name)
    if json:
        tenants = {n: t.model_dump(mode="json") for n, t in snapshot.tenants.items()}
        out.print_json(
            json_module.dumps({"revision": snapshot.revision, "tenants": tenants, "agents": agents})
        )
        return
    out.print(_tenants_table(name, snapshot))
    out.print(_agents_table(agents))


def _tenants_table(lab: str, snapshot: Snapshot) -> Table:
    """One row per tenant: id, prefixes, site and its numbered firewall rules."""
    table = Table(title=f"tenants of lab {lab} (store revision {snapshot.revision})")
    for column in ("tenant", "id", "prefixes", "site", "firewall (first match; the rest is dropped)"):
        table.add_column(column)
    for tenant in snapshot.tenants.values():
        rules = "\n".join(f"{i}. {r}" for i, r in enumerate(tenant.rules, start=1)) or "(none: all dropped)"
        prefixes = "\n".join(str(p) for p in tenant.prefixes)
        table.add_row(tenant.name, str(tenant.id), prefixes, str(tenant.site), rules)
    return table


def _agents_table(agents: dict[str, dict[str, Any]]) -> Table:
    """One row per edge agent: whether it reaches the store, and what it has applied since when."""
    edges = Table(title="edge agents")
    for column in ("edge", "store", "applied revision", "tenants"):
        edges.add_column(column)
    for edge, status in agents.items():
        if "error" in status:
            edges.add_row(edge, "[red]agent not answering[/]", "-", status["error"])
            continue
        store = (
            "reachable"
            if status["store"]["reachable"]
            else f"[red]unreachable[/] ({status['store']['error']})"
        )
        applied = status["applied"]
        age = time.time() - applied["at"]
        edges.add_row(
            edge,
            store,
            f"{applied['revision']} ({applied['source']}, {age:.0f} s ago)",
            ", ".join(applied["tenants"]),
        )
    return edges


@task(
    positional=["name"],
    iterable=["prefix", "rule"],
    help={
        "name": "tenant name: lowercase letters and digits",
        "prefix": "a prefix of the tenant, inside the lab's tenant pool (repeatable)",
        "site": "public address of the customer's GRE site router",
        "site-node": "or: the lab's customer site router node whose address to use",
        "rule": "a firewall rule, e.g. 'ip daddr 203.0.113.100 tcp dport 80 accept' (repeatable)",
        "lab": LAB_HELP,
    },
)
@user_errors
def add(
    c: Context,
    name: str,
    prefix: list[str],
    site: str | None = None,
    site_node: str | None = None,
    rule: list[str] | None = None,
    lab: str | None = None,
) -> None:
    """Add a tenant: the agents build its namespace, firewall, tunnel on each edge; the router routes it."""
    if _help_asked("tenant.add", name):
        return
    need_root("tenant.add")
    lab_name = runtime.resolve_lab(lab)
    if (site is None) == (site_node is None):
        raise EdgesimError(
            "give the site router as --site ADDRESS or --site-node NODE", hint="one of the two"
        )
    address = site or str(admin.site_address_of(lab_name, site_node or ""))
    if not prefix:
        raise EdgesimError("a tenant needs at least one --prefix", hint="e.g. --prefix 203.0.113.0/25")
    change = admin.add_tenant(lab_name, name, prefix, address, rule)
    console.print(f"tenant {name} added (id {change.spec.id}, site {address})")
    _report_applied(lab_name, change.revision)


@task(positional=["name"], help={"name": "tenant to remove", "lab": LAB_HELP})
@user_errors
def rm(c: Context, name: str, lab: str | None = None) -> None:
    """Remove a tenant: the agents remove its namespace, rules, tunnel on each edge; the router forgets it."""
    if _help_asked("tenant.rm", name):
        return
    need_root("tenant.rm")
    lab_name = runtime.resolve_lab(lab)
    change = admin.remove_tenant(lab_name, name)
    console.print(f"tenant {name} removed")
    _report_applied(lab_name, change.revision)


def _rule_help(rule: str, **more: str) -> dict[str, str]:
    """The help of a rule task's options: the tenant, the rule as `rule` says, and `more`."""
    return {"tenant": "the tenant whose firewall to change", "rule": rule, **more, "lab": LAB_HELP}


def _rule_change(what: str, lab: str | None, change: Callable[[str], admin.Change], done: str) -> None:
    """Run one firewall change as task `what`, say what it did and how quickly the edges applied it."""
    need_root(what)
    lab_name = runtime.resolve_lab(lab)
    result = change(lab_name)
    console.print(f"{result.spec.name}: {len(result.spec.rules)} rules; {done}", highlight=False)
    _report_applied(lab_name, result.revision)


@task(
    name="add",
    positional=["tenant", "rule"],
    help=_rule_help(
        "the rule, e.g. 'ip daddr 203.0.113.100 tcp dport 8080 accept' (quote it)",
        position="insert as rule number N (default 0: last; rules are first-match)",
    ),
)
@user_errors
def rule_add(c: Context, tenant: str, rule: str, position: int = 0, lab: str | None = None) -> None:
    """Add a firewall rule to a tenant; every edge enforces it as soon as its agent sees the change."""
    # An int default, so that invoke parses --position as a number (with None it handed over a string).
    if _help_asked("tenant.rule.add", tenant, rule):
        return
    if position < 0:
        raise EdgesimError(Problem("--position", f"{position} is not a rule number", "1 or more; 0: last"))
    admin.checked_rule(rule)
    _rule_change(
        "tenant.rule.add", lab, lambda name: admin.add_rule(name, tenant, rule, position), f"added {rule!r}"
    )


@task(
    name="rm",
    positional=["tenant", "rule"],
    help=_rule_help("the rule's text (any spelling of it) or its number in `invoke tenant.list`"),
)
@user_errors
def rule_rm(c: Context, tenant: str, rule: str, lab: str | None = None) -> None:
    """Remove a firewall rule from a tenant, on every edge."""
    _rule_change(
        "tenant.rule.rm", lab, lambda name: admin.remove_rule(name, tenant, rule), f"removed {rule!r}"
    )


rule_ns = Collection("rule", rule_add, rule_rm)
ns = Collection("tenant", list_, add, rm)
ns.add_collection(rule_ns)
# The collections this feature adds to `edgesim`/`invoke` (edgesim.tasks walks every feature's).
COLLECTIONS = [ns]
