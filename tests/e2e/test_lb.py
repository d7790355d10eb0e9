"""The L4 load balancer in the default lab: long-lived connections survive the router's ECMP changes,
drains let connections finish where they are, new connections follow the table, failing edges leave it."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter

import pytest

from edgesim import lab as lab_api
from edgesim.lb import control, health
from edgesim.mitigation import control as mitigation
from edgesim.plan import LabPlan
from edgesim.routing import control as routing
from edgesim.state import LabState
from edgesim.traffic.http_probe import probe_from_node
from edgesim.traffic.long_lived import Conn, LongLived
from tests.conftest import E2E_LAB

pytestmark = pytest.mark.root

TARGET = "198.51.100.10:80"
# With a request every INTERVAL_S per connection, a window this long holds at least one answer.
INTERVAL_S = 2.0
WINDOW_S = 2 * INTERVAL_S + 1.0


def forwarded() -> int:
    """Packets the edges forwarded to another edge so far (first and second hops)."""
    edges = control.status(E2E_LAB)["edges"].values()
    return sum(a["counters"]["forwarded"] + a["counters"]["chained"] for a in edges)


def broken(conns: list[Conn]) -> list[str]:
    """One line per connection that failed or was answered by more than one edge."""
    return [f"{c.source_port}: {c.error or c.edges}" for c in conns if c.error or len(c.edges) != 1]


def silent(conns: list[Conn], start: float, end: float) -> list[int | None]:
    """Connections with no answer in [start, end)."""
    return [c.source_port for c in conns if c.answered_between(start, end) == 0]


def established_on(plan: LabPlan, edge: str, client: str) -> int:
    """Connections from `client` that the edge holds now (sockets on the VIP)."""
    address = plan.nodes[client].interfaces[0].address.split("/")[0]
    argv = ["ss", "-Htn", "state", "established", "src", plan.vips[0], "dst", address]
    result = lab_api.exec_in(E2E_LAB, edge, argv, capture_output=True, text=True)
    return len(result.stdout.splitlines())


def test_thousand_connections_survive_edge_down_and_up(lab: LabPlan) -> None:
    clients = [LongLived(lab.nodes[c].netns, TARGET, 500, INTERVAL_S, 32.0) for c in ("client1", "client2")]
    try:
        for client in clients:
            client.wait_ready()
        before = forwarded()
        time.sleep(3)
        down_at = time.time()
        routing.edge_down(E2E_LAB, "edge1")
        time.sleep(10)
        up_at = time.time()
        routing.edge_up(E2E_LAB, "edge1")
        conns = [c for client in clients for c in client.report()]
    finally:
        for client in clients:
            client.kill()
        routing.edge_up(E2E_LAB, "edge1")  # idempotent: the lab is whole again for the next test
    assert len(conns) == 1000
    assert broken(conns) == [], "connections reset, stalled or moved"
    assert silent(conns, down_at + 1, down_at + 1 + WINDOW_S) == [], "stalled after edge down"
    assert silent(conns, up_at + 1, up_at + 1 + WINDOW_S) == [], "stalled after edge up"
    per_edge = Counter(c.edges[0] for c in conns)
    assert set(per_edge) == {"edge1", "edge2", "edge3", "edge4"}
    # The router moved a quarter of the flows each time: the LB must have carried them.
    assert forwarded() > before


def test_without_the_load_balancer_moved_connections_break(lab: LabPlan) -> None:
    control.set_enabled(E2E_LAB, False)
    client = LongLived(lab.nodes["client1"].netns, TARGET, 200, 1.0, 14.0)
    try:
        client.wait_ready()
        time.sleep(2)
        routing.edge_down(E2E_LAB, "edge1")
        conns = client.report()
    finally:
        client.kill()
        routing.edge_up(E2E_LAB, "edge1")
        control.set_enabled(E2E_LAB, True)
    on_edge1 = [c for c in conns if c.edges[:1] == ["edge1"]]
    failed = [c for c in on_edge1 if c.error]
    assert on_edge1, "no connection landed on edge1: the test would prove nothing"
    # Moved to an edge without their socket, their packets are dropped (no valid cookie): they stall.
    assert len(failed) == len(on_edge1), [c.error for c in on_edge1]
    # Hash-threshold ECMP moves some flows between the remaining edges too: those break as well.
    assert sum(c.error is not None for c in conns) >= len(on_edge1)


def test_new_connections_follow_the_table(lab: LabPlan) -> None:
    shares = control.status(E2E_LAB)["shares"]
    report = probe_from_node(E2E_LAB, "client1", TARGET, 1600, concurrency=200)
    assert [f.error for f in report.fetches if f.error] == []
    got = report.per_edge()
    for edge, share in shares.items():
        expected = share * 1600
        assert abs(got[edge] - expected) <= 0.15 * expected, (edge, got[edge], expected)


def test_drain_lets_connections_finish_and_sends_new_ones_elsewhere(lab: LabPlan) -> None:
    # From client2: client1's connections of the test without LB may linger half-open on the edges.
    client = LongLived(lab.nodes["client2"].netns, TARGET, 400, INTERVAL_S, 22.0)
    try:
        client.wait_ready()
        held = established_on(lab, "edge2", "client2")
        assert held > 50, "edge2 should hold about a quarter of the connections"
        result = control.drain(E2E_LAB, "edge2")
        shares = control.status(E2E_LAB)["shares"]
        assert shares["edge2"] == 0
        report = probe_from_node(E2E_LAB, "client1", TARGET, 1200, concurrency=200)
        conns = client.report()
        # The long-lived client closed its connections: the drained edge empties.
        deadline = time.monotonic() + 10
        while established_on(lab, "edge2", "client2") and time.monotonic() < deadline:
            time.sleep(0.2)
        left = established_on(lab, "edge2", "client2")
    finally:
        client.kill()
        if "edge2" in control.status(E2E_LAB)["state"].drained:
            control.undrain(E2E_LAB, "edge2")
    # The drain returned once every agent ran the new table (its time is a figure: bench/l4lb.py).
    assert {a["generation"] for a in result["edges"].values()} == {result["generation"]}, result
    assert broken(conns) == [], "existing connections must finish normally"
    assert sum(c.edges == ["edge2"] for c in conns) > 50
    assert [f.error for f in report.fetches if f.error] == []
    got = report.per_edge()
    assert got["edge2"] == 0, "a new connection landed on the drained edge"
    for edge in ("edge1", "edge3", "edge4"):
        assert abs(got[edge] - 400) <= 60, (edge, got[edge])
    assert left == 0


def test_a_port_without_syn_cookies_opens_new_connections_on_their_owner_after_a_drain(lab: LabPlan) -> None:
    # With XDP's SYN cookies, the handshake's ACK proves a new connection wherever it lands. Without them
    # (any balanced port no syn_cookie rule covers) the owner answers the SYN itself, and its ACK must stay
    # there (a request socket counts as the connection's) instead of going down the daisy chain to the
    # bucket's previous owner, the drained edge, which would reset it.
    cookies = mitigation.rules(E2E_LAB).find("vip-syn-cookies")
    assert cookies is not None
    mitigation.delete(E2E_LAB, "vip-syn-cookies")
    try:
        control.drain(E2E_LAB, "edge2")
        report = probe_from_node(E2E_LAB, "client1", TARGET, 800, concurrency=100)
    finally:
        if "edge2" in control.status(E2E_LAB)["state"].drained:
            control.undrain(E2E_LAB, "edge2")
        mitigation.add(E2E_LAB, cookies.rule)
    assert [f.error for f in report.fetches if f.error] == []
    assert report.per_edge()["edge2"] == 0, "a new connection landed on the drained edge"


def test_an_edge_that_stops_answering_leaves_the_table(lab: LabPlan) -> None:
    services = json.loads(LabState(E2E_LAB).services_file.read_text())
    pid = services["edge3/http"]["pid"]
    os.kill(pid, signal.SIGSTOP)
    stopped = time.time()
    try:
        # Read after the stop: every round counted from here on saw edge3 stopped, except at most the one
        # that was in flight when it stopped.
        rounds_at_stop = {edge: a["health_rounds"] for edge, a in control.status(E2E_LAB)["edges"].items()}
        while True:
            edges = control.status(E2E_LAB)["edges"]
            if all("edge3" in a["unhealthy"] for a in edges.values()):
                break
            assert time.time() - stopped < 10, [a["unhealthy"] for a in edges.values()]
            time.sleep(0.05)
        shares = [a["owners"]["edge3"] for a in edges.values()]
    finally:
        os.kill(pid, signal.SIGCONT)
    assert shares == [0, 0, 0, 0], "edge3 still owns buckets (gets new connections)"
    # Behaviour, not a timer: each agent took edge3 out at its FAILS_TO_DOWN-th failed check in a row.
    rounds_to_removal = {edge: a["health_round"] - rounds_at_stop[edge] for edge, a in edges.items()}
    assert all(n <= health.FAILS_TO_DOWN + 1 for n in rounds_to_removal.values()), rounds_to_removal
    # The time it took, from the agents' own clocks (the polling loop's round trips not included): a figure.
    removed_after = {edge: round(a["applied_at"] - stopped, 2) for edge, a in edges.items()}
    print(f"edge3 out of every table after {removed_after} s (bound {health.DETECTION_BOUND_S} s)")
    deadline = time.monotonic() + 10
    while any("edge3" in a["unhealthy"] for a in control.status(E2E_LAB)["edges"].values()):
        assert time.monotonic() < deadline, "edge3 did not come back after answering again"
        time.sleep(0.1)
