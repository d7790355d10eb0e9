"""The lab's life cycle as an API: up, down, status and exec. Tasks, tests and benchmarks call these."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edgesim import guard, namespaces, runtime
from edgesim.backends import get_backend
from edgesim.backends.base import Backend
from edgesim.errors import EdgesimError, Problem
from edgesim.hooks import LabContext, active_hooks, all_hooks
from edgesim.load import load_topology
from edgesim.nodes import NodeRole, role_for
from edgesim.plan import BackplanePlan, LabPlan, NodePlan, build_plan
from edgesim.readiness import wait_listening
from edgesim.runtime import DEFAULT_TOPOLOGY
from edgesim.state import LabState, lab_lock
from edgesim.waiting import wait_until

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parent.parent
# Edge agents compile their BPF programs at start (≈2 s each, several at once on two cores; longer
# on a busy machine). EDGESIM_READY_TIMEOUT_S raises it for slow hosts (a guest on a loaded machine).
READY_TIMEOUT_S = float(os.environ.get("EDGESIM_READY_TIMEOUT_S", "60"))
BPF_PIN_ROOT = Path("/sys/fs/bpf/edgesim")


@dataclass
class UpResult:
    """What `up` did: the plan, whether anything changed, and how long it took."""

    plan: LabPlan
    changed: bool
    seconds: float


@dataclass
class NodeStatus:
    """One node as it is now."""

    name: str
    role: str
    netns: str
    present: bool
    addresses: list[str] = field(default_factory=list)
    links_up: int = 0
    links_total: int = 0
    services: dict[str, int | None] = field(default_factory=dict)
    summary: str = ""


@dataclass
class LabStatus:
    """The whole lab as it is now."""

    lab: str
    phase: str
    supervisor_pid: int | None
    nodes: list[NodeStatus]

    @property
    def healthy(self) -> bool:
        """Every node present with its links up, every service running, and the supervisor alive."""
        return (
            self.phase == "up"
            and self.supervisor_pid is not None
            and all(n.present and n.links_up == n.links_total for n in self.nodes)
            and all(pid is not None for n in self.nodes for pid in n.services.values())
        )


def plan_digest(plan: LabPlan, backend: str) -> str:
    """A fingerprint of what a lab is built from, to tell whether a second `up` would change anything."""
    return hashlib.sha256((backend + plan.model_dump_json()).encode()).hexdigest()[:16]


def load_plan(topology: str | Path = DEFAULT_TOPOLOGY, lab: str | None = None) -> LabPlan:
    """Load a topology file and plan it (a planning error names the file, like a loading error)."""
    model = load_topology(topology, lab=lab)
    try:
        return build_plan(model)
    except EdgesimError as err:
        if err.source:
            raise
        raise EdgesimError(err.problems, source=str(topology)) from None


def up(
    topology: str | Path = DEFAULT_TOPOLOGY,
    lab: str | None = None,
    backend_name: str = "netns",
    console: Console | None = None,
) -> UpResult:
    """Build the lab described by `topology` (idempotent: a running identical lab is left as it is)."""
    console = console or Console(stderr=True)
    started = time.monotonic()
    if lab is not None:
        guard.lab_name(lab)
    plan = load_plan(topology, lab)
    # One writer per lab: a second `up` (or a `down`, a change task) waits here until this one is done.
    with lab_lock(plan.lab, waiting=_say(console)):
        return _up(plan, topology, backend_name, console, started)


def _say(console: Console) -> Callable[[str], None]:
    """How a command waiting for the lab's lock tells the user (the text is not markup)."""
    return lambda text: console.print(text, style="yellow", markup=False, highlight=False)


def _up(plan: LabPlan, topology: str | Path, backend_name: str, console: Console, started: float) -> UpResult:
    """`up` with the lab's lock held."""
    backend = get_backend(backend_name)
    state = LabState(plan.lab)
    digest = plan_digest(plan, backend_name)
    recorded = state.read()
    if recorded and recorded.get("phase") == "up":
        if recorded.get("digest") != digest:
            raise EdgesimError(
                Problem(
                    f"lab {plan.lab}",
                    f"is already up from a different topology ({recorded.get('topology')})",
                    f"run `invoke down --lab {plan.lab}` first, or pick another lab name with --lab",
                )
            )
        current = status(plan.lab)
        if current.healthy:
            console.print(f"[green]lab {plan.lab} is already up with this topology; nothing changed[/]")
            return UpResult(plan, changed=False, seconds=time.monotonic() - started)
        if current.supervisor_pid is None and all(
            n.present and n.links_up == n.links_total for n in current.nodes
        ):
            # Only the supervisor died (SIGKILL): a new one takes over the services still running.
            console.print(f"[yellow]lab {plan.lab} has lost its supervisor; starting a new one[/]")
            _start_supervisor(state)
            wait_until(
                state.supervisor_pid,
                timeout=READY_TIMEOUT_S,
                interval=0.05,
                failure=lambda _: Problem(
                    f"lab {plan.lab}", "the new supervisor did not start", f"see {state.logs}"
                ),
            )
            wait_ready(plan.lab)
            console.print(f"[green]lab {plan.lab} is supervised again[/]")
            return UpResult(plan, changed=True, seconds=time.monotonic() - started)
        console.print(f"[yellow]lab {plan.lab} is up but damaged; rebuilding it[/]")
    if recorded or namespaces.list_with_prefix(plan.netns_prefix):
        if recorded and recorded.get("phase") != "up":
            console.print(
                f"[yellow]found leftovers of an interrupted `up` of lab {plan.lab}; removing them[/]"
            )
        down(plan.lab, console=console, quiet=True)
    try:
        _build(LabContext(plan, backend, state, READY_TIMEOUT_S), digest, str(topology), console)
    except BaseException:
        # Ctrl-C or any failure: leave nothing half-built behind.
        console.print(f"[red]up of lab {plan.lab} failed; removing what was created[/]")
        down(plan.lab, console=console, quiet=True)
        raise
    return UpResult(plan, changed=True, seconds=time.monotonic() - started)


def _build(ctx: LabContext, digest: str, topology: str, console: Console) -> None:
    """The stages of `up`: nodes, links, bridges, roles, features' files, services, features ready."""
    plan, backend, state = ctx.plan, ctx.backend, ctx.state
    state.begin(plan, digest, topology, backend.name)
    roles = [role_for(plan, node, backend) for node in plan.nodes.values()]
    hooks = active_hooks(plan)
    services = [(node, svc) for node in plan.nodes.values() for svc in node.services]
    columns = (TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:

        def stage(description: str, items: Sequence[T], action: Callable[[T], None]) -> None:
            task = progress.add_task(description, total=len(items))
            for item in items:
                action(item)
                progress.advance(task)

        def create(role: NodeRole) -> None:
            backend.create_node(role.node)
            role.prepare()

        stage("namespaces", roles, create)
        stage("links (veth pairs)", plan.links, lambda link: backend.create_link(plan, link))
        stage("bridges", _bridges(plan), lambda bridge: backend.create_bridge(plan, bridge))
        stage("addresses and routes", roles, lambda role: role.configure())
        stage("feature files", hooks, lambda hook: hook.prepare(ctx))
        _start_supervisor(state)
        # In plan order, each node's services, then what needs them (the config store is seeded before
        # the edges' agents, which report ready only once they have applied it).
        task = progress.add_task("services", total=len(services))
        for node in plan.nodes.values():
            for svc in node.services:
                wait_listening(backend, node, svc, state, ctx.timeout_s)
                progress.advance(task)
            for hook in hooks:
                hook.after_services(ctx, node)
        for hook in hooks:
            if hook.waits_for is not None:
                stage(hook.waits_for, [hook], lambda hook: hook.wait_ready(ctx))
    state.mark("up")


def _bridges(plan: LabPlan) -> list[BackplanePlan]:
    """The lab's shared segments (the edges' backplane, when it has one)."""
    return [plan.backplane] if plan.backplane is not None else []


def _context(lab: str) -> LabContext:
    """The context of a running lab, for hooks and roles: its plan, its backend, its state."""
    return LabContext(runtime.running_plan(lab), runtime.backend(lab), LabState(lab), READY_TIMEOUT_S)


def wait_ready(lab: str) -> None:
    """Wait until every service of a running lab accepts connections, and every feature is ready."""
    ctx = _context(lab)
    for node in ctx.plan.nodes.values():
        for svc in node.services:
            wait_listening(ctx.backend, node, svc, ctx.state, ctx.timeout_s)
    for hook in active_hooks(ctx.plan):
        hook.wait_ready(ctx)


def stop_service(lab: str, node: str, service: str, timeout: float = 10.0) -> None:
    """Stop one supervised service and keep it stopped (the supervisor does not restart it) until started."""
    key = _service_key(lab, node, service)
    state = LabState(lab)
    with lab_lock(lab):
        state.set_held(key, True)
        _wait_for_service(state, key, running=False, timeout=timeout)


def start_service(lab: str, node: str, service: str, timeout: float = 10.0) -> None:
    """Start a service stopped with stop_service again, and wait until it accepts connections."""
    key = _service_key(lab, node, service)
    state = LabState(lab)
    with lab_lock(lab):
        state.set_held(key, False)
        _wait_for_service(state, key, running=True, timeout=timeout)
    target = runtime.node_plan(lab, node)
    svc = next(s for s in target.services if s.name == service)
    wait_listening(runtime.backend(lab), target, svc, state, READY_TIMEOUT_S)


def _service_key(lab: str, node: str, service: str) -> str:
    target = runtime.node_plan(lab, node)
    if service not in {s.name for s in target.services}:
        names = ", ".join(s.name for s in target.services) or "none"
        raise EdgesimError(Problem(f"{node}/{service}", "no such service", f"services of {node}: {names}"))
    return f"{node}/{service}"


def _wait_for_service(state: LabState, key: str, running: bool, timeout: float) -> None:
    def alive() -> bool:
        pid = state.services().get(key, {}).get("pid")
        return pid is not None and Path(f"/proc/{pid}").exists()

    what = "start" if running else "stop"
    wait_until(
        alive,
        lambda now: now == running,
        timeout=timeout,
        interval=0.05,
        failure=lambda _: Problem(
            key, f"the supervisor did not {what} it within {timeout:.0f} s", f"see {state.logs}"
        ),
    )


def _start_supervisor(state: LabState) -> None:
    log = open(state.logs / "supervisor.log", "ab")
    with log:
        subprocess.Popen(
            [sys.executable, "-m", "edgesim.supervisor", "--lab", state.lab],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the `up` process; stopped by `down`
            close_fds=True,
        )


def down(
    lab: str, console: Console | None = None, quiet: bool = False, backend_name: str | None = None
) -> list[str]:
    """Remove everything of the lab: supervisor, processes, nodes (and their links), features' leftovers,
    pins, state. `backend_name` defaults to the one the lab was built with."""
    console = console or Console(stderr=True)
    state = LabState(lab)  # checks the name: nothing below may see `../..`
    with lab_lock(lab, waiting=_say(console)):  # its lock file goes with the state directory
        return _down(lab, state, console, quiet, backend_name)


def _down(lab: str, state: LabState, console: Console, quiet: bool, backend_name: str | None) -> list[str]:
    """`down` with the lab's lock held."""
    removed: list[str] = []
    pid = state.supervisor_pid()
    if pid is not None:
        namespaces.kill_pids([pid], grace_s=5.0)
        removed.append(f"supervisor (pid {pid})")
    backend = get_backend(backend_name) if backend_name else runtime.backend(lab)
    gone = backend.destroy(lab, f"{lab}-")
    removed += [f"namespace {name}" for name in gone]
    for hook in all_hooks():
        removed += hook.teardown(lab)
    pins = BPF_PIN_ROOT / lab
    if guard.remove_tree(pins, BPF_PIN_ROOT):
        removed.append(f"BPF pins {pins}")
    if state.exists():
        state.remove()
        removed.append(f"state {state.dir}")
    if not quiet:
        if removed:
            console.print(
                f"[green]lab {lab} removed[/]: {len(gone)} namespaces" + (", supervisor" if pid else "")
            )
        else:
            console.print(f"lab {lab} is not up; nothing to remove")
    return removed


def status(lab: str) -> LabStatus:
    """The lab as it is now, node by node."""
    state = LabState(lab)
    recorded = state.read()
    plan = state.plan()
    if recorded is None or plan is None:
        raise EdgesimError(Problem(f"lab {lab}", "is not up", "start it with `invoke up`"))
    ctx = LabContext(plan, runtime.backend(lab), state, READY_TIMEOUT_S)
    hooks = active_hooks(plan)
    services = state.services()
    nodes = []
    for node in plan.nodes.values():
        role = role_for(plan, node, ctx.backend)
        parts = role.summary_parts() + [line for hook in hooks for line in hook.status_lines(ctx, node)]
        item = NodeStatus(
            node.name,
            node.role,
            node.netns,
            ctx.backend.node_exists(node),
            links_total=len(node.interfaces),
            summary="; ".join(parts) or "-",
        )
        for svc in node.services:
            pid = services.get(f"{node.name}/{svc.name}", {}).get("pid")
            item.services[svc.name] = pid if pid and Path(f"/proc/{pid}").exists() else None
        if item.present:
            _read_links(ctx.backend, node, item)
        nodes.append(item)
    return LabStatus(lab, recorded.get("phase", "?"), state.supervisor_pid(), nodes)


def _read_links(backend: Backend, node: NodePlan, item: NodeStatus) -> None:
    wanted = {i.name for i in node.interfaces}
    with backend.netlink(node) as ipr:
        for link in ipr.get_links():
            if link.get("ifname") in wanted and link.get("operstate") == "UP":
                item.links_up += 1
        item.addresses = [
            f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}"
            for a in ipr.get_addr(family=socket.AF_INET)
            if not a.get("IFA_ADDRESS", "").startswith("127.")
        ]


def exec_in(lab: str, node: str, argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess:
    """Run a command inside a node of a running lab (like `ip netns exec`)."""
    if not argv:
        raise EdgesimError(Problem("exec", "no command given", "e.g. `invoke exec edge1 -- ip addr`"))
    target = runtime.node_plan(lab, node)
    try:
        return runtime.backend(lab).run(target, argv, **kwargs)
    except FileNotFoundError:
        raise EdgesimError(
            Problem("exec", f"command not found: {argv[0]}", "check the spelling or install it")
        ) from None
    except PermissionError as err:
        raise EdgesimError(Problem("exec", f"cannot run {argv[0]}: {err.strerror}", "run as root")) from None
