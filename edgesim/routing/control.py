"""Change what an edge announces at run time: announce and withdraw prefixes, drain and undrain the edge."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Network
from pathlib import Path

from edgesim import runtime
from edgesim.errors import EdgesimError, Problem
from edgesim.plan import LabPlan, NodePlan
from edgesim.routing import announcements, birdc, kernel
from edgesim.routing.announcements import Announcements
from edgesim.state import changes_lab

# How long `edge down|up` waits for the router's kernel route to follow (BGP updates take milliseconds).
FOLLOW_TIMEOUT_S = 5.0


def announce(lab: str, edge: str, prefixes: list[str]) -> list[str]:
    """Make `edge` announce `prefixes` too (e.g. a tenant's prefix its agent applied); return them all.

    Returns once the router's kernel routes use the edge for them (unless the edge is drained).
    """
    wanted = _owned_prefixes(_edge(lab, edge)[2], prefixes)
    record = _change(
        lab, edge, lambda r: replace(r, prefixes=r.prefixes + [p for p in wanted if p not in r.prefixes])
    )
    return record.prefixes


def withdraw(lab: str, edge: str, prefixes: list[str]) -> list[str]:
    """Stop `edge` announcing `prefixes`; return what it still announces, once the router has followed."""
    gone = set(_owned_prefixes(_edge(lab, edge)[2], prefixes))
    record = _change(lab, edge, lambda r: replace(r, prefixes=[p for p in r.prefixes if p not in gone]))
    return record.prefixes


def edge_down(lab: str, edge: str) -> float:
    """Drain `edge` at the routing layer: withdraw everything it announces, wait until the router follows.

    Returns the seconds from the start of the call until the router's kernel routes no longer use the edge.
    """
    started = time.monotonic()
    _change(lab, edge, lambda r: replace(r, drained=True))
    return time.monotonic() - started


def edge_up(lab: str, edge: str) -> float:
    """Announce the drained `edge`'s prefixes again; return the seconds until the router uses it again."""
    started = time.monotonic()
    _change(lab, edge, lambda r: replace(r, drained=False))
    return time.monotonic() - started


@changes_lab
def _change(lab: str, edge: str, update: Callable[[Announcements], Announcements]) -> Announcements:
    """Update the edge's announcements, reconfigure its BIRD, and wait until the router's routes follow."""
    plan, state_dir, node = _edge(lab, edge)
    with announcements.locked(state_dir, node):
        before = announcements.read(state_dir, node)
        after = update(before)
        announcements.write(state_dir, node, after)
        birdc.configure(state_dir, node)
    # Only this edge's next hop is checked: an unrelated dead edge must not fail an operator's drain.
    looked_at = set(before.prefixes) | set(after.prefixes)
    kernel.wait_edge(plan, edge, set(after.effective()), looked_at, FOLLOW_TIMEOUT_S)
    return after


def _edge(lab: str, edge: str) -> tuple[LabPlan, Path, NodePlan]:
    """The running lab's plan, state directory and edge node, or a clear error."""
    plan = runtime.running_plan(lab)
    if plan.routing != "bgp":
        raise EdgesimError(
            Problem(
                f"lab {lab}",
                f"uses `routing: {plan.routing}`, so no edge announces anything",
                "set `routing: bgp` in the topology and rebuild the lab",
            )
        )
    node = plan.nodes.get(edge)
    if node is None or node.role != "edge" or node.bgp is None:
        edges = ", ".join(n.name for n in plan.nodes_with_role("edge"))
        raise EdgesimError(Problem(f"edge {edge}", f"is not an edge of lab {lab}", f"edges: {edges}"))
    return plan, runtime.state_dir(lab), node


def _owned_prefixes(node: NodePlan, prefixes: list[str]) -> list[str]:
    """The prefixes as CIDRs, refusing any outside the PoP's anycast pools (never handed to BIRD)."""
    assert node.bgp is not None
    owned = [IPv4Network(p) for p in node.bgp.owned]
    problems, cidrs = [], []
    for text in prefixes:
        try:
            prefix = IPv4Network(text)
        except ValueError as err:
            problems.append(
                Problem(f"prefix {text}", f"is not an IPv4 network: {err}", "e.g. 203.0.113.0/28")
            )
            continue
        if not any(prefix.subnet_of(pool) for pool in owned):
            problems.append(
                Problem(
                    f"prefix {prefix}",
                    f"is not a prefix this PoP owns, so {node.name} may not announce it",
                    f"announce only inside {', '.join(node.bgp.owned)}",
                )
            )
        cidrs.append(str(prefix))
    if problems:
        raise EdgesimError(problems)
    return cidrs
