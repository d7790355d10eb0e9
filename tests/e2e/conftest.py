"""The session-scoped lab shared by the e2e tests: the default topology, under the lab name `etest`."""

from __future__ import annotations

import socket

import pytest
from pyroute2 import IPRoute
from rich.console import Console

from edgesim import lab as lab_api
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
