"""`invoke lb drain|undrain|status|enable|disable`: the L4 load balancer of a running lab."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from invoke import Collection, Context, task
from rich.table import Table

from edgesim import runtime
from edgesim.lb import control
from edgesim.spaced import run_named
from edgesim.taskutil import console, need_root, out, user_errors

LAB_HELP = "lab (default: the only lab up)"


def _applied(result: dict[str, Any]) -> str:
    edges, seconds = len(result["edges"]), result["seconds"]
    return f"applied on {edges} edges in {seconds:.2f} s (generation {result['generation']})"


def _edge_change(what: str, lab: str | None, change: Callable[[str], dict[str, Any]], said: str) -> None:
    """Run one LB change of an edge as task `what` and say `said` with where and how fast it applied."""
    need_root(what)
    console.print(f"{said}: {_applied(change(runtime.resolve_lab(lab)))}")


@task(help={"edge": "the edge to drain (e.g. edge1)", "lab": LAB_HELP})
@user_errors
def drain(c: Context, edge: str, lab: str | None = None) -> None:
    """No new connections to EDGE; its open connections keep reaching it until they close."""
    _edge_change("lb drain", lab, lambda name: control.drain(name, edge), f"{edge} drained")


@task(help={"edge": "the drained edge (e.g. edge1)", "lab": LAB_HELP})
@user_errors
def undrain(c: Context, edge: str, lab: str | None = None) -> None:
    """Give a drained EDGE its share of new connections again."""
    _edge_change(
        "lb undrain", lab, lambda name: control.undrain(name, edge), f"{edge} takes new connections again"
    )


@task(help={"lab": LAB_HELP})
@user_errors
def enable(c: Context, lab: str | None = None) -> None:
    """Switch the load balancer on on every edge (the default)."""
    need_root("lb enable")
    console.print(f"load balancer on: {_applied(control.set_enabled(runtime.resolve_lab(lab), True))}")


@task(help={"lab": LAB_HELP})
@user_errors
def disable(c: Context, lab: str | None = None) -> None:
    """Switch the load balancer off: each edge keeps what the router sends it (for comparisons)."""
    need_root("lb disable")
    console.print(f"load balancer off: {_applied(control.set_enabled(runtime.resolve_lab(lab), False))}")


@task(help={"lab": LAB_HELP})
@user_errors
def status(c: Context, lab: str | None = None) -> None:
    """Per edge: state, planned table share, buckets it owns in each edge's live table, packet counters."""
    need_root("lb status")
    report = control.status(runtime.resolve_lab(lab))
    state = report["state"]
    table = Table(
        title=f"L4 load balancer ({'on' if state.enabled else 'off'}, generation {state.generation})"
    )
    for column in (
        "edge",
        "state",
        "share",
        "owners (its live table)",
        "local",
        "forwarded",
        "chained",
        "received",
        "bad encap",
    ):
        table.add_column(column)
    for name, answer in report["edges"].items():
        counters = answer["counters"]
        mark = "drained" if name in state.drained else "active"
        if answer["unhealthy"]:
            mark += f"; sees failing: {', '.join(answer['unhealthy'])}"
        owners = " ".join(f"{k}:{v}" for k, v in answer["owners"].items())
        table.add_row(
            name,
            mark,
            f"{report['shares'][name]:.1%}",
            owners,
            *(str(counters[k]) for k in ("local", "forwarded", "chained", "received", "bad_encap")),
        )
    out.print(table)


LB_TASKS = {"drain": drain, "undrain": undrain, "status": status, "enable": enable, "disable": disable}


@task(
    name="lb",
    positional=["name", "edge"],
    optional=["edge"],
    help={
        "name": "the task: drain, undrain, status, enable, disable",
        "edge": "the edge (drain, undrain)",
        "lab": LAB_HELP,
    },
)
@user_errors
def lb_by_name(c: Context, name: str, edge: str | None = None, lab: str | None = None) -> None:
    """`invoke lb drain EDGE`, `invoke lb status`: the spaced forms of `invoke lb.drain EDGE`, …"""
    run_named("lb", LB_TASKS, name, c, edge=edge, lab=lab)


ns = Collection("lb", drain, undrain, status, enable, disable)
ns.add_task(lb_by_name, default=True)
# The collections this feature adds to `edgesim`/`invoke` (edgesim.tasks walks every feature's).
COLLECTIONS = [ns]
