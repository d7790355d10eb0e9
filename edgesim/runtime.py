"""What tasks and agents ask of a running lab: which lab a command means, its plan, a node's plan, its state.

It sits low (state, plan records, load), below the lab's life cycle and every feature, so any of them may
ask it without an import cycle.
"""

from __future__ import annotations

from pathlib import Path

from edgesim import guard
from edgesim.backends import get_backend
from edgesim.backends.base import Backend
from edgesim.errors import EdgesimError, Problem
from edgesim.load import load_topology
from edgesim.plan import LabPlan, NodePlan
from edgesim.state import LabState, all_labs

DEFAULT_TOPOLOGY = Path(__file__).resolve().parent.parent / "topology" / "default.yml"
# What a lab recorded before state.json named its backend was built with.
DEFAULT_BACKEND = "netns"


def resolve_lab(lab: str | None, topology: str | Path = DEFAULT_TOPOLOGY) -> str:
    """The lab a command means: the one named, else the only one up, else the topology's lab."""
    if lab is not None:
        return guard.lab_name(lab)
    running = all_labs()
    if len(running) == 1:
        return running[0]
    if len(running) > 1:
        raise EdgesimError(
            Problem("--lab", f"several labs are up ({', '.join(running)})", "name one with --lab")
        )
    return load_topology(topology).lab


def lab_state(lab: str) -> LabState:
    """The lab's record of itself (state directory, logs, supervisor and service pids); checks the name."""
    return LabState(guard.lab_name(lab, "lab"))


def state_dir(lab: str) -> Path:
    """The directory holding the lab's state, logs and control sockets."""
    return lab_state(lab).dir


def running_plan(lab: str) -> LabPlan:
    """The plan of a lab that is up, or an error saying it is not."""
    plan = lab_state(lab).plan()
    if plan is None:
        raise EdgesimError(Problem(f"lab {lab}", "is not up", "start it with `invoke up`"))
    return plan


def node_plan(lab: str, node: str) -> NodePlan:
    """One node of a running lab, or an error listing the nodes there are."""
    plan = running_plan(lab)
    if node not in plan.nodes:
        raise EdgesimError(Problem(f"node {node}", f"is not in lab {lab}", f"nodes: {', '.join(plan.nodes)}"))
    return plan.nodes[node]


def backend_of(lab: str) -> str:
    """The backend the lab was built with, as `up` recorded it; the default one when nothing says.

    Never an error: `down` asks it of half-built and crashed labs too.
    """
    recorded = lab_state(lab).read() or {}
    return str(recorded.get("backend") or DEFAULT_BACKEND)


def backend(lab: str) -> Backend:
    """The backend object that built the lab (see backend_of), to reach its nodes with."""
    return get_backend(backend_of(lab))
