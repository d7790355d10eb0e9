"""Issue 17 against real labs: one writer per lab, traffic only inside the lab, `--position` via the CLI."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgesim import lab as lab_api
from edgesim import namespaces, runtime
from edgesim.lab import REPO_ROOT
from edgesim.paths import lock_file
from edgesim.plan import LabPlan
from edgesim.state import LabState
from edgesim.tenants import admin
from edgesim.traffic import attacks
from tests.conftest import DOUBLE_LAB, leftovers, require_root
from tests.e2e.conftest import E2E_LAB

SMALL = REPO_ROOT / "topology" / "small.yml"


def edgesim(*args: str) -> subprocess.Popen[str]:
    """The edgesim CLI as a separate process, as a user runs it."""
    return subprocess.Popen(
        [sys.executable, "-m", "edgesim", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def processes(module: str, lab: str) -> list[int]:
    """Pids of `python -m <module>` processes whose command line or namespace belongs to `lab`."""
    found = []
    inside = {
        pid for group in namespaces.pids_in(namespaces.list_with_prefix(f"{lab}-")).values() for pid in group
    }
    for pid_dir in Path("/proc").glob("[0-9]*"):
        try:
            words = (pid_dir / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if module.encode() in words and (lab.encode() in words or int(pid_dir.name) in inside):
            found.append(int(pid_dir.name))
    return found


@pytest.fixture
def double_lab():
    require_root()
    lab_api.down(DOUBLE_LAB, quiet=True)
    yield DOUBLE_LAB
    lab_api.down(DOUBLE_LAB, quiet=True)


def test_two_ups_at_once_make_one_lab(double_lab: str) -> None:
    args = ("up", "--skip-setup", "--topology", str(SMALL), "--lab", double_lab)
    first = edgesim(*args)
    time.sleep(0.3)
    second = edgesim(*args)
    out_first, _ = first.communicate(timeout=300)
    out_second, _ = second.communicate(timeout=300)
    assert first.returncode == 0, out_first
    assert second.returncode == 0, out_second
    assert f"lab {double_lab} is busy" in out_second, "the second up waits for the first and says so"
    assert "already up with this topology; nothing changed" in out_second

    assert len(processes("edgesim.supervisor", double_lab)) == 1
    plan = runtime.running_plan(double_lab)
    for edge in plan.nodes_with_role("edge"):
        agents = namespaces.pids_in([edge.netns])[edge.netns]
        xdp = [p for p in agents if b"edgesim.mitigation.agent" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert len(xdp) == 1, f"{edge.name} runs {len(xdp)} XDP agents"
    status = subprocess.run(
        [sys.executable, "-m", "edgesim", "status", "--lab", double_lab], cwd=REPO_ROOT, capture_output=True
    )
    assert status.returncode == 0, status.stdout.decode() + status.stderr.decode()
    assert lab_api.status(double_lab).healthy

    down = edgesim("down", "--lab", double_lab)
    output, _ = down.communicate(timeout=120)
    assert down.returncode == 0, output
    assert leftovers(double_lab) == []
    assert not lock_file(double_lab).exists() and not LabState(double_lab).exists()


def test_attack_outside_the_lab_is_refused_and_sends_nothing(lab: LabPlan) -> None:
    attacker = lab.nodes[attacks.ATTACKER]
    assert attacker.uplink is not None
    backend = runtime.backend(E2E_LAB)
    before = attacks._tx_packets(backend, attacker, attacker.uplink)
    cli = edgesim("attack", "syn-flood", "--vip", "8.8.8.8", "--seconds", "1", "--lab", E2E_LAB)
    output, _ = cli.communicate(timeout=60)
    sent = attacks._tx_packets(backend, attacker, attacker.uplink) - before
    assert cli.returncode == 1, output
    assert output.startswith(
        f"error: --vip: 8.8.8.8 is not an address of lab {E2E_LAB}; traffic never leaves"
    )
    assert len(output.strip().splitlines()) == 1, output
    assert sent <= 2, f"{sent} packets left the attacker (ARP at most)"


def test_rule_add_with_position_through_the_cli(lab: LabPlan) -> None:
    rule = "ip daddr 203.0.113.100 tcp dport 8081 accept"
    cli = edgesim("tenant", "rule", "add", "acme", rule, "--position", "1", "--lab", E2E_LAB)
    output, _ = cli.communicate(timeout=60)
    try:
        assert cli.returncode == 0, output
        assert "Traceback" not in output
        assert admin.list_tenants(E2E_LAB).tenants["acme"].rules[0] == rule
    finally:
        if rule in admin.list_tenants(E2E_LAB).tenants["acme"].rules:
            change = admin.remove_rule(E2E_LAB, "acme", rule)
            admin.wait_applied(E2E_LAB, change.revision)
