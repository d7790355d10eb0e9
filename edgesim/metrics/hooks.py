"""Metrics in the lab's life cycle: Prometheus's configuration, the UI relay's address, and `down`
making sure the relay (a host process) is gone."""

from __future__ import annotations

import json
from pathlib import Path

from edgesim import namespaces
from edgesim.errors import Problem
from edgesim.files import atomic_write_text
from edgesim.hooks import FeatureHooks, LabContext
from edgesim.metrics import promconfig
from edgesim.metrics.planner import RELAY_MODULE, UI_RECORD
from edgesim.plan import LabPlan, NodePlan
from edgesim.state import LabState
from edgesim.waiting import wait_until


def ui_address(state_dir: Path) -> str | None:
    """The host address the lab's UI relay listens on, once it does."""
    try:
        return str(json.loads((state_dir / UI_RECORD).read_text())["address"])
    except (OSError, ValueError, KeyError):
        return None


class MetricsHooks(FeatureHooks):
    """Labs with a management node: Prometheus runs there, the relay on the host's loopback."""

    waits_for = "metrics UI relay"

    def active(self, plan: LabPlan) -> bool:
        """Only labs that planned a Prometheus (they have a management network)."""
        return plan.metrics is not None

    def prepare(self, ctx: LabContext) -> None:
        """Write prometheus.yml and make its data directory (Prometheus starts with the supervisor)."""
        metrics = ctx.plan.metrics
        assert metrics is not None
        (ctx.state.dir / metrics.data).mkdir(parents=True, exist_ok=True)
        atomic_write_text(ctx.state.dir / metrics.config, promconfig.render(metrics))

    def wait_ready(self, ctx: LabContext) -> None:
        """The relay has recorded its address (Prometheus itself is a service `up` waits for)."""
        wait_until(
            lambda: ui_address(ctx.state.dir),
            lambda address: address is not None,
            timeout=ctx.timeout_s,
            interval=0.05,
            failure=lambda _: Problem(
                "host/ui-relay", "did not record its address", f"see {ctx.state.logs}/host-ui-relay.log"
            ),
        )

    def teardown(self, lab: str) -> list[str]:
        """The relay dies with the supervisor; should it not have, end it here (by its recorded pid)."""
        state = LabState(lab)
        try:
            pid = int(json.loads((state.dir / UI_RECORD).read_text())["pid"])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, KeyError):
            return []
        if RELAY_MODULE.encode() not in cmdline or lab.encode() not in cmdline.split(b"\0"):
            return []
        namespaces.kill_pids([pid], grace_s=2.0)
        return [f"UI relay (pid {pid})"]

    def status_lines(self, ctx: LabContext, node: NodePlan) -> list[str]:
        """The management node: Prometheus and where its UI is reachable from the host."""
        metrics = ctx.plan.metrics
        if metrics is None or node.name != metrics.node:
            return []
        return [f"Prometheus {metrics.listen}, UI {ui_address(ctx.state.dir) or 'not relayed'}"]


HOOKS = MetricsHooks()
