"""The interface every backend implements: it owns every node, link and bridge it creates, and every
command run in a node. Roles, hooks and services reach a node only through it, so the same role code runs
on any backend.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from pyroute2 import IPRoute

from edgesim.plan import BackplanePlan, LabPlan, LinkPlan, NodePlan


class Backend(Protocol):
    """Creates and destroys nodes, links and bridges; enters nodes and runs commands in them."""

    name: str

    def create_node(self, node: NodePlan) -> None:
        """Make the node exist, its loopback up (idempotent)."""

    def create_link(self, plan: LabPlan, link: LinkPlan) -> None:
        """Make the link exist between two existing nodes (idempotent)."""

    def create_bridge(self, plan: LabPlan, bridge: BackplanePlan) -> None:
        """Make a shared segment exist with an addressed port into each of its nodes (idempotent)."""

    def node_exists(self, node: NodePlan) -> bool:
        """Whether the node exists now."""

    def netlink(self, node: NodePlan) -> IPRoute:
        """An rtnetlink socket inside the node (use it as a context manager)."""

    def enter(self, node: NodePlan) -> AbstractContextManager[None]:
        """Run the block with the calling thread inside the node's network (sockets stay there)."""

    def run(self, node: NodePlan, argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess:
        """Run a command in the node and wait for it."""

    def popen(self, node: NodePlan, argv: Sequence[str], **kwargs: object) -> subprocess.Popen:
        """Start a command in the node."""

    def destroy(self, lab: str, prefix: str) -> list[str]:
        """Remove every node of the lab (by name prefix, so a crashed `up` is cleanable); return what went."""
