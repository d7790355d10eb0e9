"""A lab whose `up` dies half-way (SIGKILL, Ctrl-C) is always cleanable: `down` leaves nothing behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edgesim import namespaces
from edgesim.lab import REPO_ROOT
from edgesim.state import LabState
from tests.conftest import CRASH_LAB, leftovers, require_root

# The largest shipped topology, so that `up` runs long enough to be interrupted at each stage.
TOPOLOGY = REPO_ROOT / "topology" / "scale.yml"


def edgesim(*args: str, **kwargs: object) -> subprocess.Popen:
    """Start the edgesim CLI as a separate process, as a user would."""
    return subprocess.Popen(
        [sys.executable, "-m", "edgesim", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def _some_namespaces() -> bool:
    return len(namespaces.list_with_prefix(f"{CRASH_LAB}-")) >= 3


def _supervisor_started() -> bool:
    return LabState(CRASH_LAB).supervisor_pidfile.exists()


def _wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "up never reached the stage to interrupt"
        time.sleep(0.002)


@pytest.fixture
def clean_crash_lab():
    require_root()
    subprocess.run(
        [sys.executable, "-m", "edgesim", "down", "--lab", CRASH_LAB],
        cwd=REPO_ROOT,
        capture_output=True,
        check=False,
    )
    yield
    subprocess.run(
        [sys.executable, "-m", "edgesim", "down", "--lab", CRASH_LAB],
        cwd=REPO_ROOT,
        capture_output=True,
        check=False,
    )


@pytest.mark.parametrize("stage", [_some_namespaces, _supervisor_started], ids=["namespaces", "services"])
def test_down_cleans_an_up_killed_with_sigkill(clean_crash_lab, stage: Callable[[], bool]) -> None:
    up = edgesim("up", "--skip-setup", "--topology", str(TOPOLOGY), "--lab", CRASH_LAB)
    _wait_for(stage)
    up.send_signal(signal.SIGKILL)
    up.wait(timeout=10)
    recorded = LabState(CRASH_LAB).read()
    assert recorded is not None and recorded["phase"] == "creating", "up must have died mid-way"
    assert leftovers(CRASH_LAB), "a killed up leaves objects for down to find"

    down = edgesim("down", "--lab", CRASH_LAB)
    output, _ = down.communicate(timeout=60)
    assert down.returncode == 0, output
    assert leftovers(CRASH_LAB) == []
    assert not Path(f"/run/netns/{CRASH_LAB}-router").exists()


def test_ctrl_c_during_up_cleans_up_by_itself(clean_crash_lab) -> None:
    up = edgesim("up", "--skip-setup", "--topology", str(TOPOLOGY), "--lab", CRASH_LAB)
    _wait_for(_some_namespaces)
    up.send_signal(signal.SIGINT)
    output, _ = up.communicate(timeout=60)
    assert up.returncode != 0, output
    assert "interrupted" in output
    assert leftovers(CRASH_LAB) == []


def test_down_is_idempotent(clean_crash_lab) -> None:
    first = edgesim("down", "--lab", CRASH_LAB)
    output, _ = first.communicate(timeout=60)
    assert first.returncode == 0
    assert "nothing to remove" in output
