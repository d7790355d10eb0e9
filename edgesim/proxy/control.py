"""Read a running lab's TCP proxies: per edge, connections, bytes copied in user space, bytes spliced."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from edgesim import agentsocket, runtime
from edgesim.errors import EdgesimError, Problem
from edgesim.plan.naming import proxy_socket


def proxy_edges(lab: str) -> list[str]:
    """The edges that run the TCP proxy, or an error saying the lab has none."""
    plan = runtime.running_plan(lab)
    edges = [e.name for e in plan.nodes_with_role("edge") if any(s.name == "proxy" for s in e.services)]
    if not edges:
        hint = "add a `proxy:` section to its topology"
        raise EdgesimError(Problem(f"lab {lab}", "has no TCP proxy", hint))
    return edges


def stats(lab: str) -> dict[str, dict[str, Any]]:
    """Per edge: the proxy's `stats` answer (splice state, connections, copied bytes, kernel counters)."""
    root, edges = runtime.state_dir(lab), proxy_edges(lab)

    def ask(edge: str) -> dict[str, Any]:
        return agentsocket.request(root / proxy_socket(edge), "TCP proxy", "is the lab up?", "stats")

    with ThreadPoolExecutor(max_workers=len(edges)) as pool:
        return dict(zip(edges, pool.map(ask, edges), strict=True))
