"""Anycast by BGP, end to end: real BIRD daemons, BGP and BFD sessions, kernel routes and requests.

Each disruptive test breaks a different edge of the session lab and restores it before it ends, so the
other tests (and the ECMP spread test in test_lab_traffic.py, which runs on this BGP-built route) see a
whole lab. Times are CLOCK_MONOTONIC, shared by this process and the request stream inside client1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nftables
import pytest
from pyroute2 import IPRoute

from edgesim import namespaces, routing
from edgesim.errors import EdgesimError
from edgesim.lab import REPO_ROOT
from edgesim.plan import LabPlan
from edgesim.routing import announcements, kernel
from edgesim.routing.status import bgp_status
from edgesim.state import LabState
from edgesim.traffic.http_stream import StreamReport, parse
from tests.e2e.conftest import E2E_LAB

# The acceptance bound: a dead, silent or drained edge leaves the router's ECMP route within 1 s.
# BFD detects in 3 x 100 ms; the rest is slack for a shared 2-core machine.
BOUND_S = 1.0
# The supervisor restarts a dead BIRD after 1 s; BGP connects 1 s after start and BFD comes up within
# about a second more. 15 s is generous for a loaded machine.
RECOVERY_TIMEOUT_S = 15.0
POLL_S = 0.002
RATE = 200  # new connections per second in the request stream
BASELINE_S = 1.0  # stream time before a fault, to show the stream was running and clean
# A request's start time is taken just before its SYN leaves; on a busy machine the event loop can delay
# the SYN by some milliseconds, so a request started this much before the fault may still meet it.
START_SLACK_S = 0.1


def edge_gateway(lab: LabPlan, edge: str) -> str:
    return lab.nodes["router"].interface_to(edge).peer_address


def wait_for_hop(ipr: IPRoute, prefix: str, gateway: str, present: bool, timeout: float) -> float:
    """Poll the router's main table until `gateway` is (or is not) a next hop of `prefix`; return when."""
    deadline = time.monotonic() + timeout
    while True:
        route = kernel.routes(ipr).get(prefix)
        now = time.monotonic()
        there = route is not None and route.proto == kernel.PROTO_BIRD and gateway in route.gateways
        if there == present:
            return now
        assert now < deadline, (
            f"{gateway} still {'absent from' if present else 'in'} {prefix} after {timeout} s"
        )
        time.sleep(POLL_S)


@contextmanager
def request_stream(lab: LabPlan) -> Iterator[list[StreamReport]]:
    """A steady stream of new connections from client1 to the VIP; the report is filled in at the end."""
    argv = [sys.executable, "-m", "edgesim.traffic.http_stream", "--target", f"{lab.vips[0]}:80"]
    proc = namespaces.popen_in(
        lab.nodes["client1"].netns,
        [*argv, "--rate", str(RATE)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    result: list[StreamReport] = []
    try:
        time.sleep(BASELINE_S)
        yield result
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    result.append(parse(out))


@contextmanager
def silenced(netns: str, ifname: str) -> Iterator[None]:
    """Drop every packet the node sends or receives on `ifname` (nftables netdev hooks); no process dies."""
    rules = f"""
    table netdev edgesim_silence {{
      chain in {{ type filter hook ingress device "{ifname}" priority -500; policy drop; }}
      chain out {{ type filter hook egress device "{ifname}" priority -500; policy drop; }}
    }}"""
    _nft(netns, rules)
    try:
        yield
    finally:
        _nft(netns, "delete table netdev edgesim_silence")


def _nft(netns: str, command: str) -> None:
    with namespaces.inside(netns):
        nft = nftables.Nftables()
        rc, _, error = nft.cmd(command)
    assert rc == 0, error


def assert_errors_only_in(report: StreamReport, start: float, end: float) -> list[float]:
    """Every failed request started in [start - slack, end]; return their start times."""
    failed = [r.started for r in report.failed()]
    outside = [round(t - start, 3) for t in failed if not start - START_SLACK_S <= t <= end]
    assert outside == [], f"requests failed outside the failure window (s after the fault): {outside}"
    return failed


def report_line(what: str, **numbers: float) -> None:
    print(f"\n{what}: " + ", ".join(f"{k} {v:.3f}" for k, v in numbers.items()))


def test_router_learns_one_next_hop_per_edge_from_bgp(lab: LabPlan) -> None:
    edges = lab.nodes_with_role("edge")
    prefixes = {p for edge in edges for p in edge.anycast}
    assert prefixes == {"198.51.100.0/24"}
    with IPRoute(netns=lab.nodes["router"].netns) as ipr:
        table = kernel.routes(ipr)
    for prefix in prefixes:
        route = table[prefix]
        assert route.proto_name == "bird", f"{prefix} was installed by {route.proto_name}, not learnt by BGP"
        assert route.gateways == {edge_gateway(lab, e.name) for e in edges if prefix in e.anycast}
    report = bgp_status(E2E_LAB)
    assert [(s.edge, s.bgp_state, s.bfd_state, s.received) for s in report.sessions] == [
        (e.name, "Established", "Up", 1) for e in edges
    ]
    assert report.healthy, report.problems


def test_each_node_runs_its_own_bird_under_the_supervisor(lab: LabPlan) -> None:
    state = LabState(E2E_LAB)
    services = state.services()
    for node in lab.nodes.values():
        if node.role not in ("router", "edge"):
            assert node.bgp is None
            continue
        assert node.bgp is not None
        pid = services[f"{node.name}/bird"]["pid"]
        assert Path(f"/proc/{pid}/comm").read_text().strip() == "bird"
        assert os.readlink(f"/proc/{pid}/cwd") == str(state.dir)
        assert namespaces.pids_in([node.netns])[node.netns].count(pid) == 1
        assert (state.dir / node.bgp.socket).is_socket()
        assert int((state.dir / node.bgp.pidfile).read_text()) == pid
        assert (state.dir / node.bgp.config).read_text().startswith("# BIRD 2 configuration")


def test_sigkill_of_an_edge_bird_is_withdrawn_within_1s_and_recovers(lab: LabPlan) -> None:
    edge, prefix = "edge2", "198.51.100.0/24"
    gateway = edge_gateway(lab, edge)
    pid = LabState(E2E_LAB).services()[f"{edge}/bird"]["pid"]
    with IPRoute(netns=lab.nodes["router"].netns) as ipr, request_stream(lab) as result:
        wait_for_hop(ipr, prefix, gateway, present=True, timeout=1)
        failed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        gone_at = wait_for_hop(ipr, prefix, gateway, present=False, timeout=5)
        back_at = wait_for_hop(ipr, prefix, gateway, present=True, timeout=RECOVERY_TIMEOUT_S)
        time.sleep(0.5)
    (report,) = result
    detection = gone_at - failed_at
    errors = assert_errors_only_in(report, failed_at, gone_at)
    report_line(
        "SIGKILL of edge2's BIRD",
        detection_s=detection,
        recovery_s=back_at - failed_at,
        errors=len(errors),
        requests=len(report.requests),
    )
    assert detection < BOUND_S
    assert report.requests[0].started < failed_at - 0.5, "the stream was not running before the fault"
    new_pid = LabState(E2E_LAB).services()[f"{edge}/bird"]["pid"]
    assert new_pid not in (None, pid), "the supervisor must have restarted the edge's BIRD"
    assert report.served_by(edge, since=back_at + 0.05) > 0, "the edge must serve again after recovery"


def test_a_silent_edge_is_withdrawn_within_1s_and_returns(lab: LabPlan) -> None:
    edge, prefix = "edge3", "198.51.100.0/24"
    gateway = edge_gateway(lab, edge)
    node = lab.nodes[edge]
    with IPRoute(netns=lab.nodes["router"].netns) as ipr, request_stream(lab) as result:
        wait_for_hop(ipr, prefix, gateway, present=True, timeout=1)
        with silenced(node.netns, node.interface_to("router").name):
            failed_at = time.monotonic()
            gone_at = wait_for_hop(ipr, prefix, gateway, present=False, timeout=5)
            time.sleep(0.5)
        recovered_at = time.monotonic()
        back_at = wait_for_hop(ipr, prefix, gateway, present=True, timeout=RECOVERY_TIMEOUT_S)
        time.sleep(0.5)
    (report,) = result
    detection = gone_at - failed_at
    errors = assert_errors_only_in(report, failed_at, gone_at)
    window = max(errors) - failed_at if errors else 0.0
    report_line(
        "edge3 silent (nftables drop)",
        detection_s=detection,
        error_window_s=window,
        errors=len(errors),
        requests=len(report.requests),
        recovery_s=back_at - recovered_at,
    )
    assert detection < BOUND_S
    # A quarter of the requests of the window hashed to the silent edge: there must be some, or the
    # fault was not real.
    assert errors, "silencing an edge must cost the requests sent to it before it is withdrawn"
    assert window <= detection + 0.01
    assert report.served_by(edge, since=back_at + 0.05) > 0, "the edge must serve again after recovery"


def test_edge_down_withdraws_within_1s_and_no_new_flow_reaches_it(lab: LabPlan) -> None:
    edge, prefix = "edge4", "198.51.100.0/24"
    gateway = edge_gateway(lab, edge)
    with IPRoute(netns=lab.nodes["router"].netns) as ipr, request_stream(lab) as result:
        try:
            drained_at = time.monotonic()
            seconds = routing.edge_down(E2E_LAB, edge)
            gone_at = wait_for_hop(ipr, prefix, gateway, present=False, timeout=0)
            time.sleep(1.0)
            status = _cli("bgp", "status", "--json", "--lab", E2E_LAB)
        finally:
            undrained_at = time.monotonic()
            up = _cli_run("edge", "up", edge, "--lab", E2E_LAB)
        back_at = wait_for_hop(ipr, prefix, gateway, present=True, timeout=0)
        time.sleep(0.5)
    (report,) = result
    report_line(
        "invoke edge down edge4",
        withdrawal_s=seconds,
        errors=len(report.failed()),
        requests=len(report.requests),
    )
    assert up.returncode == 0, up.stdout
    assert gone_at - drained_at < BOUND_S
    assert report.served_by(edge, since=gone_at, until=undrained_at) == 0, (
        "a new flow reached the drained edge"
    )
    assert report.served_by(edge, since=back_at) > 0
    sessions = {s["edge"]: s for s in status["sessions"]}
    assert sessions[edge]["drained"] is True and sessions[edge]["bgp_state"] == "Established"
    (route,) = [r for r in status["routes"] if r["prefix"] == prefix]
    assert edge not in route["nexthops"] and len(route["nexthops"]) == 3


def test_announce_and_withdraw_at_run_time(lab: LabPlan) -> None:
    prefix = "203.0.113.16/28"  # a tenant-sized prefix, served by two edges only
    hops = {edge_gateway(lab, "edge1"), edge_gateway(lab, "edge2")}
    try:
        assert prefix in routing.announce(E2E_LAB, "edge1", [prefix])
        routing.announce(E2E_LAB, "edge2", [prefix])
        route = kernel.router_routes(lab)[prefix]
        assert (route.proto_name, route.gateways) == ("bird", hops)
    finally:
        routing.withdraw(E2E_LAB, "edge1", [prefix])
        routing.withdraw(E2E_LAB, "edge2", [prefix])
    assert prefix not in kernel.router_routes(lab)
    assert bgp_status(E2E_LAB).healthy


def test_an_edge_may_not_announce_a_prefix_the_pop_does_not_own(lab: LabPlan) -> None:
    state = LabState(E2E_LAB)
    before = announcements.read(state.dir, lab.nodes["edge1"])
    with pytest.raises(EdgesimError, match=r"198\.18\.0\.0/24: is not a prefix this PoP owns"):
        routing.announce(E2E_LAB, "edge1", ["198.18.0.0/24"])
    assert announcements.read(state.dir, lab.nodes["edge1"]) == before
    assert "198.18.0.0/24" not in (state.dir / "bird" / "edge1.announce.conf").read_text()


def _cli_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgesim", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _cli(*args: str) -> dict:
    result = _cli_run(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)
