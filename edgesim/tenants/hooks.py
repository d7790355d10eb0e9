"""Tenants in the lab's life cycle: the config store is seeded with the topology's tenants once it runs."""

from __future__ import annotations

from edgesim.errors import EdgesimError, Problem
from edgesim.hooks import FeatureHooks, LabContext
from edgesim.plan import LabPlan, NodePlan
from edgesim.tenants.store import Store, StoreError


class TenantHooks(FeatureHooks):
    """Active in labs with a `tenants:` section."""

    def active(self, plan: LabPlan) -> bool:
        """Only with tenants."""
        return plan.tenancy is not None

    def after_services(self, ctx: LabContext, node: NodePlan) -> None:
        """Seed the store as soon as etcd runs: the edges' agents report ready only once they applied it."""
        tenancy = ctx.plan.tenancy
        if tenancy is None or node.name != tenancy.store_node:
            return
        try:
            Store(tenancy.store_url, netns=node.netns).seed(ctx.plan.tenants)
        except StoreError as err:
            raise EdgesimError(Problem(f"nodes.{node.name}", f"cannot seed the config store: {err}")) from err


HOOKS = TenantHooks()
