"""Tenants in the lab's life cycle: the config store is seeded with the topology's tenants once it runs."""

from __future__ import annotations

from edgesim.errors import Problem
from edgesim.hooks import FeatureHooks, LabContext
from edgesim.plan import LabPlan, NodePlan
from edgesim.tenants.store import Store, StoreError
from edgesim.waiting import wait_until

# etcd's first write can take seconds where the machine is slow (a guest under software emulation: 2 s
# timed out there); the seed is one transaction of the same values, so trying it again is harmless.
SEED_REQUEST_TIMEOUT_S = 10.0


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
        store = Store(tenancy.store_url, timeout=SEED_REQUEST_TIMEOUT_S, netns=node.netns)
        errors: list[StoreError] = []

        def seeded() -> bool:
            try:
                store.seed(ctx.plan.tenants)
            except StoreError as err:
                errors.append(err)
                return False
            return True

        wait_until(
            seeded,
            timeout=ctx.timeout_s,
            interval=1.0,
            failure=lambda _: Problem(f"nodes.{node.name}", f"cannot seed the config store: {errors[-1]}"),
        )


HOOKS = TenantHooks()
