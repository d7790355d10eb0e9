"""The lab supervisor: runs each service in its node, restarts it when it dies, stops all on SIGTERM.

Started by `up` as `python -m edgesim.supervisor --lab NAME`; one per lab, recorded in the lab state.
A supervisor started for a lab whose previous one died (SIGKILL: its services kept running) takes over
the services still running as they are, by the pids the previous one recorded, and starts the others.
A service listed in the lab's held file (edgesim.lab.stop_service) is stopped and kept stopped until it
is taken off the list again (edgesim.lab.start_service).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgesim import guard, locks, namespaces, runtime
from edgesim.backends.base import Backend
from edgesim.files import atomic_write_json
from edgesim.plan import NodePlan
from edgesim.state import LabState

RESTART_DELAY_S = 1.0
MAX_RESTARTS_PER_MINUTE = 5


class Adopted:
    """A service process a previous supervisor started: not our child, so watched by its pid."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """None while it runs; then -1 (its exit status went to whoever reaped it, not to us)."""
        if self.returncode is None and not namespaces.process_alive(self.pid):
            self.returncode = -1
        return self.returncode


def _runs(pid: int, argv: list[str]) -> bool:
    """Whether pid is alive and runs exactly argv (a recorded pid may since have been reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return namespaces.process_alive(pid) and cmdline.rstrip(b"\0").split(b"\0") == [a.encode() for a in argv]


@dataclass
class Supervised:
    """One service instance and its restart history."""

    key: str  # "<node>/<service>", or "host/<service>" for a host service
    node: NodePlan | None  # None: a host service, run in the supervisor's own (root) namespace
    backend: Backend  # the lab's: it starts the process inside the node
    argv: list[str]
    log: str
    cwd: str  # the lab's state directory: relative paths in a command (BIRD's files) resolve there
    process: subprocess.Popen | Adopted | None = None
    restarts: list[float] = field(default_factory=list)
    gave_up: bool = False
    held: bool = False  # stopped on request, not to be restarted until released


def _start(item: Supervised) -> None:
    with open(item.log, "ab") as log:
        options = {"stdout": log, "stderr": subprocess.STDOUT, "stdin": subprocess.DEVNULL, "cwd": item.cwd}
        if item.node is None:
            item.process = subprocess.Popen(item.argv, **options)
        else:
            item.process = item.backend.popen(item.node, item.argv, **options)


def _report(state: LabState, items: list[Supervised]) -> None:
    data = {
        it.key: {
            "pid": it.process.pid if it.process and it.process.poll() is None else None,
            "restarts": len(it.restarts),
            "gave_up": it.gave_up,
            "held": it.held,
        }
        for it in items
    }
    atomic_write_json(state.services_file, data)


def _apply_holds(items: list[Supervised], held: set[str]) -> bool:
    """Stop services newly held, start services released; whether anything changed."""
    changed = False
    for item in items:
        if item.key in held and not item.held:
            if item.process is not None and item.process.poll() is None:
                namespaces.kill_pids([item.process.pid], grace_s=3.0)
            print(f"supervisor: {item.key} stopped on request", flush=True)
            item.held = changed = True
        elif item.held and item.key not in held:
            # A fresh start, not a restart after a crash: the crash budget starts over.
            item.held, item.gave_up, item.restarts = False, False, []
            print(f"supervisor: {item.key} started again on request", flush=True)
            _start(item)
            changed = True
    return changed


def supervise(lab: str) -> int:
    """Run the lab's services until SIGTERM."""
    state = LabState(lab)
    plan = state.plan()
    if plan is None:
        print(f"supervisor: no plan recorded for lab {lab}", file=sys.stderr)
        return 1
    backend = runtime.backend(lab)
    items = [
        Supervised(
            key=f"{node.name}/{svc.name}",
            node=node,
            backend=backend,
            argv=svc.argv(sys.executable),
            log=str(state.logs / f"{node.name}-{svc.name}.log"),
            cwd=str(state.dir),
        )
        for node in plan.nodes.values()
        for svc in node.services
    ]
    # Host services (loopback relays into the lab) live in the root namespace: the backend's sweep of the
    # lab's nodes cannot find them, so they die with the supervisor (see edgesim.metrics.relay).
    items += [
        Supervised(
            key=f"host/{svc.name}",
            node=None,
            backend=backend,
            argv=svc.argv(sys.executable),
            log=str(state.logs / f"host-{svc.name}.log"),
            cwd=str(state.dir),
        )
        for svc in plan.host_services
    ]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    previous = state.services()  # what the supervisor before this one recorded, if there was one
    for item in items:
        pid = previous.get(item.key, {}).get("pid")
        if pid and _runs(pid, item.argv):
            item.process = Adopted(pid)
            print(f"supervisor: {item.key} still runs (pid {pid}); taking it over", flush=True)
        else:
            _start(item)
    _report(state, items)
    while not stop.wait(0.2):
        changed = _apply_holds(items, state.held())
        for item in items:
            if item.held or item.gave_up or item.process is None or item.process.poll() is None:
                continue
            now = time.monotonic()
            item.restarts = [t for t in item.restarts if now - t < 60]
            if len(item.restarts) >= MAX_RESTARTS_PER_MINUTE:
                item.gave_up = True
                print(f"supervisor: {item.key} keeps dying; not restarting (see {item.log})", flush=True)
            else:
                print(f"supervisor: {item.key} exited with {item.process.returncode}; restarting", flush=True)
                time.sleep(RESTART_DELAY_S)
                item.restarts.append(now)
                _start(item)
            changed = True
        if changed:
            _report(state, items)
    pids = [it.process.pid for it in items if it.process and it.process.poll() is None]
    namespaces.kill_pids(pids, grace_s=3.0)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m edgesim.supervisor --lab NAME`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", required=True, type=guard.lab_argument)
    args = parser.parse_args(argv)
    state = LabState(args.lab)
    if not state.exists():
        print(f"supervisor: lab {args.lab} has no state directory {state.dir}", file=sys.stderr)
        return 1
    try:
        locks.acquire(state.supervisor_lock)
    except locks.Busy as busy:
        print(
            f"supervisor: lab {args.lab} has a supervisor already ({busy.holder}); not starting a second",
            file=sys.stderr,
        )
        return 1
    state.supervisor_pidfile.write_text(str(os.getpid()))
    return supervise(args.lab)


if __name__ == "__main__":
    sys.exit(main())
