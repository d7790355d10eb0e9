"""Tasks for anycast by BGP: `invoke bgp status`, `invoke bgp config NODE`, `invoke edge down|up EDGE`.

invoke spells a collection's tasks with a dot (`invoke edge.down edge1`); each collection also has a
default task taking the task's name as a word, so the spaced form (`invoke edge down edge1`) works too.
"""

from __future__ import annotations

import dataclasses
import json as json_module
from pathlib import PurePosixPath

from invoke import Collection, Context, Exit, task
from rich.markup import escape
from rich.table import Table

from edgesim import lab as lab_api
from edgesim import runtime
from edgesim.errors import EdgesimError, Problem
from edgesim.routing import bird
from edgesim.routing import control as routing
from edgesim.routing.status import BgpStatus, bgp_status
from edgesim.spaced import run_named
from edgesim.taskutil import console, need_root, out, user_errors

DEFAULT = str(runtime.DEFAULT_TOPOLOGY)
LAB_HELP = "lab (default: the only lab up)"


@task(help={"lab": LAB_HELP, "json": "print JSON instead of tables"})
@user_errors
def status(c: Context, lab: str | None = None, json: bool = False) -> None:
    """BGP sessions and BFD per edge, what each edge announces, and the router's multipath next hops."""
    need_root("bgp status")
    report = bgp_status(runtime.resolve_lab(lab))
    if json:
        out.print_json(json_module.dumps(dataclasses.asdict(report)))
    else:
        _print_bgp(report)
    if not report.healthy:
        raise Exit(code=1)


def _print_bgp(report: BgpStatus) -> None:
    sessions = Table(title=f"lab {report.lab} — BGP sessions of the router (BIRD)")
    for column in ("edge", "neighbour", "BGP", "BFD", "since", "routes in", "announces", "edge's BIRD"):
        sessions.add_column(column)
    for s in report.sessions:
        style = "green" if s.bgp_state == "Established" else "red"
        announces = "[yellow]drained[/]" if s.drained else "\n".join(s.announcing) or "-"
        sessions.add_row(
            s.edge,
            s.address,
            f"[{style}]{s.bgp_state}[/]",
            s.bfd_state,
            s.since,
            str(s.received),
            announces,
            "running" if s.bird_running else "[red]not answering[/]",
        )
    out.print(sessions)
    routes = Table(title="router's kernel routes to the anycast prefixes (main table)")
    for column in ("prefix", "installed by", "next hops"):
        routes.add_column(column)
    for r in report.routes:
        routes.add_row(r.prefix, r.proto, ", ".join(r.nexthops))
    out.print(routes)
    for problem in report.problems:
        console.print(f"[red]problem:[/] {escape(str(problem))}", highlight=False)
    if not report.router_bird_running:
        console.print("[red]the router's BIRD does not answer[/]")


@task(
    help={
        "node": "the router or an edge (e.g. edge1)",
        "topology": "topology file (default: topology/default.yml)",
        "lab": "lab name override",
        "vars": "print the Ansible variables of roles/bird (bird_config, bird_includes) as JSON instead",
    }
)
@user_errors
def config(
    c: Context, node: str, topology: str = DEFAULT, lab: str | None = None, vars: bool = False
) -> None:
    """Print a node's BIRD configuration as planned (no root): what `up` writes, what roles/bird installs."""
    plan = lab_api.load_plan(topology, lab)
    target = plan.nodes.get(node)
    if target is None or target.bgp is None:
        running = ", ".join(n.name for n in plan.nodes.values() if n.bgp is not None)
        raise EdgesimError(
            Problem(f"node {node}", "runs no BIRD in this plan", f"nodes with BIRD: {running or 'none'}")
        )
    text = bird.render_config(plan.lab, target)
    includes = {}
    if target.bgp.announcements is not None:
        name = PurePosixPath(target.bgp.announcements).name
        includes[name] = bird.render_announcements(node, target.anycast, drained=False)
    if vars:
        out.print_json(json_module.dumps({"bird_config": text, "bird_includes": includes}))
        return
    out.print(text, highlight=False, markup=False, end="")
    for name, included in includes.items():
        out.print(f"\n# ---- {name} (included above) ----", highlight=False, markup=False)
        out.print(included, highlight=False, markup=False, end="")


BGP_TASKS = {"status": status}


@task(
    name="bgp",
    positional=["name"],
    help={"name": "the task: status", "lab": LAB_HELP, "json": "print JSON instead of tables"},
)
@user_errors
def bgp_by_name(c: Context, name: str, lab: str | None = None, json: bool = False) -> None:
    """`invoke bgp status`: the spaced form of `invoke bgp.status`."""
    run_named("bgp", BGP_TASKS, name, c, lab=lab, json=json)


@task(help={"edge": "the edge to drain (e.g. edge1)", "lab": LAB_HELP})
@user_errors
def down(c: Context, edge: str, lab: str | None = None) -> None:
    """Drain an edge at the routing layer: withdraw all it announces; returns once the router follows."""
    need_root("edge down")
    seconds = routing.edge_down(runtime.resolve_lab(lab), edge)
    console.print(
        f"{edge} withdrawn: the router stopped using it after {seconds:.2f} s (`invoke edge up {edge}`)"
    )


@task(help={"edge": "the edge to announce again (e.g. edge1)", "lab": LAB_HELP})
@user_errors
def up(c: Context, edge: str, lab: str | None = None) -> None:
    """Announce a drained edge's prefixes again; returns once the router uses it again."""
    need_root("edge up")
    seconds = routing.edge_up(runtime.resolve_lab(lab), edge)
    console.print(f"{edge} announced again: the router uses it after {seconds:.2f} s")


EDGE_TASKS = {"down": down, "up": up}


@task(
    name="edge",
    positional=["name", "edge"],
    help={"name": "the task: down or up", "edge": "the edge (e.g. edge1)", "lab": LAB_HELP},
)
@user_errors
def edge_by_name(c: Context, name: str, edge: str, lab: str | None = None) -> None:
    """`invoke edge down|up EDGE`: the spaced form of `invoke edge.down EDGE`."""
    run_named("edge", EDGE_TASKS, name, c, edge=edge, lab=lab)


bgp_ns = Collection("bgp", status, config)
bgp_ns.add_task(bgp_by_name, default=True)
edge_ns = Collection("edge", down, up)
edge_ns.add_task(edge_by_name, default=True)
# The collections this feature adds to `edgesim`/`invoke` (edgesim.tasks walks every feature's).
COLLECTIONS = [bgp_ns, edge_ns]
