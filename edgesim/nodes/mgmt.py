"""The management node: runs the tenants' config store (etcd), linked to every edge."""

from __future__ import annotations

from edgesim.nodes.base import NodeRole


class Mgmt(NodeRole):
    """Holds etcd; its links to the edges are the management network the agents reach it over."""

    role = "mgmt"

    def summary_parts(self) -> list[str]:
        """The store and where the edges reach it."""
        return ["etcd (tenant config store) for " + ", ".join(i.peer_node for i in self.node.interfaces)]
