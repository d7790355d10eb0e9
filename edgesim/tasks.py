"""The task collection behind both `invoke` (via tasks.py) and the `edgesim` console script."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from invoke import Collection, Context, Exit, task
from rich.table import Table

from edgesim import lab as lab_api
from edgesim import runtime
from edgesim.errors import EdgesimError
from edgesim.experiments import tasks as experiment_tasks
from edgesim.features import parts
from edgesim.taskutil import console, need_root, out, user_errors
from edgesim.traffic import tasks as traffic_tasks
from edgesim.vagrant import tasks as vagrant_tasks

DEFAULT = str(runtime.DEFAULT_TOPOLOGY)


def _ensure_setup(skip: bool) -> None:
    from edgesim import hostsetup as host_setup

    if not skip:
        host_setup.run_setup(console, force=False)


@task(help={"force": "run the Ansible role even when nothing seems missing"})
@user_errors
def setup(c: Context, force: bool = False) -> None:
    """Install the host prerequisites (Ansible role roles/host) and prove bcc compiles and attaches XDP."""
    from edgesim import hostsetup as host_setup

    need_root("setup")
    host_setup.run_setup(console, force=force)


@task(
    help={
        "topology": "topology file (default: topology/default.yml)",
        "lab": "lab name, overriding the file's `lab:` (lets two labs from one file run side by side)",
        "skip-setup": "do not check host prerequisites first",
    }
)
@user_errors
def up(c: Context, topology: str = DEFAULT, lab: str | None = None, skip_setup: bool = False) -> None:
    """Build the lab from a topology file; idempotent on a running lab; ends with a table of nodes."""
    need_root("up")
    _ensure_setup(skip_setup)
    result = lab_api.up(topology, lab=lab, console=console)
    _print_status(lab_api.status(result.plan.lab))
    if result.changed:
        console.print(
            f"lab [bold]{result.plan.lab}[/] is up in {result.seconds:.1f} s "
            f"(`invoke status`, `invoke exec NODE -- CMD`, `invoke down`)"
        )


@task(
    help={
        "lab": "lab to remove (default: the only lab up, else the topology's lab)",
        "topology": "topology file whose lab to remove",
        "all": "remove every edgesim lab on this machine",
    }
)
@user_errors
def down(c: Context, lab: str | None = None, topology: str = DEFAULT, all: bool = False) -> None:
    """Remove the lab: processes, namespaces, links, BPF pins, state. Idempotent; cleans a crashed `up`."""
    need_root("down")
    from edgesim.state import all_labs

    started = time.monotonic()
    labs = all_labs() if all else [runtime.resolve_lab(lab, topology)]
    for name in labs:
        lab_api.down(name, console=console)
    if all and not labs:
        console.print("no edgesim lab is up")
    console.print(f"done in {time.monotonic() - started:.1f} s")


@task(help={"lab": "lab to show (default: the only lab up)", "json": "print JSON instead of a table"})
@user_errors
def status(c: Context, lab: str | None = None, json: bool = False) -> None:
    """Show what is up, per node: namespace, links, addresses, services."""
    report = lab_api.status(runtime.resolve_lab(lab))
    if json:
        import dataclasses
        import json as json_module

        out.print_json(json_module.dumps(dataclasses.asdict(report)))
        return
    _print_status(report)
    if not report.healthy:
        raise Exit(code=1)


def _print_status(report: lab_api.LabStatus) -> None:
    table = Table(
        title=f"lab {report.lab} — {report.phase}, supervisor "
        f"{'pid ' + str(report.supervisor_pid) if report.supervisor_pid else '[red]not running[/]'}"
    )
    for column in ("node", "role", "namespace", "links", "addresses", "runs"):
        table.add_column(column)
    for node in report.nodes:
        links = f"{node.links_up}/{node.links_total} up" if node.present else "[red]missing[/]"
        pids = [f"pid {pid}" if pid else "[red]not running[/]" for pid in node.services.values()]
        runs = node.summary + (f" ({', '.join(pids)})" if pids else "")
        table.add_row(node.name, node.role, node.netns, links, "\n".join(node.addresses), runs)
    out.print(table)


@task(
    help={"node": "node to run in (e.g. edge1)", "lab": "lab (default: the only lab up)"},
)
@user_errors
def exec(c: Context, node: str, lab: str | None = None) -> None:
    """Run a command inside a node: `invoke exec NODE -- CMD ARGS…` (like `ip netns exec`)."""
    need_root("exec")
    argv = _remainder(c)
    result = lab_api.exec_in(runtime.resolve_lab(lab), node, argv)
    if result.returncode:
        raise Exit(code=result.returncode)


def _remainder(c: Context) -> list[str]:
    # invoke joins the words after `--` with spaces and loses quoting; take them from argv when present.
    if "--" in sys.argv:
        return sys.argv[sys.argv.index("--") + 1 :]
    return shlex.split(c.remainder)


@task(help={"topology": "topology file", "lab": "lab name override"})
@user_errors
def plan(c: Context, topology: str = DEFAULT, lab: str | None = None) -> None:
    """Validate a topology and print its plan (names, addresses, routes) as JSON; needs no root."""
    out.print_json(lab_api.load_plan(topology, lab).model_dump_json())


BACKENDS_WITH_FILES = ("containerlab",)


@task(
    help={
        "backend": "the backend whose file to render: containerlab",
        "topology": "topology file",
        "lab": "lab name override",
        "output": "write the file here instead of printing it",
    }
)
@user_errors
def render(
    c: Context,
    backend: str = "containerlab",
    topology: str = DEFAULT,
    lab: str | None = None,
    output: str | None = None,
) -> None:
    """Print the file a backend deploys (containerlab: the lab's `.clab.yml`); needs no root."""
    if backend not in BACKENDS_WITH_FILES:
        raise EdgesimError(
            f"the {backend!r} backend has no file to render", hint=f"one of {', '.join(BACKENDS_WITH_FILES)}"
        )
    from edgesim.backends.containerlab.render import NODE_IMAGE, render_text

    text = render_text(lab_api.load_plan(topology, lab), NODE_IMAGE)
    if output:
        Path(output).write_text(text)
        console.print(f"wrote {output}")
    else:
        out.print(text, highlight=False, soft_wrap=True, end="")


@task(help={"output": "write the schema to this file instead of printing it"})
@user_errors
def schema(c: Context, output: str | None = None) -> None:
    """Export the topology format as JSON Schema (for editors: yaml-language-server, VS Code)."""
    from edgesim.model import Topology

    text = json.dumps(Topology.model_json_schema(), indent=2) + "\n"
    if output:
        Path(output).write_text(text)
        console.print(f"wrote {output}")
    else:
        out.print(text, highlight=False, soft_wrap=True)


# `all` is what a developer runs; `vagrant` (the docker-provider job, minutes of its own) is CI's second step.
SUITES = {
    # Everything CI runs, the Vagrant docker-provider job last (it needs the suites' host setup).
    "all": ["tests/unit", "tests/bpf", "tests/e2e", "tests/vagrant"],
    "unit": ["tests/unit"],
    "bpf": ["tests/bpf"],
    "e2e": ["tests/e2e"],
    "vagrant": ["tests/vagrant"],
    # Opt-in, not in `all`: the local box under software emulation (TCG), most of an hour.
    "vm": ["tests/vm"],
}


@task(
    help={
        "suite": "all | unit | bpf | e2e | vagrant | vm (opt-in: the libvirt box under TCG)",
        "k": "only tests matching this pytest -k expression",
        "skip-setup": "do not check host prerequisites first",
    }
)
@user_errors
def test(c: Context, suite: str = "all", k: str | None = None, skip_setup: bool = False) -> None:
    """Run the test suites (unit, bpf, e2e against a real lab); sets the host up first when needed."""
    if suite not in SUITES:
        raise EdgesimError(f"unknown suite {suite!r}", hint=f"one of {', '.join(SUITES)}")
    if suite != "unit":
        need_root("test")
        _ensure_setup(skip_setup)
    args = [sys.executable, "-m", "pytest", *SUITES[suite], "-ra"]
    if k:
        args += ["-k", k]
    started = time.monotonic()
    result = subprocess.run(args, cwd=lab_api.REPO_ROOT, check=False)
    console.print(f"tests finished in {time.monotonic() - started:.0f} s")
    if result.returncode == 5:
        console.print("[red]error:[/] pytest collected no tests; that is a failure, not a pass")
        raise Exit(code=1)
    if result.returncode:
        raise Exit(code=result.returncode)


@task
@user_errors
def lint(c: Context) -> None:
    """Run ruff over the project."""
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=lab_api.REPO_ROOT, check=False)
    if result.returncode:
        raise Exit(code=result.returncode)


@task(help={"clear": "remove the cache's entries (only its own: directories named by a sha256)"})
@user_errors
def bpf_cache(c: Context, clear: bool = False) -> None:
    """List the BPF cache's entries (compiled programs, one per source, params and kernel), or clear it."""
    from edgesim.bpf import cache

    if clear:
        need_root("bpf-cache --clear")
        removed = cache.clear()
        console.print(f"removed {len(removed)} entries from {cache.root()}")
        return
    for key in cache.entries():
        out.print(key, highlight=False)


ns = Collection(
    setup,
    up,
    down,
    status,
    exec,
    plan,
    render,
    schema,
    test,
    lint,
    bpf_cache,
    traffic_tasks.attack,
    traffic_tasks.load,
)
# Each feature brings its own sub-collections (`invoke <area> <task>`): its `tasks` module's COLLECTIONS.
for _feature, module in parts("tasks"):
    for collection in module.COLLECTIONS:
        ns.add_collection(collection)
ns.add_collection(experiment_tasks.ns, name="experiment")
ns.add_collection(vagrant_tasks.ns, name="vagrant")
