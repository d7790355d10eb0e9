"""What each edge announces now: a small JSON record per edge, rendered into BIRD's include file."""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgesim.files import atomic_write_json, atomic_write_text
from edgesim.plan import LabPlan, NodePlan
from edgesim.routing.bird import render_announcements, render_config


@dataclass
class Announcements:
    """An edge's announcements: the prefixes, and whether the operator drained the edge (`edge down`)."""

    prefixes: list[str] = field(default_factory=list)
    drained: bool = False

    def effective(self) -> list[str]:
        """What the router should be learning from this edge right now."""
        return [] if self.drained else list(self.prefixes)


def _record(state_dir: Path, node: NodePlan) -> Path:
    assert node.bgp is not None and node.bgp.announcements is not None
    return (state_dir / node.bgp.announcements).with_suffix(".json")


def read(state_dir: Path, node: NodePlan) -> Announcements:
    """The edge's recorded announcements (its plan's anycast prefixes when nothing is recorded yet)."""
    try:
        return Announcements(**json.loads(_record(state_dir, node).read_text()))
    except (OSError, ValueError, TypeError):
        return Announcements(prefixes=list(node.anycast))


def write(state_dir: Path, node: NodePlan, record: Announcements) -> None:
    """Record the edge's announcements and write the include file BIRD reads (reconfigure to apply)."""
    assert node.bgp is not None and node.bgp.announcements is not None
    atomic_write_json(_record(state_dir, node), asdict(record))
    text = render_announcements(node.name, record.prefixes, record.drained)
    atomic_write_text(state_dir / node.bgp.announcements, text)


@contextlib.contextmanager
def locked(state_dir: Path, node: NodePlan) -> Iterator[None]:
    """Serialise read-modify-write of one edge's announcements (an agent and an operator may race)."""
    lock = _record(state_dir, node).with_suffix(".lock")
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def write_all(plan: LabPlan, state_dir: Path) -> list[Path]:
    """Write every node's BIRD config, and each edge's first announcements (its plan's anycast list)."""
    written = []
    for node in plan.nodes.values():
        if node.bgp is None:
            continue
        config = state_dir / node.bgp.config
        # BIRD may re-read the file at any moment (a restart by the supervisor): never let it see half a file.
        atomic_write_text(config, render_config(plan.lab, node))
        written.append(config)
        if node.bgp.announcements is not None:
            write(state_dir, node, Announcements(prefixes=list(node.anycast)))
    return written
