"""The runtime's answers about a lab, from a state directory written the way `up` writes it (no root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesim import paths, runtime, state
from edgesim.errors import EdgesimError
from edgesim.load import load_topology
from edgesim.plan import LabPlan, build_plan

SMALL = runtime.DEFAULT_TOPOLOGY.parent / "small.yml"


@pytest.fixture(autouse=True)
def state_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every lab of these tests lives under a temporary state root."""
    monkeypatch.setattr(paths, "STATE_ROOT", tmp_path)
    monkeypatch.setattr(state, "STATE_ROOT", tmp_path)
    return tmp_path


def started(lab: str, backend: str = "netns") -> LabPlan:
    """Record a lab as `up` does before it creates anything."""
    plan = build_plan(load_topology(SMALL, lab=lab))
    state.LabState(lab).begin(plan, "digest", str(SMALL), backend)
    return plan


def error_lines(call: object, *args: object) -> list[str]:
    with pytest.raises(EdgesimError) as err:
        call(*args)  # type: ignore[operator]
    return err.value.lines()


def test_a_lab_that_is_not_up_says_so() -> None:
    assert error_lines(runtime.running_plan, "gone") == [
        "lab gone: is not up (hint: start it with `invoke up`)"
    ]
    assert error_lines(runtime.node_plan, "gone", "edge1") == [
        "lab gone: is not up (hint: start it with `invoke up`)"
    ]


def test_running_plan_and_node_plan() -> None:
    plan = started("rt")
    assert runtime.running_plan("rt") == plan
    assert runtime.node_plan("rt", "edge1") == plan.nodes["edge1"]
    assert error_lines(runtime.node_plan, "rt", "edge9") == [
        f"node edge9: is not in lab rt (hint: nodes: {', '.join(plan.nodes)})"
    ]
    assert runtime.state_dir("rt") == paths.lab_dir("rt") == runtime.lab_state("rt").dir


def test_backend_is_the_recorded_one_else_the_default() -> None:
    assert runtime.backend_of("gone") == runtime.DEFAULT_BACKEND == "netns"
    started("rt", backend="containerlab")
    assert runtime.backend_of("rt") == "containerlab"


def test_resolve_lab_named_else_the_only_one_up_else_the_topology_s() -> None:
    assert runtime.resolve_lab(None, SMALL) == "small"
    assert runtime.resolve_lab("mine", SMALL) == "mine"
    started("one")
    assert runtime.resolve_lab(None, SMALL) == "one"
    started("two")
    assert error_lines(runtime.resolve_lab, None, SMALL) == [
        "--lab: several labs are up (one, two) (hint: name one with --lab)"
    ]
