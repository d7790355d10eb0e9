"""The lab's record of itself under /run/edgesim/<lab>/: what `up` created, for `down` and `status`."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from edgesim.files import atomic_write_json, atomic_write_text
from edgesim.paths import STATE_ROOT, lab_dir
from edgesim.plan import LabPlan

__all__ = ["STATE_ROOT", "LabState", "all_labs"]


class LabState:
    """Files describing one lab: state.json (phase, digest), plan.json, supervisor pid, service pids, logs."""

    def __init__(self, lab: str) -> None:
        self.lab = lab
        self.dir = lab_dir(lab)
        self.logs = self.dir / "logs"  # where supervised services write their output
        self.supervisor_pidfile = self.dir / "supervisor.pid"
        self.services_file = self.dir / "services.json"  # service name -> pid, written by the supervisor
        # Services (`<node>/<service>`) the supervisor must keep stopped, one per line.
        self.held_file = self.dir / "held"

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
        return pid if b"edgesim.supervisor" in cmdline and self.lab.encode() in cmdline else None

    def remove(self) -> None:
        """Delete everything recorded for this lab."""
        shutil.rmtree(self.dir, ignore_errors=True)


def all_labs() -> list[str]:
    """Labs that have state on this machine."""
    return sorted(p.name for p in STATE_ROOT.iterdir() if p.is_dir()) if STATE_ROOT.exists() else []
