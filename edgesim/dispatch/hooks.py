"""Socket dispatch in the lab's life cycle: the bindings table the agents load, the planned sockets
registered once their services listen, and each edge's per-label counters for `status`."""

from __future__ import annotations

from edgesim.dispatch import control, store
from edgesim.errors import EdgesimError, Problem
from edgesim.hooks import FeatureHooks, LabContext
from edgesim.plan import LabPlan, NodePlan


class DispatchHooks(FeatureHooks):
    """Labs with a `dispatch:` section."""

    def active(self, plan: LabPlan) -> bool:
        """Only labs whose topology has a `dispatch:` section."""
        return plan.dispatch is not None

    def prepare(self, ctx: LabContext) -> None:
        """Write the bindings table the dispatch agents load when the supervisor starts them."""
        assert ctx.plan.dispatch is not None
        store.write(ctx.state.dir / ctx.plan.dispatch.table_file, ctx.plan.dispatch.table)

    def after_services(self, ctx: LabContext, node: NodePlan) -> None:
        """An edge's services all listen: have its agent register their sockets now, and check it did."""
        dispatch = ctx.plan.dispatch
        if dispatch is None or node.name not in dispatch.sockets:
            return
        path = ctx.state.dir / dispatch.sockets[node.name]
        # The agent may still be busy loading (a slow guest): give it the lab's ready time, not 5 s.
        control.request(path, "reload", timeout=ctx.timeout_s)
        labels = control.request(path, "stats", timeout=ctx.timeout_s)["labels"]
        missing = [
            Problem(f"nodes.{node.name}", f"label {r.label}: {labels[r.label]['problem']}")
            for r in dispatch.table.registrations
            if not labels.get(r.label, {}).get("registered")
        ]
        if missing:
            raise EdgesimError(missing)

    def status_lines(self, ctx: LabContext, node: NodePlan) -> list[str]:
        """An edge: per label, lookups and drops, and whether a socket is registered."""
        dispatch = ctx.plan.dispatch
        if dispatch is None or node.name not in dispatch.sockets:
            return []
        try:
            stats = control.request(ctx.state.dir / dispatch.sockets[node.name], "stats")
        except EdgesimError:
            return ["[red]dispatch agent not answering[/]"]
        parts = [
            f"{label} {c['lookups']} lookups, {c['drops']} drops{'' if c['registered'] else ' (no socket)'}"
            for label, c in stats["labels"].items()
        ]
        return [f"sk_lookup: {'; '.join(parts) or 'no labels'}"]


HOOKS = DispatchHooks()
