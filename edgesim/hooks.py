"""The life-cycle interface of a feature: what `up`, `down` and `status` call, and what they hand it.

A feature's `hooks` module (`edgesim/<feature>/hooks.py`) defines `HOOKS`, an instance of a FeatureHooks
subclass; `lab` walks every feature's HOOKS in registry order (edgesim.features) and never names one.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgesim.backends.base import Backend
from edgesim.features import parts
from edgesim.plan import LabPlan, NodePlan
from edgesim.state import LabState


@dataclass(frozen=True)
class LabContext:
    """What a hook may use: the lab's plan, the backend that built it, its state, and how long to wait."""

    plan: LabPlan
    backend: Backend
    state: LabState
    timeout_s: float


class FeatureHooks:
    """One feature's part in the lab's life cycle; every hook is optional (the base does nothing)."""

    # The progress line shown while `wait_ready` runs; None: the feature has nothing to wait for.
    waits_for: str | None = None

    def active(self, plan: LabPlan) -> bool:
        """Whether this lab uses the feature at all (its other hooks are called only then)."""
        return True

    def prepare(self, ctx: LabContext) -> None:
        """Nodes, links and bridges exist and are configured, no service runs yet: write what they read."""

    def after_services(self, ctx: LabContext, node: NodePlan) -> None:
        """Every service of `node` accepts connections (nodes come in plan order)."""

    def wait_ready(self, ctx: LabContext) -> None:
        """Block until the feature works lab-wide (routes learnt, tables agreed), or raise EdgesimError."""

    def teardown(self, lab: str) -> list[str]:
        """`down`: remove what the feature made outside the nodes and the state directory; say what went."""
        return []

    def status_lines(self, ctx: LabContext, node: NodePlan) -> list[str]:
        """What the feature does on `node` now, a few words each, for the status table."""
        return []


def active_hooks(plan: LabPlan) -> list[FeatureHooks]:
    """The hooks of every feature the lab uses, in registry order."""
    return [module.HOOKS for _, module in parts("hooks") if module.HOOKS.active(plan)]


def all_hooks() -> list[FeatureHooks]:
    """The hooks of every feature (for `down`, which may have no plan to ask)."""
    return [module.HOOKS for _, module in parts("hooks")]
