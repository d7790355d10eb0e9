"""An edge node: the anycast VIPs on its loopback and the HTTP service answering on them.

What else runs on an edge (XDP chain, BIRD, tenant agent, proxy) is the features' and their status lines.
"""

from __future__ import annotations

from edgesim.nodes.base import NodeRole


class Edge(NodeRole):
    """Terminates the anycast VIPs; the features add XDP programs, BGP and tenant namespaces."""

    role = "edge"
