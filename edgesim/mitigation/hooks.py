"""DoS mitigation in the lab's life cycle: the rule set the agents load, and the XDP program on each edge."""

from __future__ import annotations

from edgesim.bpf import loader
from edgesim.hooks import FeatureHooks, LabContext
from edgesim.mitigation import store
from edgesim.plan import NodePlan


class MitigationHooks(FeatureHooks):
    """Every lab has it: each edge's uplink runs the XDP chain, with no rules when the topology gives none."""

    def prepare(self, ctx: LabContext) -> None:
        """Write the rule set the edge agents load when the supervisor starts them."""
        store.write(store.rules_path(ctx.plan.lab), ctx.plan.mitigation)

    def status_lines(self, ctx: LabContext, node: NodePlan) -> list[str]:
        """An edge: the XDP program on its uplink and its mode, or that there is none."""
        if node.role != "edge" or node.uplink is None:
            return []
        xdp = loader.xdp_info(node.netns, node.uplink) if ctx.backend.node_exists(node) else None
        if xdp is None:
            return [f"[red]no XDP on {node.uplink}[/]"]
        return [f"XDP {xdp['mode']} prog {xdp['prog_id']} on {node.uplink}"]


HOOKS = MitigationHooks()
