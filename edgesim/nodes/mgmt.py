"""The management node: runs the tenants' config store (etcd), linked to every edge; `up` seeds it."""

from __future__ import annotations

from edgesim.errors import EdgesimError, Problem
from edgesim.nodes.base import NodeRole
from edgesim.tenants.store import Store, StoreError


class Mgmt(NodeRole):
    """Holds etcd; its links to the edges are the management network the agents reach it over."""

    role = "mgmt"

    def started(self) -> None:
        """Seed the store with the topology's tenants, then mark it ready for the agents."""
        tenancy = self.plan.tenancy
        if tenancy is None:
            return
        try:
            Store(tenancy.store_url, netns=self.node.netns).seed(self.plan.tenants)
        except StoreError as err:
            raise EdgesimError(
                Problem(f"nodes.{self.node.name}", f"cannot seed the config store: {err}")
            ) from err

    def summary(self) -> str:
        """The store and where the edges reach it."""
        return "etcd (tenant config store) for " + ", ".join(i.peer_node for i in self.node.interfaces)
