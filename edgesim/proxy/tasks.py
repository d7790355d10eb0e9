"""`edgesim proxy stats`: what the edges' TCP proxies did, and how much of it the kernel spliced."""

from __future__ import annotations

from invoke import Collection, Context, task
from rich.table import Table

from edgesim import runtime
from edgesim.proxy import control
from edgesim.taskutil import need_root, out, user_errors


def _mb(value: int) -> str:
    return f"{value / 1e6:,.1f}"


@task(help={"lab": "lab (default: the only lab up)"})
@user_errors
def stats(c: Context, lab: str | None = None) -> None:
    """Per edge: splice on/off, connections (spliced or copied), MB copied in user space and by the kernel."""
    need_root("proxy stats")
    per_edge = control.stats(runtime.resolve_lab(lab))
    table = Table(title="TCP proxy per edge (MB: user space copies vs the kernel's splice)")
    columns = ("edge", "splice", "open", "accepted", "spliced", "copied MB", "kernel MB", "pauses", "refused")
    for column in columns:
        table.add_column(column, justify="left" if column in ("edge", "splice") else "right")
    for edge, answer in per_edge.items():
        kernel = answer["kernel"]
        connections = answer["connections"]
        table.add_row(
            edge,
            answer["splice"],
            str(answer["open"]),
            str(connections.get("accepted", 0)),
            str(connections.get("spliced", 0)),
            _mb(sum(answer["copied_bytes"].values())),
            _mb(kernel.get("redirected_bytes", 0)),
            str(kernel.get("pauses", 0)),
            str(sum(answer["refusals"].values())),
        )
    out.print(table)


ns = Collection("proxy", stats)
# The collections this feature adds to `edgesim`/`invoke` (edgesim.tasks walks every feature's).
COLLECTIONS = [ns]
