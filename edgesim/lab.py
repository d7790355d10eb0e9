"""The lab's life cycle as an API: up, down, status and exec. Tasks, tests and benchmarks call these."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pyroute2 import IPRoute
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edgesim import namespaces, runtime
from edgesim.backends import get_backend
from edgesim.backends.base import Backend
from edgesim.errors import EdgesimError, Problem
from edgesim.lb import backplane
from edgesim.lb import control as lb_control
from edgesim.load import load_topology
from edgesim.mitigation import store as mitigation_store
from edgesim.nodes import role_for
from edgesim.plan import LabPlan, NodePlan, build_plan
from edgesim.routing import announcements, kernel
from edgesim.runtime import DEFAULT_TOPOLOGY
from edgesim.state import LabState

REPO_ROOT = Path(__file__).resolve().parent.parent
# Edge agents compile their BPF programs at start (≈2 s each, several at once on two cores; longer
# on a busy machine).
READY_TIMEOUT_S = 60.0
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
    """Load a topology file and plan it."""
    return build_plan(load_topology(topology, lab=lab))


def up(
    topology: str | Path = DEFAULT_TOPOLOGY,
    lab: str | None = None,
    backend_name: str = "netns",
    console: Console | None = None,
) -> UpResult:
    """Build the lab described by `topology` (idempotent: a running identical lab is left as it is)."""
    console = console or Console(stderr=True)
    started = time.monotonic()
    plan = load_plan(topology, lab)
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
        console.print(f"[yellow]lab {plan.lab} is up but damaged; rebuilding it[/]")
    if recorded or namespaces.list_with_prefix(plan.netns_prefix):
        if recorded and recorded.get("phase") != "up":
            console.print(
                f"[yellow]found leftovers of an interrupted `up` of lab {plan.lab}; removing them[/]"
            )
        down(plan.lab, console=console, quiet=True)
    try:
        _build(plan, backend, state, digest, str(topology), console)
    except BaseException:
        # Ctrl-C or any failure: leave nothing half-built behind.
        console.print(f"[red]up of lab {plan.lab} failed; removing what was created[/]")
        down(plan.lab, console=console, quiet=True)
        raise
    return UpResult(plan, changed=True, seconds=time.monotonic() - started)


def _build(
    plan: LabPlan, backend: Backend, state: LabState, digest: str, topology: str, console: Console
) -> None:
    state.begin(plan, digest, topology, backend.name)
    roles = [role_for(plan, node) for node in plan.nodes.values()]
    services = [(node, svc) for node in plan.nodes.values() for svc in node.services]
    columns = (TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        stage = progress.add_task("namespaces", total=len(roles))
        for role in roles:
            backend.create_node(role.node)
            role.prepare()
            progress.advance(stage)
        stage = progress.add_task("links (veth pairs)", total=len(plan.links))
        for link in plan.links:
            backend.create_link(plan, link)
            progress.advance(stage)
        backplane.create(plan)
        stage = progress.add_task("addresses and routes", total=len(roles))
        for role in roles:
            role.configure()
            progress.advance(stage)
        if plan.routing == "bgp":
            # BIRD reads its configuration when the supervisor starts it, so it must be written first.
            announcements.write_all(plan, state.dir)
        stage = progress.add_task("services", total=len(services))
        mitigation_store.write(mitigation_store.rules_path(plan.lab), plan.mitigation)
        lb_control.write_initial(plan)
        _start_supervisor(state)
        # In plan order, each node's services, then what needs them (the config store is seeded before
        # the edges' agents, which report ready only once they have applied it).
        for role in roles:
            for svc in role.node.services:
                _wait_listening(role.node, svc.listens, state.logs / f"{role.node.name}-{svc.name}.log")
                progress.advance(stage)
            role.started()
        if plan.routing == "bgp":
            stage = progress.add_task("BGP routes from the edges", total=1)
            kernel.wait_converged(plan, state.dir, READY_TIMEOUT_S)
            progress.advance(stage)
        if plan.backplane is not None:
            stage = progress.add_task("load balancers agree", total=1)
            lb_control.wait_converged(plan.lab, READY_TIMEOUT_S)
            progress.advance(stage)
    state.mark("up")


def _connect(netns: str, listen: str) -> None:
    """Open and close one connection to `address:port` inside the node, or to `unix:/path`."""
    if listen.startswith("unix:"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            sock.connect(listen.removeprefix("unix:"))
        return
    host, port = listen.rsplit(":", 1)
    with namespaces.inside(netns):
        sock = socket.create_connection((host, int(port)), timeout=0.5)
    sock.close()


def wait_ready(lab: str) -> None:
    """Wait until every service of a running lab accepts connections, and the router has the edges' routes."""
    state = LabState(lab)
    plan = runtime.running_plan(lab)
    for node in plan.nodes.values():
        for svc in node.services:
            _wait_listening(node, svc.listens, state.logs / f"{node.name}-{svc.name}.log")
    if plan.routing == "bgp":
        kernel.wait_converged(plan, state.dir, READY_TIMEOUT_S)


def stop_service(lab: str, node: str, service: str, timeout: float = 10.0) -> None:
    """Stop one supervised service and keep it stopped (the supervisor does not restart it) until started."""
    key = _service_key(lab, node, service)
    state = LabState(lab)
    state.set_held(key, True)
    _wait_for_service(state, key, running=False, timeout=timeout)


def start_service(lab: str, node: str, service: str, timeout: float = 10.0) -> None:
    """Start a service stopped with stop_service again, and wait until it accepts connections."""
    key = _service_key(lab, node, service)
    state = LabState(lab)
    state.set_held(key, False)
    _wait_for_service(state, key, running=True, timeout=timeout)
    target = runtime.node_plan(lab, node)
    svc = next(s for s in target.services if s.name == service)
    _wait_listening(target, svc.listens, state.logs / f"{node}-{service}.log")


def _service_key(lab: str, node: str, service: str) -> str:
    target = runtime.node_plan(lab, node)
    if service not in {s.name for s in target.services}:
        names = ", ".join(s.name for s in target.services) or "none"
        raise EdgesimError(Problem(f"{node}/{service}", "no such service", f"services of {node}: {names}"))
    return f"{node}/{service}"


def _wait_for_service(state: LabState, key: str, running: bool, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = state.services().get(key, {}).get("pid")
        alive = pid is not None and Path(f"/proc/{pid}").exists()
        if alive == running:
            return
        time.sleep(0.05)
    what = "start" if running else "stop"
    raise EdgesimError(
        Problem(key, f"the supervisor did not {what} it within {timeout:.0f} s", f"see {state.logs}")
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


def _wait_listening(node: NodePlan, listens: Sequence[str], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    for listen in listens:
        while True:
            try:
                _connect(node.netns, listen)
                break
            except OSError:
                if time.monotonic() > deadline:
                    # No service log means the supervisor never started it: its own log says why.
                    source = log if log.exists() else log.parent / "supervisor.log"
                    tail = source.read_text()[-600:] if source.exists() else "(no log)"
                    raise EdgesimError(
                        Problem(
                            f"nodes.{node.name}",
                            f"service did not start listening on {listen}",
                            f"see {log}; last output: {tail.strip() or '(empty)'}",
                        )
                    ) from None
                time.sleep(0.1)


def down(
    lab: str, console: Console | None = None, quiet: bool = False, backend_name: str = "netns"
) -> list[str]:
    """Remove everything of the lab: supervisor, processes, namespaces (and their links), pins, state."""
    console = console or Console(stderr=True)
    state = LabState(lab)
    removed: list[str] = []
    pid = state.supervisor_pid()
    if pid is not None:
        namespaces.kill_pids([pid], grace_s=5.0)
        removed.append(f"supervisor (pid {pid})")
    gone = get_backend(backend_name).destroy(lab, f"{lab}-")
    removed += [f"namespace {name}" for name in gone]
    pins = BPF_PIN_ROOT / lab
    if pins.exists():
        subprocess.run(["rm", "-rf", str(pins)], check=False)
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
    services = state.services()
    nodes = []
    for node in plan.nodes.values():
        item = NodeStatus(
            node.name,
            node.role,
            node.netns,
            namespaces.exists(node.netns),
            links_total=len(node.interfaces),
            summary=role_for(plan, node).summary(),
        )
        for svc in node.services:
            pid = services.get(f"{node.name}/{svc.name}", {}).get("pid")
            item.services[svc.name] = pid if pid and Path(f"/proc/{pid}").exists() else None
        if item.present:
            _read_links(node, item)
        nodes.append(item)
    return LabStatus(lab, recorded.get("phase", "?"), state.supervisor_pid(), nodes)


def _read_links(node: NodePlan, item: NodeStatus) -> None:
    wanted = {i.name for i in node.interfaces}
    with IPRoute(netns=node.netns) as ipr:
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
        return namespaces.run_in(target.netns, argv, **kwargs)
    except FileNotFoundError:
        raise EdgesimError(
            Problem("exec", f"command not found: {argv[0]}", "check the spelling or install it")
        ) from None
    except PermissionError as err:
        raise EdgesimError(Problem("exec", f"cannot run {argv[0]}: {err.strerror}", "run as root")) from None
