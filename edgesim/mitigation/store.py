"""Where a running lab keeps its rule set (the source of truth the edge agents load), and their sockets."""

from __future__ import annotations

from pathlib import Path

from edgesim.files import atomic_write_text
from edgesim.mitigation.rules import RuleSet
from edgesim.paths import lab_dir
from edgesim.plan.naming import RULES_FILE, xdp_agent_socket


def rules_path(lab: str) -> Path:
    """The lab's rule set, written by `up` and `invoke mitigate`, read by every edge agent."""
    return lab_dir(lab) / RULES_FILE


def agent_socket(lab: str, node: str) -> Path:
    """The control socket of a node's XDP agent."""
    return lab_dir(lab) / xdp_agent_socket(node)


def read(path: Path) -> RuleSet:
    """The rule set stored at `path` (empty when there is none)."""
    try:
        return RuleSet.model_validate_json(path.read_text())
    except FileNotFoundError:
        return RuleSet()


def write(path: Path, rule_set: RuleSet) -> None:
    """Replace the stored rule set atomically, so an agent never reads half a file."""
    atomic_write_text(path, rule_set.model_dump_json(indent=2) + "\n")
