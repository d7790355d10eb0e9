"""Change and read a running lab's load balancer: the LB state file, then every edge agent applies it."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from edgesim import runtime
from edgesim.errors import EdgesimError, Problem
from edgesim.lb import store, table
from edgesim.lb.health import FAILS_TO_DOWN
from edgesim.lb.store import LbEdge, LbState
from edgesim.mitigation import store as mitigation_store
from edgesim.mitigation.agent import request
from edgesim.plan import LabPlan
from edgesim.state import changes_lab
from edgesim.waiting import wait_until


def initial_state(plan: LabPlan) -> LbState:
    """The LB state a lab starts with: every edge in the table, every VIP:port balanced."""
    if plan.backplane is None:
        return LbState(enabled=False)
    edges = [LbEdge(name=p.edge, address=p.address.split("/")[0], mac=p.mac) for p in plan.backplane.ports]
    # The VIP:ports the edges serve are the HTTP service's listens on VIPs (not its backplane address).
    first = plan.nodes[plan.backplane.ports[0].edge]
    listens = [
        listen.rsplit(":", 1) for svc in first.services if svc.name == "http" for listen in svc.listens
    ]
    vips = [(host, int(port)) for host, port in listens if host in plan.vips]
    return LbState(enabled=True, edges=edges, vips=vips)


def write_initial(plan: LabPlan) -> None:
    """Write the lab's starting LB state, before the agents start."""
    store.write(store.state_path(plan.lab), initial_state(plan))


def _state(lab: str) -> LbState:
    plan = runtime.running_plan(lab)
    if plan.backplane is None:
        raise EdgesimError(
            Problem(
                f"lab {lab}", "has no L4 load balancer", "it needs two edges and room for a backplane /24"
            )
        )
    return store.read(store.state_path(lab))


def _each_edge(lab: str, op: str) -> dict[str, dict[str, Any]]:
    names = _state(lab).names()
    # In parallel: a change reaches every edge within one round trip rather than one per edge.
    with ThreadPoolExecutor(max_workers=len(names) or 1) as pool:
        answers = pool.map(lambda e: request(mitigation_store.agent_socket(lab, e), op, timeout=15.0), names)
        return dict(zip(names, answers, strict=True))


def _change(lab: str, state: LbState) -> dict[str, Any]:
    """Store a new state and make every agent apply it; returns the seconds until all had."""
    started = time.monotonic()
    state = state.model_copy(update={"generation": state.generation + 1})
    store.write(store.state_path(lab), state)
    answers = _each_edge(lab, "lb-reload")
    return {"seconds": time.monotonic() - started, "generation": state.generation, "edges": answers}


def _check_edge(state: LbState, edge: str) -> None:
    if edge not in state.names():
        raise EdgesimError(
            Problem("EDGE", f"{edge!r} is not an edge of this lab", f"edges: {', '.join(state.names())}")
        )


@changes_lab
def drain(lab: str, edge: str) -> dict[str, Any]:
    """Give `edge` no new connections; its open ones keep reaching it (daisy chain) until they close."""
    state = _state(lab)
    _check_edge(state, edge)
    if edge in state.drained:
        raise EdgesimError(Problem("EDGE", f"{edge} is already drained", f"`invoke lb undrain {edge}`"))
    if len(state.drained) + 1 >= len(state.edges):
        raise EdgesimError(Problem("EDGE", f"draining {edge} would leave no edge to take new connections"))
    return _change(lab, state.model_copy(update={"drained": [*state.drained, edge]}))


@changes_lab
def undrain(lab: str, edge: str) -> dict[str, Any]:
    """Give `edge` its share of new connections again; connections opened meanwhile stay where they are."""
    state = _state(lab)
    _check_edge(state, edge)
    if edge not in state.drained:
        raise EdgesimError(
            Problem("EDGE", f"{edge} is not drained", "`invoke lb status` shows the drained edges")
        )
    remaining = [e for e in state.drained if e != edge]
    return _change(lab, state.model_copy(update={"drained": remaining}))


@changes_lab
def balance_port(lab: str, vip: str, port: int) -> dict[str, Any]:
    """Balance one more TCP port of a VIP (e.g. a benchmark's own server); the lab's services stay."""
    state = _state(lab)
    if vip not in {v for v, _ in state.vips}:
        known = ", ".join(sorted({v for v, _ in state.vips})) or "none"
        raise EdgesimError(Problem("VIP", f"{vip} is not a VIP the load balancer serves", f"VIPs: {known}"))
    if (vip, port) in state.vips:
        return {"seconds": 0.0, "generation": state.generation, "edges": {}}
    return _change(lab, state.model_copy(update={"vips": [*state.vips, (vip, port)]}))


@changes_lab
def set_enabled(lab: str, enabled: bool) -> dict[str, Any]:
    """Switch the LB on or off on every edge (off: every packet is handled where the router sent it)."""
    return _change(lab, _state(lab).model_copy(update={"enabled": enabled}))


def status(lab: str) -> dict[str, Any]:
    """The state, each edge's planned share, and what each agent applied with its counters."""
    state = _state(lab)
    return {"state": state, "shares": table.shares(state), "edges": _each_edge(lab, "lb-stats")}


def _views(answers: dict[str, dict[str, Any]]) -> str:
    """Which edges each edge's agent holds unhealthy, and which edges the lab's checker never heard."""
    views = {edge: a.get("unhealthy") for edge, a in answers.items()}
    unanswered = sorted({name for a in answers.values() for name in a.get("health_unanswered", [])})
    return f"{views}; never answered a health check: {unanswered or 'none'}"


def wait_converged(lab: str, timeout: float) -> None:
    """Wait until every edge's agent runs the same table generation with no edge marked failing.

    At start the agents come up one by one; until the lab's checker has heard every edge answer and every
    agent applied the same verdicts, a new connection can be handed to an edge that then refuses it.
    """

    def agreed(answers: dict[str, dict[str, Any]]) -> bool:
        generations = {a.get("generation") for a in answers.values()}
        # "No edge failing" means something only once the checker heard every edge and then checked a few
        # rounds: an edge counts as failing only after it answered once (edgesim.lb.health).
        checked = all(
            a.get("health_rounds", 0) >= FAILS_TO_DOWN and not a.get("health_unanswered")
            for a in answers.values()
        )
        return checked and len(generations) == 1 and not any(a.get("unhealthy") for a in answers.values())

    wait_until(
        # The summary, not the stats: reading back 131,074 buckets from 64 agents a few times a second
        # would keep the machine busy enough to delay the health checks it waits for.
        lambda: _each_edge(lab, "lb-summary"),
        agreed,
        timeout=timeout,
        interval=0.2,
        failure=lambda answers: Problem(
            f"lab {lab}",
            f"the edges' load balancers did not agree within {timeout:g} s: {_views(answers)}",
            "`invoke lb status` shows each edge's view; the agents log to logs/<edge>-xdp.log",
        ),
    )
