"""64 edges on one machine: topology/scale64.yml comes up (every edge's XDP agent loading its programs from
the BPF cache, no agent holding a compiler), and passes the foundation's spread test scaled to 64 edges:
every connection answered, each edge serving within 4.6 standard deviations of its binomial share."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from edgesim import lab as lab_api
from edgesim.lab import REPO_ROOT
from edgesim.plan import LabPlan
from edgesim.traffic.http_probe import probe_from_node
from tests.conftest import SCALE_LAB, leftovers, require_root

TOPOLOGY = REPO_ROOT / "topology" / "scale64.yml"
EDGES = 64
CONNECTIONS = 4096
# As test_lab_traffic: 4.6 standard deviations of Binomial(4096, 1/64) (mean 64, sd 7.9): p ≈ 4e-6 per edge.
SIGMAS = 4.6


def _down() -> None:
    subprocess.run(
        [sys.executable, "-m", "edgesim", "down", "--lab", SCALE_LAB],
        cwd=REPO_ROOT,
        capture_output=True,
        check=False,
    )


@pytest.fixture(scope="module")
def scale_lab() -> Iterator[LabPlan]:
    require_root()
    _down()
    try:
        yield lab_api.up(TOPOLOGY, lab=SCALE_LAB, console=Console(quiet=True)).plan
    finally:
        _down()
    assert leftovers(SCALE_LAB) == []


def _maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_64_edges_come_up_with_agents_that_hold_no_compiler(scale_lab: LabPlan) -> None:
    status = lab_api.status(SCALE_LAB)
    assert status.healthy
    agents = [pid for n in status.nodes for name, pid in n.services.items() if name == "xdp"]
    assert len(agents) == EDGES and all(agents)
    assert [pid for pid in agents if pid and "libLLVM" in _maps(pid)] == []


def test_4096_connections_all_succeed_and_spread_over_the_64_edges(scale_lab: LabPlan) -> None:
    report = probe_from_node(SCALE_LAB, "client1", f"{scale_lab.vips[0]}:80", CONNECTIONS, timeout=10.0)
    failures = [f.error for f in report.fetches if f.error]
    assert failures == [], f"{len(failures)} of {CONNECTIONS} connections failed, e.g. {failures[:3]}"
    per_edge = report.per_edge()
    edges = [n.name for n in scale_lab.nodes_with_role("edge")]
    assert set(per_edge) == set(edges), f"not served by {set(edges) - set(per_edge)}"
    expected = CONNECTIONS / EDGES
    allowed = SIGMAS * math.sqrt(CONNECTIONS / EDGES * (1 - 1 / EDGES))
    outside = {e: per_edge[e] for e in edges if abs(per_edge[e] - expected) > allowed}
    assert outside == {}, f"expected {expected:.0f} ±{allowed:.0f} per edge"
