"""Lab names are checked at every entry point, and every removal stays inside the lab's root or prefix.

Issue 17: `edgesim down --lab ../../etc` deleted the host's /etc. These tests aim the same names at every
entry point (tasks, the Python API, the supervisor and agents) with a temporary state root and a sentinel
directory standing in for /etc; nothing may be removed, and each refusal is one line, never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgesim import guard, lab, namespaces, paths, runtime, state, supervisor
from edgesim.backends.netns import NetnsBackend
from edgesim.errors import EdgesimError
from edgesim.lab import REPO_ROOT
from edgesim.load import load_topology
from edgesim.tenants import agent as tenant_agent
from tests.conftest import TEST_PREFIX, require_root
from tests.unit.clirun import run_cli

BAD_NAMES = ["../../etc", "../etc", "/etc", "", "a" * 13, "Pop", "pop-x", "pop/x", ".", "..", "pop\n", "1pop"]
SMALL = REPO_ROOT / "topology" / "small.yml"


@pytest.fixture(autouse=True)
def state_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary state root (tmp/state), beside a sentinel directory standing in for /etc (tmp/etc)."""
    root = tmp_path / "state"
    root.mkdir()
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0\n")
    monkeypatch.setattr(paths, "STATE_ROOT", root)
    monkeypatch.setattr(state, "STATE_ROOT", root)
    return root


def sentinel_intact(tmp_path: Path) -> bool:
    return (tmp_path / "etc" / "passwd").read_text() == "root:x:0:0\n"


def refused(call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(EdgesimError) as err:
        call(*args, **kwargs)  # type: ignore[operator]
    (line,) = err.value.lines()
    return line


@pytest.mark.parametrize("name", BAD_NAMES)
def test_the_validator_refuses(name: str) -> None:
    assert not guard.is_lab_name(name)
    assert "is not a valid lab name" in refused(guard.lab_name, name)


@pytest.mark.parametrize("name", ["pop", "a", "sa1", "a" * 12])
def test_the_validator_accepts(name: str) -> None:
    assert guard.lab_name(name) == name


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize(
    "entry",
    [
        paths.lab_dir,
        paths.lock_file,
        state.LabState,
        runtime.resolve_lab,
        runtime.lab_state,
        runtime.state_dir,
        runtime.running_plan,
        runtime.backend_of,
        lab.down,
        lab.status,
        lab.wait_ready,
        state.remove_lock,
        guard.lab_prefix,
    ],
    ids=lambda f: f"{f.__module__.rsplit('.', 1)[-1]}.{f.__name__}",
)
def test_every_api_entry_point_refuses(entry: object, name: str, tmp_path: Path) -> None:
    assert "is not a valid lab name" in refused(entry, name)
    assert sentinel_intact(tmp_path)


@pytest.mark.parametrize("name", ["../etc", "/etc", "", "a" * 13])
def test_up_and_load_refuse_before_anything(name: str, tmp_path: Path) -> None:
    refused(lab.up, SMALL, lab=name)
    refused(load_topology, SMALL, lab=name)
    assert sentinel_intact(tmp_path)
    assert list((tmp_path / "state").iterdir()) == []


def test_the_lock_of_a_bad_name_is_refused() -> None:
    with pytest.raises(EdgesimError):
        with state.lab_lock("../etc"):
            pass


@pytest.mark.parametrize("name", ["../etc", "/etc", "", "a" * 13, "pop-x"])
@pytest.mark.parametrize("main", [supervisor.main, tenant_agent.main], ids=["supervisor", "tenant-agent"])
def test_supervisor_and_agents_refuse(main: object, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--lab", name]
    if main is tenant_agent.main:
        argv += ["--edge", "edge1", "--store", "x", "--listen", "x", "--uplink", "x"]
        argv += ["--gre-endpoint", "192.0.2.1", "--veth-pool", "198.18.2.0/24"]
    with pytest.raises(SystemExit) as exit_:
        main(argv)  # type: ignore[operator]
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "is not a valid lab name" in err and "Traceback" not in err


def test_the_tenant_agent_refuses_a_path_as_edge(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--lab", "pop", "--edge", "../x", "--store", "x", "--listen", "x", "--uplink", "x"]
    argv += ["--gre-endpoint", "192.0.2.1", "--veth-pool", "198.18.2.0/24"]
    with pytest.raises(SystemExit):
        tenant_agent.main(argv)
    assert "is not a valid node name" in capsys.readouterr().err


def test_remove_tree_stays_inside_its_root(tmp_path: Path, state_root: Path) -> None:
    for outside in (state_root / ".." / "etc", tmp_path / "etc", Path("/etc"), state_root, state_root / "."):
        refused(guard.remove_tree, outside, state_root)
    assert sentinel_intact(tmp_path)
    inner = state_root / "pop" / "logs"
    inner.mkdir(parents=True)
    assert guard.remove_tree(state_root / "pop", state_root) is True
    assert not (state_root / "pop").exists()
    assert guard.remove_tree(state_root / "pop", state_root) is False


def test_a_lab_directory_that_is_a_symlink_loses_the_link_not_its_target(tmp_path: Path) -> None:
    (tmp_path / "state" / "pop").symlink_to(tmp_path / "etc")
    state.LabState("pop").remove()
    assert not (tmp_path / "state" / "pop").exists()
    assert sentinel_intact(tmp_path)


def test_down_of_a_symlinked_lab_directory_keeps_its_target(tmp_path: Path) -> None:
    # The state directory of a lab pointing at the sentinel (as a hostile user could arrange): down removes
    # the link only. Needs no root: nothing of the lab exists, so the backend finds no namespace.
    require_root()
    name = f"{TEST_PREFIX}sym"  # a lab of this checkout's: down sweeps the namespaces named `<lab>-*`
    (tmp_path / "state" / name).symlink_to(tmp_path / "etc")
    lab.down(name, quiet=True)
    assert not (tmp_path / "state" / name).exists()
    assert sentinel_intact(tmp_path)


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("../../etc", "pop-"),
        ("pop-../../etc", "pop-"),
        ("pop-a/../../etc", "pop-"),
        ("other-edge1", "pop-"),
        ("pop-edge1", ""),
        ("pop-edge1", "-"),
        ("pop-edge1", "../"),
        ("pop", "pop-"),
    ],
)
def test_namespace_removal_refuses_names_outside_the_prefix(name: str, prefix: str) -> None:
    refused(guard.namespace_name, name, prefix)
    refused(namespaces.remove, name, prefix)


def test_namespace_names_of_the_lab_pass() -> None:
    assert guard.namespace_name("pop-edge1", "pop-") == "pop-edge1"
    assert guard.namespace_name("pop-edge1-acme", "pop-edge1-") == "pop-edge1-acme"
    assert guard.namespace_name("pop-customer_gw", "pop-") == "pop-customer_gw"


@pytest.mark.parametrize("prefix", ["", "p", "pop", "other-", "../"])
def test_the_backend_destroys_only_inside_the_lab_prefix(prefix: str) -> None:
    refused(NetnsBackend().destroy, "pop", prefix)


# Every task taking --lab (the spaced forms reach the same tasks).
LAB_TASKS = [
    ["down"],
    ["status"],
    ["up", "--skip-setup"],
    ["plan"],
    ["exec", "edge1"],
    ["attack", "syn-flood"],
    ["load"],
    ["bgp.status"],
    ["edge.down", "edge1"],
    ["edge.up", "edge1"],
    ["mitigate.list"],
    ["mitigate.stats"],
    ["mitigate.del", "x"],
    ["mitigate.add", "drop_src", "--prefix", "100.64.0.0/16"],
    ["lb.status"],
    ["lb.drain", "edge1"],
    ["lb.enable"],
    ["tenant.list"],
    ["tenant.rm", "acme"],
    ["tenant.rule.add", "acme", "accept"],
    ["tenant.rule.rm", "acme", "1"],
]


@pytest.mark.parametrize("task", LAB_TASKS, ids=lambda t: t[0])
def test_every_task_refuses_a_path_as_lab(task: list[str], tmp_path: Path) -> None:
    result = run_cli([*task, "--lab", "../etc"])
    assert result.code == 1, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: --lab: '../etc' is not a valid lab name (hint: lowercase letters and digits, starting with "
        "a letter, at most 12 characters)"
    ]
    assert sentinel_intact(tmp_path)


def test_down_of_a_path_deletes_nothing(tmp_path: Path) -> None:
    """The issue's case: `edgesim down --lab ../../etc`, as a user runs it, aimed at a sentinel beside a
    temporary state root (state/sub/../../etc is the sentinel)."""
    root = tmp_path / "state" / "sub"
    root.mkdir()
    env = {**os.environ, "EDGESIM_STATE_ROOT": str(root)}
    result = subprocess.run(
        [sys.executable, "-m", "edgesim", "down", "--lab", "../../etc"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        "error: --lab: '../../etc' is not a valid lab name (hint: lowercase letters and digits, starting "
        "with a letter, at most 12 characters)"
    ]
    assert sentinel_intact(tmp_path)
    for name in ("../etc", str(tmp_path / "etc"), ""):
        assert run_cli(["down", "--lab", name]).code == 1
        assert sentinel_intact(tmp_path)
