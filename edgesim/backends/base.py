"""The interface every backend implements."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from typing import Protocol

from edgesim.plan import LabPlan, LinkPlan, NodePlan


class Backend(Protocol):
    """Creates and destroys nodes and links, and runs commands in nodes."""

    name: str

    def create_node(self, node: NodePlan) -> None:
        """Make the node exist (idempotent)."""

    def create_link(self, plan: LabPlan, link: LinkPlan) -> None:
        """Make the link exist between two existing nodes (idempotent)."""

    def node_exists(self, node: NodePlan) -> bool:
        """Whether the node exists now."""

    def run(self, node: NodePlan, argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess:
        """Run a command in the node and wait for it."""

    def popen(self, node: NodePlan, argv: Sequence[str], **kwargs: object) -> subprocess.Popen:
        """Start a command in the node."""

    def destroy(self, lab: str, prefix: str) -> list[str]:
        """Remove every node of the lab (by name prefix, so a crashed `up` is cleanable); return what went."""
