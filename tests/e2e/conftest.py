"""The session-scoped lab shared by the e2e tests: the default topology, under the lab name `etest`."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from pyroute2 import IPRoute
from rich.console import Console

from edgesim import lab as lab_api
from edgesim.mitigation import control, store
from edgesim.plan import LabPlan
from tests.conftest import E2E_LAB, leftovers, require_root

__all__ = ["E2E_LAB"]


def root_routes() -> set[tuple[str, int, int, int]]:
    """The root namespace's IPv4 routes in every table, as (dst, prefix length, table, output interface)."""
    with IPRoute() as ipr:
        return {
            (r.get("RTA_DST") or "0.0.0.0", r["dst_len"], r.get("RTA_TABLE"), r.get("RTA_OIF"))
            for r in ipr.route("dump", family=socket.AF_INET)
        }


@pytest.fixture(scope="session")
def root_routes_before_lab() -> set[tuple[str, int, int, int]]:
    """The host's own routes, taken before the lab exists (this host's uplink may sit in a lab range)."""
    require_root()
    return root_routes()


@pytest.fixture(scope="session")
def lab(root_routes_before_lab: set) -> LabPlan:
    """Bring the default topology up once for the session; tear it down and check it is all gone."""
    require_root()
    console = Console(stderr=True, quiet=True)
    lab_api.down(E2E_LAB, console=console, quiet=True)  # a previous crashed session must not break this one
    result = lab_api.up(lab_api.DEFAULT_TOPOLOGY, lab=E2E_LAB, console=console)
    yield result.plan
    lab_api.down(E2E_LAB, console=console, quiet=True)
    assert leftovers(E2E_LAB) == []


# Floods run last in the session: after them, connections through the edge proxy (test_tcp_proxy) stall on
# the shared lab. Issue 17 took this for the drain check cutting steady readers; that was a separate defect
# (fixed: it judged a rate between two samples), and this one remains: run after test_ddos.py, 8 of 10
# reader connections got exactly 13,032 bytes (9 segments, the client's first window) and then nothing, so
# the drain check cut them as stalled (rightly), and a vanished idle client's connection outlived its user
# timeout; readers after a SYN flood of their own (test_tcp_proxy.py's steady-reader test) are not affected.
# The slowloris test (test_l7_mitigation.py: 500 connections from one source, most refused by synproxy's
# limit) leaves the same after-effect: the proxy's readers right after it stalled at 82,536 bytes (5 of 6).
# Not yet explained, so the tests that need a quiet lab still get it first.
# Among themselves, the lightest attack first and the heaviest floods last: in the first merged run, the
# slowloris test's client (99.2 %, wants 99.9 %) and the DNS filter's legitimate queries (199 of 200) fell
# short when they ran after test_ddos.py's floods, as the proxy's readers do.
FLOOD_MODULES = ("test_l7_mitigation.py", "test_dns.py", "test_ddos.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep file order, but move the attack tests (floods, slowloris) to the end, in FLOOD_MODULES' order."""
    items.sort(
        key=lambda item: FLOOD_MODULES.index(item.path.name) + 1 if item.path.name in FLOOD_MODULES else 0
    )


@pytest.fixture
def rules_restored(lab: LabPlan) -> Iterator[None]:
    """Whatever a test adds to or removes from the lab's rule set is undone when it ends."""
    original = store.read(store.rules_path(E2E_LAB))
    yield
    store.write(store.rules_path(E2E_LAB), original)
    control.reload_all(E2E_LAB)
