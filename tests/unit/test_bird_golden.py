"""BIRD configuration rendered from golden plans, byte for byte, and accepted by BIRD's own parser."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from edgesim.errors import EdgesimError
from edgesim.load import load_topology
from edgesim.model import BgpTimers, Topology
from edgesim.plan import LabPlan, build_plan
from edgesim.routing.bird import render_announcements, render_config

PLANS = Path(__file__).parent / "plans"
GOLDEN = Path(__file__).parent / "bird"
# Plan cases with `routing: bgp` whose BIRD files are kept as golden files.
CASES = ["small", "announce"]


def rendered(plan: LabPlan) -> dict[str, str]:
    """Every BIRD file `up` writes for this plan, by file name (as under the lab's bird/ directory)."""
    files = {}
    for node in plan.nodes.values():
        if node.bgp is None:
            continue
        files[Path(node.bgp.config).name] = render_config(plan.lab, node)
        if node.bgp.announcements is not None:
            text = render_announcements(node.name, node.anycast, drained=False)
            files[Path(node.bgp.announcements).name] = text
    return files


@pytest.mark.parametrize("case", CASES)
def test_bird_files_match_golden(case: str) -> None:
    files = rendered(build_plan(load_topology(PLANS / case / "input.yml")))
    assert files, "a bgp plan has BIRD files"
    directory = GOLDEN / case
    if os.environ.get("UPDATE_GOLDEN"):
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (directory / name).write_text(text)
    assert sorted(p.name for p in directory.iterdir()) == sorted(files)
    for name, text in files.items():
        assert text == (directory / name).read_text(), f"{case}/{name} differs from its golden file"


def test_a_drained_edge_keeps_its_prefixes_but_disables_them() -> None:
    text = render_announcements("edge1", ["198.51.100.0/24", "203.0.113.0/28"], drained=True)
    assert "  disabled;" in text
    assert "route 198.51.100.0/24 blackhole;" in text and "route 203.0.113.0/28 blackhole;" in text
    assert "disabled" not in render_announcements("edge1", ["198.51.100.0/24"], drained=False)


def test_static_routing_runs_no_bird() -> None:
    plan = build_plan(load_topology(PLANS / "static" / "input.yml"))
    assert rendered(plan) == {}
    assert all(s.name != "bird" for node in plan.nodes.values() for s in node.services)


@pytest.mark.parametrize("case", CASES)
def test_bird_parses_every_rendered_config(case: str, tmp_path: Path) -> None:
    bird = shutil.which("bird", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
    if bird is None:
        if os.environ.get("CI"):
            pytest.fail("bird (bird2) is missing on the CI machine; `invoke setup` installs it")
        pytest.skip("bird is not installed (`invoke setup` installs bird2)")
    files = rendered(build_plan(load_topology(PLANS / case / "input.yml")))
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    drained = render_announcements("edge1", ["198.51.100.0/24"], drained=True)
    (tmp_path / "edge1.announce.conf").write_text(drained)
    for name in files:
        if name.endswith(".announce.conf"):
            continue
        # -p: parse the configuration (and its includes) and exit; needs no root and starts nothing.
        result = subprocess.run([bird, "-p", "-c", str(tmp_path / name)], capture_output=True, text=True)
        assert result.returncode == 0, f"{name}: {result.stderr}"


def test_plan_refuses_an_edge_prefix_the_pop_does_not_own_even_past_load() -> None:
    # `load` refuses this already (tests/unit/errors/announce_not_owned.yml); the plan checks again, so a
    # prefix added by any other path (tenants, agents) cannot reach BIRD either.
    topology = Topology.model_validate(
        {
            "lab": "bad",
            "vips": [{"address": "198.51.100.10"}],
            "nodes": {"router": {"role": "router"}, "edge1": {"role": "edge", "announce": ["100.64.0.0/24"]}},
        }
    )
    with pytest.raises(EdgesimError) as caught:
        build_plan(topology)
    assert [str(p) for p in caught.value.problems] == [
        "nodes.edge1: would announce 100.64.0.0/24, which is not a prefix this PoP owns "
        "(hint: announce only inside 198.51.100.0/24, 192.0.2.0/24, 203.0.113.0/24)"
    ]


def test_bgp_timers_from_the_topology_reach_every_bird(tmp_path: Path) -> None:
    topology = load_topology(PLANS / "small" / "input.yml").model_copy(
        update={"bgp_timers": BgpTimers(bfd_interval_ms=500, bfd_multiplier=6, hold_s=15, keepalive_s=5)}
    )
    files = rendered(build_plan(topology))
    configs = {name: text for name, text in files.items() if not name.endswith(".announce.conf")}
    assert len(configs) >= 2
    for name, text in configs.items():
        assert "min rx interval 500 ms;" in text and "multiplier 6;" in text, name
        assert "hold time 15;" in text and "keepalive time 5;" in text, name
        assert "is down after 3000 ms" in text, name
