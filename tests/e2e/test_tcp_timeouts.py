"""The TCP timeout lab, end to end: every case runs for real and dies when (and how) the kernel's rules say.

All cases run once, side by side, in the experiment's own lab (`<prefix>tcp`, topology/tcplab.yml): ~30 s.
Each case's measured death time must fall in its predicted window: never earlier than the prediction minus
0.1 s (kernel timers do not fire early; the anchors are kernel packet timestamps), never later than the
prediction plus the most the kernel's timer wheel can delay the chain of timers involved (one granule per
timer: at HZ=250, 32 ms for timers under 2 s, 256 ms under 16 s) plus 0.35 s for the application thread to run
on a loaded 2-core machine. The number of retransmissions or probes seen on the wire must match exactly.
"""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from edgesim.experiments.tcp_timeouts import report, runner
from edgesim.experiments.tcp_timeouts.cases import CASES
from edgesim.experiments.tcp_timeouts.post import POST_CASES_BY_NAME, QUICK_POST_CASES
from edgesim.experiments.tcp_timeouts.records import CaseResult
from edgesim.lab import REPO_ROOT
from edgesim.state import LabState
from tests.conftest import TCP_CLI_LAB, TCP_LAB, leftovers, require_root


@pytest.fixture(scope="module")
def results() -> dict[str, CaseResult]:
    require_root()
    try:
        names = [c.name for c in CASES] + list(QUICK_POST_CASES)
        found = runner.run(names, lab=TCP_LAB, console=Console(stderr=True, quiet=True))
    finally:
        assert leftovers(TCP_LAB) == []
    return {r.name: r for r in found}


@pytest.mark.parametrize("name", [c.name for c in CASES] + list(QUICK_POST_CASES))
def test_case_dies_as_the_kernel_algorithm_predicts(results: dict[str, CaseResult], name: str) -> None:
    result = results[name]
    assert result.error is None, result.error
    pred = result.prediction
    summary = (
        f"{name}: died {result.died_at_s} {result.errno}, predicted {pred.died_at_s} "
        f"[{pred.low_s}, {pred.high_s}] {pred.errno}; {pred.basis}"
    )
    if pred.died_at_s is None:
        assert result.died_at_s is None, summary
    else:
        assert result.died_at_s is not None, summary
        assert pred.low_s <= result.died_at_s <= pred.high_s, summary
        assert result.errno == pred.errno, summary
    assert result.count == pred.count, f"{name}: {pred.count_kind}: {result.count}, predicted {pred.count}"
    assert result.ok


def test_timelines_show_the_timer_kinds_the_cases_exercise(results: dict[str, CaseResult]) -> None:
    seen = {name: {t.timer for t in r.timers} for name, r in results.items()}
    assert "keepalive" in seen["idle-keepalive"]
    assert "persist" in seen["zero-window"]
    assert "on" in seen["busy-retries2"]
    assert "on" in seen["syn-recv"]  # the request socket's SYN-ACK timer
    assert seen["idle-no-keepalive"] == {"off"}
    # The dying socket's counter climbs as the packets go out.
    probes = [t.probes for t in results["keepalive-uto-large"].timers if t.socket == "client"]
    assert max(probes) == 4


def test_the_posts_cases_stand_next_to_the_posts_figures(results: dict[str, CaseResult]) -> None:
    # The keepalive cases behave as on the post's 5.2 kernel; the SYN-SENT one with a user timeout does not
    # (the post's four SYNs bunched at the 5 s mark are gone), and the report must say why.
    posts = [results[name] for name in QUICK_POST_CASES]
    text = Console(width=400, record=True, file=io.StringIO())
    text.print(report.against_post(posts))
    rendered = text.export_text()
    for result in posts:
        _, figure = POST_CASES_BY_NAME[result.name]
        assert f"{figure.died_s:.2f} s, {figure.packets}" in rendered, result.name
        why = report.difference(result, figure)
        same = abs(result.prediction.died_at_s - figure.died_s) <= report.SAME_DEATH_S
        assert (why == "") == (same and result.prediction.count == figure.packets), (result.name, why)
    for name in ("post-idle-keepalive", "post-keepalive-uto-5", "post-keepalive-uto-12.5"):
        assert report.difference(results[name], POST_CASES_BY_NAME[name][1]) == "", name
    assert report.difference(
        results["post-syn-sent-user-timeout"], POST_CASES_BY_NAME["post-syn-sent-user-timeout"][1]
    )


def test_dropped_packets_are_marked(results: dict[str, CaseResult]) -> None:
    syn_recv = results["syn-recv"].packets
    assert all(p.dropped for p in syn_recv if p.kind == "syn-ack")
    assert not any(p.dropped for p in results["idle-keepalive"].packets if p.kind == "syn")


def test_the_task_writes_json_and_plots(tmp_path: Path) -> None:
    require_root()
    out = tmp_path / "out.json"
    plots = tmp_path / "plots"
    cmd = [
        sys.executable,
        "-m",
        "edgesim",
        "experiment",
        "tcp-timeouts",
        "--lab",
        TCP_CLI_LAB,
        "--case",
        "syn-sent-syncnt",
        "--param",
        "TCP_SYNCNT=2",
        "--json",
        str(out),
        "--plots",
        str(plots),
    ]
    done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "predicted" in done.stdout
    (case,) = json.loads(out.read_text())
    assert {"name", "params", "died_at_s", "errno", "packets", "timers"} <= set(case)
    assert case["params"]["TCP_SYNCNT"] == 2
    assert "tcp_syn_retries" in case["params"] and "tcp_retries2" in case["params"]
    assert {"t_s", "direction", "flags", "length"} <= set(case["packets"][0])
    assert {"t_s", "state", "timer", "expires_ms", "retransmits", "probes"} <= set(case["timers"][0])
    # TCP_SYNCNT=2 with 4 linear timeouts: SYNs at 0,1,2,3,4 s; the (2^3 - 1) s budget ends it at 7 s.
    assert case["errno"] == "ETIMEDOUT" and 6.9 <= case["died_at_s"] <= 7.8
    assert (plots / "syn-sent-syncnt.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert leftovers(TCP_CLI_LAB) == []


def test_bad_parameters_are_user_errors() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "edgesim", "experiment", "tcp-timeouts", "--param", "tcp_retries2=lots"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "error: --param tcp_retries2: 'lots' is not a whole number" in done.stderr
    assert "Traceback" not in done.stderr


def test_ctrl_c_during_the_experiment_leaves_nothing() -> None:
    require_root()
    run = subprocess.Popen(
        [sys.executable, "-m", "edgesim", "experiment", "tcp-timeouts", "--lab", TCP_CLI_LAB, "--plots", ""],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    state = LabState(TCP_CLI_LAB)
    deadline = time.monotonic() + 30
    while (state.read() or {}).get("phase") != "up":
        assert time.monotonic() < deadline and run.poll() is None, "the experiment's lab never came up"
        time.sleep(0.05)
    time.sleep(1.0)  # cases are running: sockets, captures, nftables rules, changed sysctls
    run.send_signal(signal.SIGINT)
    output, _ = run.communicate(timeout=60)
    assert run.returncode == 130, output
    assert "interrupted" in output
    assert leftovers(TCP_CLI_LAB) == []
