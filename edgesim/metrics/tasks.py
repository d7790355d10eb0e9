"""`edgesim metrics QUERY`, `ui`, `capture`, `graph`, `watch`: seeing a running lab."""

from __future__ import annotations

import subprocess
from pathlib import Path

from invoke import Collection, Context, task
from rich.table import Table

from edgesim import runtime
from edgesim.errors import EdgesimError, Problem
from edgesim.lab import load_plan
from edgesim.metrics import client, graph
from edgesim.metrics.capture import CaptureSpec, capture, parse_target
from edgesim.metrics.hooks import ui_address
from edgesim.taskutil import console, need_root, out, user_errors

LAB_HELP = "lab (default: the only lab up)"
FORMATS = ("png", "svg", "dot", "mermaid")


def _labels(metric: dict[str, str]) -> str:
    name = metric.get("__name__", "")
    rest = ", ".join(f"{k}={v}" for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest else name or "{}"


@task(
    name="query",
    help={"query": "a PromQL expression, e.g. 'rate(edgesim_xdp_ddos_verdicts_total[10s])'", "lab": LAB_HELP},
)
@user_errors
def query(c: Context, query: str, lab: str | None = None) -> None:
    """Run a PromQL query against the lab's Prometheus and print each series and its value."""
    need_root("metrics")
    rows = client.query(runtime.resolve_lab(lab), query)
    table = Table("series", "value", title=query)
    for row in rows:
        table.add_row(_labels(row["metric"]), row["value"][1])
    out.print(table)
    if not rows:
        console.print("[yellow]no series[/] (names: `edgesim metrics '{__name__=~\"edgesim_.*\"}'`)")


@task(help={"lab": LAB_HELP})
@user_errors
def targets(c: Context, lab: str | None = None) -> None:
    """What the lab's Prometheus scrapes and whether each target is up."""
    need_root("metrics targets")
    table = Table("job", "node", "address", "health", "last error")
    for target in client.targets(runtime.resolve_lab(lab)):
        labels = target["labels"]
        table.add_row(
            labels.get("job"),
            labels.get("node"),
            labels.get("instance"),
            target["health"],
            target["lastError"],
        )
    out.print(table)


@task(help={"lab": LAB_HELP})
@user_errors
def ui(c: Context, lab: str | None = None) -> None:
    """Print the host address (127.0.0.1 only) where the lab's Prometheus UI is reachable."""
    name = runtime.resolve_lab(lab)
    plan = runtime.running_plan(name)
    address = ui_address(runtime.state_dir(name)) if plan.metrics else None
    if address is None:
        raise EdgesimError(
            Problem(f"lab {name}", "has no UI relay running", "a lab with tenants runs Prometheus")
        )
    out.print(f"http://{address}/")


@task(
    name="capture",
    help={
        "target": "NODE or NODE:IFACE (default interface: the node's uplink)",
        "filter": "a capture filter (BPF syntax, e.g. 'ip proto 47')",
        "count": "stop after this many packets (default 50)",
        "seconds": "stop after this long (default 30, at most 600)",
        "write": "write a pcap file here instead of printing decoded lines",
        "lab": LAB_HELP,
    },
)
@user_errors
def capture_task(
    c: Context,
    target: str,
    filter: str | None = None,
    count: int = 50,
    seconds: float = 30.0,
    write: str | None = None,
    lab: str | None = None,
) -> None:
    """Capture packets on any node's interface with tshark: decoded lines, or a pcap with --write."""
    need_root("capture")
    node, iface = parse_target(target)
    spec = CaptureSpec(node, iface, filter, count, seconds, Path(write) if write else None)
    capture(runtime.resolve_lab(lab), spec)
    if write:
        console.print(f"wrote {write}")


def _render(text: str, fmt: str) -> bytes:
    try:
        return subprocess.run(
            ["dot", f"-T{fmt}"], input=text.encode(), capture_output=True, check=True
        ).stdout
    except FileNotFoundError:
        raise EdgesimError(
            Problem("graph", "Graphviz's dot is not installed", "run `edgesim setup`")
        ) from None
    except subprocess.CalledProcessError as err:
        raise EdgesimError(Problem("graph", f"dot failed: {err.stderr.decode()[-300:]}")) from None


@task(
    name="graph",
    help={
        "format": "png, svg, dot or mermaid (default: from --output's suffix, else dot)",
        "output": "file to write (default: print dot or mermaid; png and svg need it)",
        "topology": "draw this topology's plan instead of a running lab",
        "lab": LAB_HELP,
    },
)
@user_errors
def graph_task(
    c: Context,
    format: str | None = None,
    output: str | None = None,
    topology: str | None = None,
    lab: str | None = None,
) -> None:
    """Draw the lab: nodes by role, links, VIPs, tenants' tunnels; a running lab's live state too."""
    fmt = format or (Path(output).suffix.lstrip(".").replace("mmd", "mermaid") if output else "dot")
    if fmt not in FORMATS:
        raise EdgesimError(Problem("--format", f"unknown format {fmt!r}", f"one of {', '.join(FORMATS)}"))
    if topology is not None:
        plan, live = load_plan(topology, lab), None
    else:
        name = runtime.resolve_lab(lab)
        plan = runtime.running_plan(name)
        need_root("graph")
        from edgesim.metrics.live import live_state

        live = live_state(name)
    text = graph.to_mermaid(plan, live) if fmt == "mermaid" else graph.to_dot(plan, live)
    if fmt in ("png", "svg"):
        if output is None:
            raise EdgesimError(Problem("--output", f"{fmt} needs a file", "e.g. --output pop.png"))
        Path(output).write_bytes(_render(text, fmt))
    elif output is not None:
        Path(output).write_text(text)
    else:
        out.print(text, markup=False, highlight=False, end="")
    if output is not None:
        console.print(f"wrote {output} ({len(plan.nodes)} nodes, {len(plan.links)} links)")


@task(name="watch", help={"interval": "seconds between refreshes (default 2)", "lab": LAB_HELP})
@user_errors
def watch_task(c: Context, interval: float = 2.0, lab: str | None = None) -> None:
    """A live dashboard fed from the lab's Prometheus: packets in and dropped, rules, LB, tunnels, BGP."""
    from edgesim.metrics.watch import run

    need_root("watch")
    run(runtime.resolve_lab(lab), interval, out)


metrics_ns = Collection("metrics", targets)
metrics_ns.add_task(query, default=True)
# `edgesim ui`, `edgesim capture …`: one-task collections whose default task is the task itself.
COLLECTIONS = [metrics_ns]
for _task, _name in ((ui, "ui"), (capture_task, "capture"), (graph_task, "graph"), (watch_task, "watch")):
    _ns = Collection(_name)
    _ns.add_task(_task, default=True)
    COLLECTIONS.append(_ns)
