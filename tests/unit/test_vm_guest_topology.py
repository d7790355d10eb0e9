"""The VM job's guest topology: the default lab, with the longer BFD and BGP timers a TCG guest needs."""

from __future__ import annotations

import shutil
from pathlib import Path

from edgesim.lab import DEFAULT_TOPOLOGY
from edgesim.load import load_topology
from edgesim.plan import build_plan
from edgesim.vagrant import vmjob


def test_the_guest_default_topology_plans_the_longer_timers(tmp_path: Path) -> None:
    topology = tmp_path / "default.yml"
    shutil.copy(DEFAULT_TOPOLOGY, topology)
    vmjob.slow_guest_timers(topology)
    vmjob.slow_guest_timers(topology)  # a second call changes nothing
    assert topology.read_text().count("bgp_timers:") == 1
    plan = build_plan(load_topology(topology))
    birds = [n.bgp for n in plan.nodes.values() if n.bgp]
    timers = {(b.bfd_interval_ms, b.bfd_multiplier, b.hold_s) for b in birds}
    assert timers == {(500, 6, 15)}
    # Everything else is the default lab's.
    default = build_plan(load_topology(DEFAULT_TOPOLOGY))
    assert set(plan.nodes) == set(default.nodes) and plan.vips == default.vips
