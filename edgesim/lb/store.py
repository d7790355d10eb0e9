"""The lab's load-balancer state (edges, drains, on/off): every edge agent computes its table from it."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from edgesim.files import atomic_write_text
from edgesim.lb.planner import HEALTH_PORT
from edgesim.paths import lab_dir
from edgesim.plan.naming import LB_STATE_FILE

__all__ = ["HEALTH_PORT", "LbEdge", "LbState", "read", "state_path", "write"]


class LbEdge(BaseModel):
    """An edge as the load balancer sees it: its backplane address and MAC, and its weight."""

    model_config = ConfigDict(extra="forbid")

    name: str
    address: str  # backplane address, no prefix length
    mac: str
    weight: int = 1


class LbState(BaseModel):
    """What the table is made of (each agent also remembers the table it applied, for the daisy chain)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    edges: list[LbEdge] = []  # every edge, in plan order: the index is the edge's id in the BPF maps
    vips: list[tuple[str, int]] = []  # balanced VIP:ports (TCP)
    drained: list[str] = []
    generation: int = 0  # bumped on every change, so agents and `lb status` can tell tables apart

    def names(self) -> list[str]:
        """Every edge's name, in id order."""
        return [e.name for e in self.edges]


def state_path(lab: str) -> Path:
    """The lab's LB state file, written by `up` and by `lb drain|undrain|enable|disable`."""
    return lab_dir(lab) / LB_STATE_FILE


def read(path: Path) -> LbState:
    """The state stored at `path` (disabled with no edges when there is none)."""
    try:
        return LbState.model_validate_json(path.read_text())
    except FileNotFoundError:
        return LbState(enabled=False)


def write(path: Path, state: LbState) -> None:
    """Replace the stored state atomically, so an agent never reads half a file."""
    atomic_write_text(path, state.model_dump_json(indent=2) + "\n")
