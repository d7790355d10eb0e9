"""One writer per lab, one supervisor and one agent of each kind per edge: flock, across real processes."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgesim import locks, paths, state, supervisor
from edgesim.errors import EdgesimError
from edgesim.lab import REPO_ROOT
from edgesim.mitigation import agent as xdp_agent
from edgesim.tenants import agent as tenant_agent


@pytest.fixture(autouse=True)
def state_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(paths, "STATE_ROOT", tmp_path)
    return tmp_path


def holder_process(path: Path, seconds: float = 30.0) -> subprocess.Popen[str]:
    """Another process holding the lock at `path` (until killed), started once it holds it."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from edgesim import locks
        locks.acquire(Path({str(path)!r}))
        print("held", flush=True)
        time.sleep({seconds})
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, "up", "--lab", "x"], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


@pytest.fixture
def held(state_root: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    path = paths.lock_file("sa1")
    process = holder_process(path)
    yield path, process
    process.kill()
    process.wait()


def test_a_second_writer_waits_says_for_whom_and_gives_up(held: tuple[Path, subprocess.Popen[str]]) -> None:
    _, process = held
    told: list[str] = []
    started = time.monotonic()
    with pytest.raises(EdgesimError) as err:
        with state.lab_lock("sa1", wait_s=0.5, waiting=told.append):
            pass
    assert time.monotonic() - started >= 0.5
    assert told == [
        f"lab sa1 is busy (pid {process.pid}: -c up --lab x); waiting for it to finish (at most 0 s)"
    ]
    assert err.value.lines() == [
        f"lab sa1: another edgesim command is changing it (pid {process.pid}: -c up --lab x) "
        "(hint: try again later)"
    ]


def test_the_waiter_gets_the_lock_when_the_holder_dies(held: tuple[Path, subprocess.Popen[str]]) -> None:
    _, process = held
    process.kill()  # SIGKILL: the kernel drops the lock, no clean-up needed
    process.wait()
    with state.lab_lock("sa1", wait_s=5.0, waiting=None):
        assert locks.is_held(paths.lock_file("sa1"))
    assert not locks.is_held(paths.lock_file("sa1"))


def test_nested_use_in_one_process_does_not_deadlock(state_root: Path) -> None:
    with state.lab_lock("sa1", wait_s=0.0):
        with state.lab_lock("sa1", wait_s=0.0):
            pass
        assert locks.is_held(paths.lock_file("sa1"))
    assert not locks.is_held(paths.lock_file("sa1"))


def test_a_lock_file_removed_by_its_holder_guards_nothing(state_root: Path) -> None:
    # down removes the lab's lock file while holding it. A waiter that opened the old file before gets
    # its lock once down releases it, but that lock must count for nothing: a newcomer makes a new file at
    # the path and would hold it at the same time.
    path = paths.lock_file("sa1")
    locks.acquire(path)
    waiter = os.open(path, os.O_RDWR)
    try:
        state.remove_lock("sa1")
        locks.release(path)
        fcntl.flock(waiter, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the removed file's lock is free now
        assert not locks.same_file(path, waiter)
        with state.lab_lock("sa1", wait_s=0.0):  # so acquire starts over on a new file
            assert locks.same_file(path, locks._held[path.absolute()][0])
    finally:
        os.close(waiter)


def test_a_second_supervisor_refuses_to_start(state_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab_state = state.LabState("sa1")
    lab_state.logs.mkdir(parents=True)
    first = holder_process(lab_state.supervisor_lock)
    try:
        assert supervisor.main(["--lab", "sa1"]) == 1
    finally:
        first.kill()
        first.wait()
    assert "has a supervisor already" in capsys.readouterr().err
    assert not lab_state.supervisor_pidfile.exists(), "the second one must not take over the pid file"


def test_a_second_xdp_agent_refuses_to_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sock = tmp_path / "xdp-edge1.sock"
    first = holder_process(sock.with_suffix(".lock"))
    try:
        argv = ["--netns", "sa1-edge1", "--uplink", "eth-router", "--rules", str(tmp_path / "r.json")]
        assert xdp_agent.main([*argv, "--socket", str(sock)]) == 1
    finally:
        first.kill()
        first.wait()
    assert "already running" in capsys.readouterr().err


def test_a_second_tenant_agent_refuses_to_start(state_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = holder_process(state.LabState("sa1").dir / "tenants-edge1.lock")
    try:
        argv = ["--lab", "sa1", "--edge", "edge1", "--store", "http://198.18.1.0:2379", "--listen", "x:1"]
        argv += ["--uplink", "eth-router", "--gre-endpoint", "192.0.2.1", "--veth-pool", "198.18.2.0/24"]
        assert tenant_agent.main(argv) == 1
    finally:
        first.kill()
        first.wait()
    assert "an agent runs already" in capsys.readouterr().out


def test_a_change_asked_of_a_lab_that_is_not_up_leaves_no_lock_file(state_root: Path) -> None:
    with state.lab_lock("sa1", wait_s=0.0):
        with state.lab_lock("sa1", wait_s=0.0):
            pass
        assert paths.lock_file("sa1").exists(), "held: the file stays while anyone holds it"
    assert not paths.lock_file("sa1").exists()
    state.LabState("sa1").logs.mkdir(parents=True)
    with state.lab_lock("sa1", wait_s=0.0):
        pass
    assert paths.lock_file("sa1").exists(), "a lab that is there keeps its lock file"
