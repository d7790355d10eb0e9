"""The topology picture: the default topology's dot against a golden file, mermaid's node set equal to
the plan's, live state drawn, and Graphviz accepting the dot."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from edgesim.lab import DEFAULT_TOPOLOGY, load_plan
from edgesim.metrics.graph import NodeLive, mermaid_nodes, to_dot, to_mermaid

GOLDEN = Path(__file__).parent / "metrics" / "default.dot"


def test_default_topology_dot_matches_golden() -> None:
    actual = to_dot(load_plan(DEFAULT_TOPOLOGY))
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(actual)
    assert actual == GOLDEN.read_text()


def test_dot_shows_every_link_with_its_interfaces_and_every_tunnel() -> None:
    plan = load_plan(DEFAULT_TOPOLOGY)
    dot = to_dot(plan)
    for link in plan.links:
        a = plan.nodes[link.a.node].interface_to(link.b.node)
        assert f'"{link.a.node}" -- "{link.b.node}"' in dot
        assert f"{a.name} {a.address}" in dot
    assert dot.count("GRE acme to 192.0.2.1") == 1 and dot.count("GRE globex to 192.0.2.1") == 1
    assert "198.51.100.10" in dot


def test_mermaid_declares_exactly_the_plans_nodes() -> None:
    plan = load_plan(DEFAULT_TOPOLOGY)
    text = to_mermaid(plan)
    assert text.startswith("flowchart LR\n")
    assert mermaid_nodes(text) == set(plan.nodes)


def test_live_state_marks_a_drained_edge() -> None:
    plan = load_plan(DEFAULT_TOPOLOGY)
    live = {"edge2": NodeLive(False, ["drained (edge down)"]), "edge1": NodeLive(True, ["BGP Established"])}
    dot = to_dot(plan, live)
    assert "drained (edge down)" in dot and "BGP Established" in dot and "#d62728" in dot
    assert "style n_edge2 stroke:#d62728" in to_mermaid(plan, live)


def test_graphviz_renders_the_golden_dot() -> None:
    result = subprocess.run(["dot", "-Tsvg"], input=GOLDEN.read_bytes(), capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.count(b'class="node"') == len(load_plan(DEFAULT_TOPOLOGY).nodes)
