"""Every task, in every collection, has a docstring and a help line for each of its options."""

from __future__ import annotations

import subprocess
import sys

import pytest
from invoke import Collection

from edgesim.lab import REPO_ROOT
from edgesim.tasks import ns


def all_tasks(collection: Collection, prefix: str = "") -> dict[str, object]:
    found = {f"{prefix}{name}": task for name, task in collection.tasks.items()}
    for name, sub in collection.collections.items():
        found.update(all_tasks(sub, f"{prefix}{name}."))
    return found


TASKS = all_tasks(ns)


def test_the_routing_tasks_are_there() -> None:
    assert {"bgp.status", "bgp.config", "edge.down", "edge.up"} <= set(TASKS)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_is_documented(name: str) -> None:
    task = TASKS[name]
    assert (task.__doc__ or "").strip(), f"{name} has no docstring"
    undocumented = [arg.name for arg in task.get_arguments() if not arg.help]
    assert undocumented == [], f"{name}: options without help: {undocumented}"


@pytest.mark.parametrize(
    "name",
    ["bgp.status", "bgp.config", "edge.down", "edge.up", "edge", "bgp", "tenant.add", "tenant.rule.add"],
)
def test_help_runs(name: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "edgesim", "--help", name], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "Docstring:" in result.stdout and "Options:" in result.stdout


def test_the_tenant_tasks_are_there_and_spaced_forms_reach_them() -> None:
    from edgesim.cli import dotted, help_first

    assert {"tenant.list", "tenant.add", "tenant.rm", "tenant.rule.add", "tenant.rule.rm"} <= set(TASKS)
    rule = "ip daddr 203.0.113.100 tcp dport 80 accept"
    assert dotted(["tenant", "rule", "add", "acme", rule], ns) == ["tenant.rule.add", "acme", rule]
    assert dotted(["tenant", "list", "--lab", "pop"], ns) == ["tenant.list", "--lab", "pop"]
    assert dotted(["tenant", "rule", "acme"], ns) == ["tenant", "rule", "acme"], "no such task: left alone"
    assert help_first(dotted(["tenant", "rule", "rm", "--help"], ns)) == ["--help", "tenant.rule.rm"]
