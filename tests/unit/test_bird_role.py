"""The Ansible bird role (VM path): valid YAML, a playbook that passes --syntax-check, the CLI's vars."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from edgesim.lab import REPO_ROOT

ROLE = REPO_ROOT / "roles" / "bird"
PLAYBOOK = REPO_ROOT / "playbooks" / "bird.yml"
GOLDEN = Path(__file__).parent / "bird" / "small"


def test_role_files_are_valid_yaml_and_use_only_defined_variables() -> None:
    for path in sorted(ROLE.rglob("*.yml")):
        assert yaml.safe_load(path.read_text()) is not None, path
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    used = set(re.findall(r"\bbird_[a-z_]+\b", (ROLE / "tasks" / "main.yml").read_text()))
    assert used <= set(defaults)
    handlers = {h["name"] for h in yaml.safe_load((ROLE / "handlers" / "main.yml").read_text())}
    notified = {
        t["notify"] for t in yaml.safe_load((ROLE / "tasks" / "main.yml").read_text()) if "notify" in t
    }
    assert notified <= handlers


def test_playbook_passes_ansible_syntax_check() -> None:
    ansible = Path(sys.executable).parent / "ansible-playbook"
    result = subprocess.run(
        [str(ansible), "--syntax-check", "-i", "localhost,", str(PLAYBOOK)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_bgp_config_vars_feed_the_role_with_the_lab_configuration() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgesim",
            "bgp.config",
            "edge1",
            "--vars",
            "--topology",
            "tests/unit/plans/small/input.yml",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    variables = json.loads(result.stdout)
    assert variables["bird_config"] == (GOLDEN / "edge1.conf").read_text()
    assert variables["bird_includes"] == {"edge1.announce.conf": (GOLDEN / "edge1.announce.conf").read_text()}
