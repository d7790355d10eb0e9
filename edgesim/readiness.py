"""Is a service up: it accepts a connection on every address it listens on, inside its node."""

from __future__ import annotations

import socket
import time
from functools import partial
from pathlib import Path

from edgesim.backends.base import Backend
from edgesim.errors import EdgesimError, Problem
from edgesim.plan import NodePlan, ServicePlan
from edgesim.state import LabState
from edgesim.waiting import wait_until

POLL_S = 0.1


def _connect(backend: Backend, node: NodePlan, listen: str, state_dir: Path) -> None:
    """Open and close one connection to `address:port` inside the node, or to `unix:path`."""
    if listen.startswith("unix:"):
        # Relative socket paths are the plan's: relative to the lab's state directory.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            sock.connect(str(state_dir / listen.removeprefix("unix:")))
        return
    host, port = listen.rsplit(":", 1)
    with backend.enter(node):
        sock = socket.create_connection((host, int(port)), timeout=0.5)
    sock.close()


def wait_listening(
    backend: Backend, node: NodePlan, service: ServicePlan, state: LabState, timeout_s: float
) -> None:
    """Wait until the service accepts connections everywhere it listens; a clear error with its log if not.

    A service the supervisor gave up on (it kept dying) fails at once rather than at the deadline: under
    QEMU's emulation the deadline is ten minutes, and a program the kernel refuses will not load later."""
    log = state.logs / f"{node.name}-{service.name}.log"
    key = f"{node.name}/{service.name}"
    deadline = time.monotonic() + timeout_s

    def answers(listen: str) -> bool:
        try:
            _connect(backend, node, listen, state.dir)
            return True
        except OSError:
            if state.services().get(key, {}).get("gave_up"):
                raise EdgesimError(problem("kept dying: the supervisor stopped restarting it")) from None
            return False

    def problem(what: str) -> Problem:
        # No service log means the supervisor never started it: its own log says why.
        source = log if log.exists() else log.parent / "supervisor.log"
        tail = source.read_text()[-600:] if source.exists() else "(no log)"
        return Problem(f"nodes.{node.name}", what, f"see {log}; last output: {tail.strip() or '(empty)'}")

    def failure(listen: str, _answered: bool) -> Problem:
        return problem(f"service did not start listening on {listen}")

    for listen in service.listens:
        # One deadline for all of the service's addresses.
        left = max(deadline - time.monotonic(), 0.0)
        wait_until(partial(answers, listen), timeout=left, interval=POLL_S, failure=partial(failure, listen))
