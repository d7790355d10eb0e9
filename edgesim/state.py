"""The lab's record of itself under /run/edgesim/<lab>/: what `up` created, for `down` and `status`."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from edgesim import guard, locks, paths
from edgesim.errors import EdgesimError, Problem
from edgesim.files import atomic_write_json, atomic_write_text
from edgesim.paths import STATE_ROOT, lab_dir, lock_file
from edgesim.plan import LabPlan

__all__ = ["STATE_ROOT", "LabState", "all_labs", "changes_lab", "lab_lock"]

T = TypeVar("T")
# How long a command waits for another one changing the same lab (an `up` takes ≈ 30 s, more when busy).
LOCK_WAIT_S = 300.0


class LabState:
    """Files describing one lab: state.json (phase, digest), plan.json, supervisor pid, service pids, logs."""

    def __init__(self, lab: str) -> None:
        self.lab = guard.lab_name(lab, "lab")
        self.dir = lab_dir(lab)
        self.logs = self.dir / "logs"  # where supervised services write their output
        self.supervisor_pidfile = self.dir / "supervisor.pid"
        self.services_file = self.dir / "services.json"  # service name -> pid, written by the supervisor
        # Services (`<node>/<service>`) the supervisor must keep stopped, one per line.
        self.held_file = self.dir / "held"
        # Held by the lab's one supervisor while it runs: a second one refuses to start.
        self.supervisor_lock = self.dir / "supervisor.lock"

    def held(self) -> set[str]:
        """The services currently held stopped."""
        try:
            return set(self.held_file.read_text().split())
        except OSError:
            return set()

    def set_held(self, key: str, held: bool) -> None:
        """Add a service to the held list or take it off, atomically."""
        keys = (self.held() | {key}) if held else (self.held() - {key})
        atomic_write_text(self.held_file, "".join(f"{k}\n" for k in sorted(keys)))

    def exists(self) -> bool:
        """Whether anything of this lab's state is on disk."""
        return self.dir.exists()

    def begin(self, plan: LabPlan, digest: str, topology: str, backend: str) -> None:
        """Record, before creating anything, what is about to be created."""
        self.logs.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.dir / "plan.json", plan.model_dump(mode="json"))
        self.write(
            {
                "lab": self.lab,
                "phase": "creating",
                "digest": digest,
                "topology": topology,
                "backend": backend,
                "started_at": time.time(),
                "namespaces": plan.namespaces(),
            }
        )

    def read(self) -> dict[str, Any] | None:
        """The recorded state, or None when there is none (or it is unreadable)."""
        try:
            return json.loads((self.dir / "state.json").read_text())
        except (OSError, ValueError):
            return None

    def write(self, state: dict[str, Any]) -> None:
        """Replace state.json atomically."""
        atomic_write_json(self.dir / "state.json", state)

    def mark(self, phase: str) -> None:
        """Advance the recorded phase (creating → up)."""
        state = self.read() or {"lab": self.lab}
        state["phase"] = phase
        self.write(state)

    def plan(self) -> LabPlan | None:
        """The plan recorded by `up`, or None."""
        try:
            return LabPlan.model_validate_json((self.dir / "plan.json").read_text())
        except (OSError, ValueError):
            return None

    def services(self) -> dict[str, dict[str, Any]]:
        """What the supervisor last reported about its services."""
        try:
            return json.loads(self.services_file.read_text())
        except (OSError, ValueError):
            return {}

    def supervisor_pid(self) -> int | None:
        """The supervisor's pid if its pid file names a live supervisor process."""
        try:
            pid = int(self.supervisor_pidfile.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        words = cmdline.split(b"\0")
        ours = b"edgesim.supervisor" in words and self.lab.encode() in words
        return pid if ours else None

    def remove(self) -> None:
        """Delete everything recorded for this lab (through the guard: only inside the state root)."""
        guard.remove_tree(self.dir, paths.STATE_ROOT)


def all_labs() -> list[str]:
    """Labs that have state on this machine (directories with a valid lab name; nothing else counts)."""
    root = paths.STATE_ROOT
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and guard.is_lab_name(p.name))


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def lab_lock(
    lab: str, wait_s: float = LOCK_WAIT_S, waiting: Callable[[str], None] | None = _say
) -> Iterator[None]:
    """The lab's lock for the block: one command at a time changes a lab (up, down, every change task).

    Another command holding it is waited for (saying so once) up to `wait_s`, then an EdgesimError.
    Nested use in one process (up calls down) is fine. When the outermost holder is done and the lab has no
    state directory (after `down`, a failed `up`, a change asked of a lab that is not up), the lock file
    goes too: nothing of a lab that is not there stays behind.
    """
    path = lock_file(lab)
    outermost = not locks.is_held(path)

    def tell(holder: str) -> None:
        if waiting is not None:
            waiting(f"lab {lab} is busy ({holder}); waiting for it to finish (at most {wait_s:.0f} s)")

    try:
        locks.acquire(path, wait_s, tell)
    except locks.Busy as busy:
        raise EdgesimError(
            Problem(
                f"lab {lab}", f"another edgesim command is changing it ({busy.holder})", "try again later"
            )
        ) from None
    try:
        yield
    finally:
        if outermost and not lab_dir(lab).exists():
            remove_lock(lab)  # while holding it: a waiter then starts over on a fresh file (see locks)
        locks.release(path)


def changes_lab(func: Callable[..., T]) -> Callable[..., T]:
    """Decorator of an API call that changes a running lab (its first argument): runs under lab_lock."""

    @functools.wraps(func)
    def wrapper(lab: str, *args: Any, **kwargs: Any) -> T:
        with lab_lock(lab):
            return func(lab, *args, **kwargs)

    return wrapper


def remove_lock(lab: str) -> None:
    """Remove the lab's lock file (by `down`, holding it: a waiter then starts over on a fresh file)."""
    guard.remove_tree(lock_file(lab), paths.STATE_ROOT)
