"""Golden plans: input.yml → expected.json, byte for byte (UPDATE_GOLDEN=1 regenerates them)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edgesim.load import load_topology
from edgesim.plan import build_plan

CASES = sorted(p for p in (Path(__file__).parent / "plans").iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_plan_matches_golden(case: Path) -> None:
    plan = build_plan(load_topology(case / "input.yml"))
    actual = json.dumps(plan.model_dump(mode="json"), indent=2) + "\n"
    golden = case / "expected.json"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(actual)
    assert golden.exists(), f"no {golden}; run with UPDATE_GOLDEN=1 to create it"
    assert actual == golden.read_text()
