"""Crashes. A lab whose `up` dies half-way (SIGKILL, Ctrl-C) is always cleanable: `down` leaves nothing
behind. And chaos in the running session lab: under a steady request stream, SIGKILL of each kind of
supervised process (BIRD, XDP agent, tenant agent, TCP proxy, etcd) and of the supervisor itself; the
requests fail only while the process is down and within a bound, and the lab recovers by itself (the
supervisor by `up`, which starts a new one that takes over the running services)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgesim import lab as lab_api
from edgesim import namespaces
from edgesim.lab import REPO_ROOT
from edgesim.plan import LabPlan
from edgesim.state import LabState
from edgesim.tenants import admin
from edgesim.traffic.http_stream import StreamReport
from tests.conftest import CRASH_LAB, leftovers, require_root
from tests.e2e.conftest import E2E_LAB
from tests.e2e.test_bgp import report_line, request_stream

# The largest shipped topology, so that `up` runs long enough to be interrupted at each stage.
TOPOLOGY = REPO_ROOT / "topology" / "scale.yml"


HOST_SERVICE_PREFIX = "host/"  # the supervisor's key for a service it runs in the root namespace


def edgesim(*args: str, **kwargs: object) -> subprocess.Popen:
    """Start the edgesim CLI as a separate process, as a user would."""
    return subprocess.Popen(
        [sys.executable, "-m", "edgesim", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def _some_namespaces() -> bool:
    return len(namespaces.list_with_prefix(f"{CRASH_LAB}-")) >= 3


def _supervisor_started() -> bool:
    return LabState(CRASH_LAB).supervisor_pidfile.exists()


def _wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "up never reached the stage to interrupt"
        time.sleep(0.002)


@pytest.fixture
def clean_crash_lab():
    require_root()
    subprocess.run(
        [sys.executable, "-m", "edgesim", "down", "--lab", CRASH_LAB],
        cwd=REPO_ROOT,
        capture_output=True,
        check=False,
    )
    yield
    subprocess.run(
        [sys.executable, "-m", "edgesim", "down", "--lab", CRASH_LAB],
        cwd=REPO_ROOT,
        capture_output=True,
        check=False,
    )


@pytest.mark.parametrize("stage", [_some_namespaces, _supervisor_started], ids=["namespaces", "services"])
def test_down_cleans_an_up_killed_with_sigkill(clean_crash_lab, stage: Callable[[], bool]) -> None:
    up = edgesim("up", "--skip-setup", "--topology", str(TOPOLOGY), "--lab", CRASH_LAB)
    _wait_for(stage)
    up.send_signal(signal.SIGKILL)
    up.wait(timeout=10)
    recorded = LabState(CRASH_LAB).read()
    assert recorded is not None and recorded["phase"] == "creating", "up must have died mid-way"
    assert leftovers(CRASH_LAB), "a killed up leaves objects for down to find"

    down = edgesim("down", "--lab", CRASH_LAB)
    output, _ = down.communicate(timeout=60)
    assert down.returncode == 0, output
    assert leftovers(CRASH_LAB) == []
    assert not Path(f"/run/netns/{CRASH_LAB}-router").exists()


def test_ctrl_c_during_up_cleans_up_by_itself(clean_crash_lab) -> None:
    up = edgesim("up", "--skip-setup", "--topology", str(TOPOLOGY), "--lab", CRASH_LAB)
    _wait_for(_some_namespaces)
    up.send_signal(signal.SIGINT)
    output, _ = up.communicate(timeout=60)
    assert up.returncode != 0, output
    assert "interrupted" in output
    assert leftovers(CRASH_LAB) == []


def test_down_is_idempotent(clean_crash_lab) -> None:
    first = edgesim("down", "--lab", CRASH_LAB)
    output, _ = first.communicate(timeout=60)
    assert first.returncode == 0
    assert "nothing to remove" in output


# Chaos. Requests per second of the stream during each kill: enough to see a gap of 0.1 s, light enough
# for a shared 2-core machine. A request fails after 0.8 s without an answer (http_stream's timeout).
CHAOS_RATE = 100
REQUEST_TIMEOUT_S = 0.8
RECOVERY_TIMEOUT_S = 60.0
AFTER_S = 1.0  # the stream keeps running this long after recovery, to show it is clean again
# More baseline than request_stream's own second: its process starts slowly on a loaded machine.
BEFORE_S = 1.0
# Failures allowed outside the outage: on a shared, loaded 2-core machine the proxy path was seen to reset
# 2 of ~400 connections with nothing killed. Inside the outage the bound below applies.
NOISE = 2


@dataclass(frozen=True)
class Victim:
    """One kind of supervised process: which one is killed, the traffic that would notice, and how much."""

    kind: str
    key: str  # node/service, as the supervisor records it
    target: str  # the stream's host:port ("vip" for the lab's VIP on port 80)
    # The share of the stream that meets the process while it is down (0: nothing should notice).
    share: float
    protocol: str = "http"  # the stream's requests: GET /, or a line the origin echoes back


VICTIMS = [
    # Its BGP connection closes, the router rehashes flows at once; the LB keeps them at their owners.
    Victim("bird", "edge2/bird", "vip", 0.0),
    # The XDP programs stay attached, but the chain's tail call to the LB goes with the agent's maps until
    # the new agent attaches: flows that arrive at edge1 and belong to another edge meet edge1's stack.
    Victim("xdp agent", "edge1/xdp", "vip", 0.25),
    # The GRE programs and nftables stay in the kernel; only the reconciliation stops for a while.
    Victim("tenant agent", "edge3/tenants", "203.0.113.100:80", 0.0),
    # Port 8080 is not balanced: the router's share of flows to edge4 has no listener until the restart.
    Victim("proxy", "edge4/proxy", "vip:8080", 0.25, "echo"),
    # The agents keep applying the config they have; tenant traffic never asks the store.
    Victim("etcd", "mgmt/etcd", "203.0.113.100:80", 0.0),
]


def _target(lab: LabPlan, target: str) -> str:
    return (
        target.replace("vip", lab.vips[0])
        if target.startswith("vip:")
        else target.replace("vip", f"{lab.vips[0]}:80")
    )


def _pid(key: str) -> int | None:
    pid = LabState(E2E_LAB).services().get(key, {}).get("pid")
    return pid if pid and namespaces.process_alive(pid) else None


def _until(condition: Callable[[], bool], what: str, timeout: float = RECOVERY_TIMEOUT_S) -> float:
    """Wait for condition; the monotonic time it first held."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout:.0f} s"
        time.sleep(0.02)
    return time.monotonic()


def _check_window(report: StreamReport, killed: float, recovered: float, victim: Victim) -> int:
    """Every failed request was sent while the process was down; their number is within the bound."""
    failed = report.failed()
    outside = [
        round(r.started - killed, 3) for r in failed if not killed - 0.1 <= r.started <= recovered + 0.1
    ]
    assert len(outside) <= NOISE, (
        f"{victim.kind}: requests failed outside the outage (s after the kill): {outside}"
    )
    inside = len(failed) - len(outside)
    bound = victim.share * CHAOS_RATE * (recovered - killed + REQUEST_TIMEOUT_S) * 1.5 + 3
    assert inside <= bound, f"{victim.kind}: {inside} failed requests in the outage, bound {bound:.0f}"
    return inside


@pytest.mark.parametrize("victim", VICTIMS, ids=[v.kind for v in VICTIMS])
def test_chaos_sigkill_of_a_supervised_process(lab: LabPlan, victim: Victim) -> None:
    pid = _pid(victim.key)
    assert pid is not None, f"{victim.key} is not running"
    with request_stream(lab, _target(lab, victim.target), CHAOS_RATE, victim.protocol) as result:
        time.sleep(BEFORE_S)
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        restarted = _until(lambda: _pid(victim.key) not in (None, pid), f"{victim.key} restarted")
        lab_api.wait_ready(E2E_LAB)
        if victim.kind == "etcd":
            _until(
                lambda: all(
                    s.get("store", {}).get("reachable") for s in admin.agent_status(E2E_LAB).values()
                ),
                "every agent reaches the store again",
            )
        recovered = time.monotonic()
        time.sleep(AFTER_S)
    (report,) = result
    assert report.requests[0].started < killed - 0.5, "the stream was not running before the kill"
    errors = _check_window(report, killed, recovered, victim)
    report_line(
        f"chaos: SIGKILL of {victim.kind} ({victim.key})",
        restarted_s=restarted - killed,
        recovered_s=recovered - killed,
        failed_in_outage=errors,
        failed_outside=len(report.failed()) - errors,
        requests=len(report.requests),
    )
    assert lab_api.status(E2E_LAB).healthy


def test_chaos_sigkill_of_the_supervisor(lab: LabPlan) -> None:
    """The services outlive their supervisor and keep serving; `up` starts a new supervisor that takes
    them over as they run (same pids) and restarts the next one that dies."""
    state = LabState(E2E_LAB)
    supervisor = state.supervisor_pid()
    assert supervisor is not None
    before = {key: record["pid"] for key, record in state.services().items()}
    with request_stream(lab, rate=CHAOS_RATE) as result:
        time.sleep(BEFORE_S)
        killed = time.monotonic()
        os.kill(supervisor, signal.SIGKILL)
        _until(lambda: state.supervisor_pid() is None, "the supervisor gone")
        assert not lab_api.status(E2E_LAB).healthy, "a lab without its supervisor is not healthy"
        up = subprocess.run(
            [sys.executable, "-m", "edgesim", "up", "--skip-setup", "--lab", E2E_LAB],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        recovered = time.monotonic()
        time.sleep(AFTER_S)
    (report,) = result
    assert up.returncode == 0, up.stdout + up.stderr
    assert "lost its supervisor" in up.stdout + up.stderr
    assert state.supervisor_pid() not in (None, supervisor)
    # Host services (the metrics UI relay) die with their supervisor by design (a loopback forward must not
    # outlive it); the nodes' services are the ones taken over.
    in_nodes = {key: pid for key, pid in before.items() if not key.startswith(HOST_SERVICE_PREFIX)}
    now = {key: record["pid"] for key, record in state.services().items()}
    assert {key: now[key] for key in in_nodes} == in_nodes, "taken over, not restarted"
    assert report.failed() == [], f"{len(report.failed())} requests failed without a supervisor"
    http = "edge1/http"
    os.kill(before[http], signal.SIGKILL)
    _until(lambda: _pid(http) not in (None, before[http]), "the new supervisor restarted edge1's http", 15)
    lab_api.wait_ready(E2E_LAB)
    assert lab_api.status(E2E_LAB).healthy
    report_line(
        "chaos: SIGKILL of the supervisor",
        recovered_by_up_s=recovered - killed,
        failed=len(report.failed()),
        requests=len(report.requests),
    )
