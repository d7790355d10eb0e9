"""Host setup without root: the probe, the playbook and role files, and the Ansible output parsing."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

from edgesim import hostsetup as setup
from edgesim.bpf import loader
from edgesim.errors import EdgesimError

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "host"


def _load(path: Path) -> object:
    return yaml.safe_load(path.read_text())


def test_missing_is_a_fast_list_of_lines() -> None:
    start = time.perf_counter()
    problems = setup.missing()
    elapsed = time.perf_counter() - start
    assert isinstance(problems, list)
    assert all(isinstance(line, str) and line and "\n" not in line for line in problems)
    assert elapsed < 0.5


def test_missing_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    setup.missing()
    assert capfd.readouterr() == ("", "")


def test_playbook_applies_the_host_role_to_localhost() -> None:
    (play,) = _load(setup.PLAYBOOK)
    assert play["hosts"] in ("all", "localhost")
    assert play["vars"]["ansible_python_interpreter"] == "/usr/bin/python3"
    (role,) = play["roles"]
    role_path = Path(role["role"].replace("{{ playbook_dir }}", str(setup.PLAYBOOK.parent))).resolve()
    assert role_path == ROLE
    assert (role_path / "tasks" / "main.yml").is_file()


def test_role_files_are_valid_yaml() -> None:
    for path in sorted(ROLE.rglob("*.yml")):
        assert _load(path) is not None, path


def _tasks(tasks: list[dict]) -> list[dict]:
    """Every task, including those inside blocks."""
    found = []
    for task in tasks:
        found.append(task)
        found.extend(_tasks(task.get("block", [])))
    return found


def test_role_references_only_existing_files_and_defined_variables() -> None:
    defaults = _load(ROLE / "defaults" / "main.yml")
    text = (ROLE / "tasks" / "main.yml").read_text()
    tasks = _tasks(_load(ROLE / "tasks" / "main.yml"))
    assert all("name" in task for task in tasks)
    # The role ships no files or templates, so a src: must point to the headers it links.
    for task in tasks:
        for module in ("ansible.builtin.copy", "ansible.builtin.template", "ansible.builtin.include_tasks"):
            assert module not in task, f"{task['name']} uses {module} but the role has no files"
    used = set(re.findall(r"\bhost_[a-z_]+\b", text))
    registered = {task["register"] for task in tasks if "register" in task}
    facts = {name for task in tasks for name in task.get("ansible.builtin.set_fact", {})}
    assert used <= set(defaults) | registered | facts


def test_role_installs_every_tool_the_probe_looks_for() -> None:
    packages = set(_load(ROLE / "defaults" / "main.yml")["host_packages"])
    assert set(setup.TOOLS.values()) <= packages
    assert {"python3-bpfcc", "libbpfcc", "bpfcc-tools"} <= packages


def test_vagrantfile_provisions_with_the_playbook_and_bootstrap() -> None:
    text = (REPO / "Vagrantfile").read_text()
    assert "playbooks/host.yml" in text
    assert (REPO / "bootstrap").is_file()
    for command in ("/edgesim/bootstrap up", "/edgesim/bootstrap test"):
        assert command in text


@pytest.mark.parametrize(
    ("line", "name"),
    [
        (
            "TASK [/repo/playbooks/../roles/host : Install the lab host packages] ****",
            "Install the lab host packages",
        ),
        ("TASK [Gathering Facts] *********************************", "Gathering Facts"),
        (
            "TASK [host : Install the generic headers (linux-headers-amd64)] ***",
            "Install the generic headers (linux-headers-amd64)",
        ),
    ],
)
def test_task_names_are_read_from_ansible_output(line: str, name: str) -> None:
    match = setup._TASK_LINE.match(line)
    assert match is not None
    assert match["name"] == name


def test_results_are_read_from_ansible_output() -> None:
    assert setup._RESULT_LINE.match("changed: [localhost] => (item=build)")["status"] == "changed"
    assert setup._RESULT_LINE.match("skipping: [localhost]")["status"] == "skipping"
    assert setup._RESULT_LINE.match("localhost : ok=4 changed=0") is None


def test_bpf_sources_are_beside_the_loader() -> None:
    assert (loader.BPF_DIR / "xdp_pass.c").is_file()
    assert "XDP_PASS" in (loader.BPF_DIR / "xdp_pass.c").read_text()


def test_unknown_xdp_mode_is_an_error_before_touching_the_kernel() -> None:
    with pytest.raises(EdgesimError, match="unknown mode 'fast'"):
        loader.attach_xdp("no-such-namespace", "eth0", 3, mode="fast")
