"""Shared test helpers: root requirement (skip on dev machines, fail in CI) and the leftovers check."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgesim import namespaces
from edgesim.paths import lock_file
from edgesim.state import LabState
from edgesim.vagrant import engine as vagrant_engine

# Lab names used by the test suites; nothing of them may survive a test session. EDGESIM_TEST_PREFIX lets
# two checkouts run their suites on one machine at once without sharing a lab.
TEST_PREFIX = os.environ.get("EDGESIM_TEST_PREFIX", "e")
E2E_LAB = f"{TEST_PREFIX}test"
CRASH_LAB = f"{TEST_PREFIX}crash"
STATIC_LAB = f"{TEST_PREFIX}static"
TCP_LAB = f"{TEST_PREFIX}tcp"  # the TCP timeout experiment's own lab
TCP_CLI_LAB = f"{TEST_PREFIX}tcpcli"
DOUBLE_LAB = f"{TEST_PREFIX}double"  # brought up twice at once (tests/e2e/test_safety.py)
TEST_LABS = (E2E_LAB, CRASH_LAB, STATIC_LAB, TCP_LAB, TCP_CLI_LAB, DOUBLE_LAB)


def require_root() -> None:
    """Skip without root on a developer machine; fail loudly in CI, where root is a given."""
    if os.geteuid() == 0:
        return
    if os.environ.get("CI"):
        pytest.fail("this test needs root, and CI runs as root: something is wrong with the CI machine")
    pytest.skip("needs root (network namespaces, BPF)")


def leftovers(lab: str) -> list[str]:
    """Anything of `lab` still on the machine: namespaces, supervisor and BIRD processes, state, BPF pins."""
    found = [f"namespace {n}" for n in namespaces.list_with_prefix(f"{lab}-")]
    for pid_dir in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (pid_dir / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"edgesim.supervisor" in b" ".join(cmdline) and lab.encode() in cmdline:
            found.append(f"supervisor process {pid_dir.name}")
        if b"edgesim.metrics.relay" in b" ".join(cmdline) and lab.encode() in cmdline:
            found.append(f"UI relay process {pid_dir.name}")
        if _is_lab_bird(pid_dir, lab):
            found.append(f"bird process {pid_dir.name}")
    if LabState(lab).exists():
        found.append(f"state directory {LabState(lab).dir}")
    if lock_file(lab).exists():
        found.append(f"lock file {lock_file(lab)}")
    pins = Path("/sys/fs/bpf/edgesim") / lab
    if pins.exists():
        found.append(f"BPF pins {pins}")
    return found


def _is_lab_bird(pid_dir: Path, lab: str) -> bool:
    """A BIRD of the lab: the supervisor starts it in the lab's state directory (its paths are relative)."""
    try:
        if (pid_dir / "comm").read_text().strip() != "bird":
            return False
        cwd = os.readlink(pid_dir / "cwd").removesuffix(" (deleted)")
    except OSError:
        return False
    return Path(cwd) == LabState(lab).dir


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind():
    """After the whole session: no test lab may have left anything on the machine."""
    yield
    if os.geteuid() != 0:
        return
    left = [item for lab in TEST_LABS for item in leftovers(lab)]
    # The Vagrant job's guest: its containers, and any network or volume in edgesim's Docker engine.
    left += vagrant_engine.leftovers(job_only=True)
    assert not left, f"the test session left lab objects behind: {left}"
