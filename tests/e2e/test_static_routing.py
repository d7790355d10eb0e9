"""`routing: static` keeps the foundation's behaviour for hosts without BIRD: fixed ECMP routes, no BIRD."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from edgesim import lab as lab_api
from edgesim import namespaces
from edgesim.errors import EdgesimError
from edgesim.lb import control as lb_control
from edgesim.routing import control as routing
from edgesim.routing import kernel
from edgesim.traffic.http_probe import probe_from_node
from tests.conftest import STATIC_LAB, leftovers, require_root

TOPOLOGY = """
lab: static
routing: static
vips: [{address: 198.51.100.10}]
nodes:
  router: {role: router}
  edge1: {role: edge}
  edge2: {role: edge}
  client1: {role: host}
"""


def test_static_lab_has_fixed_multipath_routes_and_no_bird(tmp_path: Path) -> None:
    require_root()
    topology = tmp_path / "static.yml"
    topology.write_text(TOPOLOGY)
    console = Console(stderr=True, quiet=True)
    lab_api.down(STATIC_LAB, console=console, quiet=True)
    try:
        plan = lab_api.up(topology, lab=STATIC_LAB, console=console).plan
        route = kernel.router_routes(plan)["198.51.100.0/24"]
        assert route.proto != kernel.PROTO_BIRD
        assert route.gateways == {
            i.peer_address for i in plan.nodes["router"].interfaces if i.peer_node != "client1"
        }
        commands = {
            Path(f"/proc/{pid}/comm").read_text().strip()
            for pids in namespaces.pids_in(plan.namespaces()).values()
            for pid in pids
        }
        assert "bird" not in commands
        report = probe_from_node(STATIC_LAB, "client1", "198.51.100.10:80", 64)
        errors = [f.error for f in report.fetches if f.error]
        # On failure, each edge's LB view and counters say where the refused connections went.
        assert errors == [], (errors, lb_control.status(STATIC_LAB)["edges"] if errors else None)
        assert set(report.per_edge()) == {"edge1", "edge2"}
        with pytest.raises(EdgesimError, match="uses `routing: static`"):
            routing.edge_down(STATIC_LAB, "edge1")
    finally:
        lab_api.down(STATIC_LAB, console=console, quiet=True)
    assert leftovers(STATIC_LAB) == []
