"""wait_until: returns as soon as the condition holds, and on time-out raises or reports as asked."""

from __future__ import annotations

import itertools

import pytest

from edgesim.errors import EdgesimError, Problem
from edgesim.waiting import wait_until


def test_returns_the_first_ready_value_and_its_time() -> None:
    counter = itertools.count()
    waited = wait_until(lambda: next(counter), lambda n: n >= 3, timeout=5, interval=0.001)
    assert waited.done and waited.value == 3
    assert 0 <= waited.seconds < 5


def test_probes_once_even_with_no_time() -> None:
    waited = wait_until(lambda: "yes", timeout=0, interval=0.001)
    assert waited.done and waited.value == "yes"


def test_time_out_without_failure_reports_the_last_value() -> None:
    waited = wait_until(lambda: ["still wrong"], lambda v: not v, timeout=0.02, interval=0.005)
    assert not waited.done and waited.value == ["still wrong"]
    assert waited.seconds > 0.02


def test_time_out_with_failure_raises_the_callers_problem() -> None:
    with pytest.raises(EdgesimError) as err:
        wait_until(
            lambda: ["a", "b"],
            lambda v: not v,
            timeout=0.01,
            interval=0.005,
            failure=lambda v: Problem("lab x", "not yet: " + "; ".join(v), "look"),
        )
    assert str(err.value) == "lab x: not yet: a; b (hint: look)"
