"""Waiting for a condition with a deadline: one loop instead of one per caller."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from edgesim.errors import EdgesimError, Problem

T = TypeVar("T")


@dataclass(frozen=True)
class Waited(Generic[T]):
    """How a wait ended: the last value probed, the seconds it took, and whether the condition held."""

    value: T
    seconds: float
    done: bool


def wait_until(
    probe: Callable[[], T],
    ready: Callable[[T], bool] = bool,
    *,
    timeout: float,
    interval: float,
    failure: Callable[[T], Problem] | None = None,
) -> Waited[T]:
    """Probe every `interval` s until `ready(value)`, for at most `timeout` s.

    The probe runs at least once, and once more after the deadline has passed, so a slow probe still gets
    its last look. On time-out: with `failure`, raise EdgesimError with the Problem it makes of the last
    value (the caller words its own message); without, return with done=False for the caller to decide.
    """
    started = time.monotonic()
    while True:
        value = probe()
        elapsed = time.monotonic() - started
        if ready(value):
            return Waited(value, elapsed, True)
        if elapsed > timeout:
            if failure is not None:
                raise EdgesimError(failure(value))
            return Waited(value, elapsed, False)
        time.sleep(interval)
