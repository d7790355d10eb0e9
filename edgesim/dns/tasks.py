"""`edgesim dns limit|top`: the DNS socket filter's per-source limit and its busiest sources at run time."""

from __future__ import annotations

from invoke import Collection, Context, task
from rich.table import Table

from edgesim import runtime
from edgesim.dns import control
from edgesim.taskutil import console, need_root, out, user_errors

LAB_HELP = "lab (default: the only lab up)"


@task(
    help={
        "rate": "queries per second each source may send (default: keep the one in force)",
        "burst": "queries a source may send at once (default: keep the one in force)",
        "off": "count sources but drop nothing (the filter stays attached)",
        "on": "drop what is over the limit again",
        "lab": LAB_HELP,
    },
    auto_shortflags=False,
)
@user_errors
def limit(
    c: Context,
    rate: int | None = None,
    burst: int | None = None,
    off: bool = False,
    on: bool = False,
    lab: str | None = None,
) -> None:
    """Set the per-source limit on every edge's DNS socket (a map update: no reattach); no option: show it."""
    need_root("dns limit")
    name = runtime.resolve_lab(lab)
    current = control.current_limit(name)
    if rate is None and burst is None and not off and not on:
        state = "on" if current.enabled else "off (counting only)"
        out.print(f"{current.rate}/s per source, burst {current.burst}, {state}")
        return
    enabled = current.enabled if off == on else on
    new = control.parse_limit(rate or current.rate, burst or current.burst, enabled)
    control.set_limit(name, new)
    state = "on" if new.enabled else "off (counting only)"
    console.print(f"DNS limit {new.rate}/s per source, burst {new.burst}, {state}, on every edge of {name}")


@task(help={"count": "how many sources per edge (default 10)", "lab": LAB_HELP})
@user_errors
def top(c: Context, count: int = 10, lab: str | None = None) -> None:
    """The sources with the most drops on each edge's DNS socket, and the socket's own counters."""
    need_root("dns top")
    name = runtime.resolve_lab(lab)
    per_edge = control.stats(name, top=count)
    totals = Table(title=f"DNS socket filter, lab {name}")
    for column in ("edge", "limit", "sources tracked", "passed", "dropped", "answered", "rx buffer drops"):
        totals.add_column(column, justify="right")
    sources = Table(title=f"top {count} sources per edge (by drops)")
    for column in ("edge", "source", "passed", "dropped"):
        sources.add_column(column, justify="right")
    for edge, stats in per_edge.items():
        limit = stats["limit"]
        shown = f"{limit['rate']}/s b{limit['burst']}" + ("" if limit["enabled"] else " (off)")
        counters = stats["filter"]
        totals.add_row(
            edge,
            shown,
            f"{stats['tracked']} ({counters['sources']} ever)",
            str(counters["passed"]),
            str(counters["dropped"]),
            str(stats["queries"].get("answered", 0)),
            str(stats["rx_drops"]),
        )
        for source in stats["top"]:
            sources.add_row(edge, source["address"], str(source["passed"]), str(source["dropped"]))
    out.print(totals)
    out.print(sources)


ns = Collection("dns", limit, top)
# The collections this feature adds to `edgesim`/`invoke` (edgesim.tasks walks every feature's).
COLLECTIONS = [ns]
