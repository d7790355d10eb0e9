"""The feature registry: every part a feature has follows its layer's interface, and lab names none."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
from invoke import Collection

from edgesim import features
from edgesim.hooks import FeatureHooks
from edgesim.plan.build import FEATURE_STAGES

EDGESIM = Path(features.__file__).parent
KINDS = ("planner", "hooks", "tasks")


@pytest.mark.parametrize("feature", features.FEATURES)
def test_every_feature_is_a_package_with_a_part(feature: str) -> None:
    assert (EDGESIM / feature / "__init__.py").exists()
    assert any(features.part(feature, kind) is not None for kind in KINDS)


@pytest.mark.parametrize("feature", features.FEATURES)
def test_planner_defines_only_known_stages(feature: str) -> None:
    planner = features.part(feature, "planner")
    if planner is None:
        return
    stages = {name for name, _ in inspect.getmembers(planner, inspect.isfunction) if name.startswith("plan_")}
    assert stages, f"{feature}.planner defines no stage"
    assert stages <= set(FEATURE_STAGES), f"unknown stages {stages - set(FEATURE_STAGES)}"


@pytest.mark.parametrize("feature", features.FEATURES)
def test_hooks_and_tasks_follow_their_interface(feature: str) -> None:
    hooks = features.part(feature, "hooks")
    if hooks is not None:
        assert isinstance(hooks.HOOKS, FeatureHooks)
    tasks = features.part(feature, "tasks")
    if tasks is not None:
        assert tasks.COLLECTIONS and all(isinstance(c, Collection) for c in tasks.COLLECTIONS)


def test_missing_part_is_none_but_a_broken_one_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert features.part("proxy", "hooks") is None  # the proxy has nothing to do in up/down
    for feature in ("broken", "partial"):
        (tmp_path / "fakefeatures" / feature).mkdir(parents=True)
        (tmp_path / "fakefeatures" / feature / "__init__.py").write_text("")
    (tmp_path / "fakefeatures" / "__init__.py").write_text("")
    (tmp_path / "fakefeatures" / "broken" / "planner.py").write_text("import fakefeatures_no_such_module\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert features.part("partial", "planner", package="fakefeatures") is None
    with pytest.raises(ModuleNotFoundError, match="fakefeatures_no_such_module"):
        features.part("broken", "planner", package="fakefeatures")


def test_lab_names_no_feature() -> None:
    tree = ast.parse((EDGESIM / "lab.py").read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    } | {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    named = {
        m for m in imported for f in features.FEATURES if m == f"edgesim.{f}" or m.startswith(f"edgesim.{f}.")
    }
    assert not named, f"lab.py imports features by name: {named}"
