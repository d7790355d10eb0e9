"""The drain-pace check judges a backlogged connection by how fast its unsent bytes leave; never idle ones."""

from __future__ import annotations

from edgesim.services.drain import DrainMonitor
from edgesim.services.origin import parse_send

MIN = 16384.0
WINDOW = 4.0
STEP = 0.25


def run(rate: float, seconds: float, backlog: int = 50000, burst: float = 0.0) -> float | None:
    """A writer keeping `backlog` bytes unsent while the peer drains `rate` B/s (bursts every `burst` s)."""
    monitor = DrainMonitor(MIN, WINDOW)
    written = drained = 0.0
    t = 0.0
    while t <= seconds:
        if burst:
            if t and abs(t / burst - round(t / burst)) < 1e-9:
                drained += rate * burst
        else:
            drained = rate * t
        written = drained + backlog  # the writer tops the queue up as it drains
        verdict = monitor.observe(t, int(written), backlog)
        if verdict is not None:
            return t
        t = round(t + STEP, 6)
    return None


def test_a_client_at_twice_the_pace_is_never_cut() -> None:
    assert run(2 * MIN, 60) is None


def test_a_bursty_client_at_twice_the_pace_is_never_cut() -> None:
    # A receiver reopening its window every second (half its buffer at a time) drains in bursts.
    assert run(2 * MIN, 60, burst=1.0) is None


def test_a_client_below_the_pace_is_cut_after_one_window() -> None:
    assert run(MIN / 2, 60) == WINDOW


def test_a_stalled_client_is_cut_after_one_window() -> None:
    assert run(0, 60) == WINDOW


def test_a_connection_with_nothing_unsent_is_not_judged() -> None:
    monitor = DrainMonitor(MIN, WINDOW)
    assert all(monitor.observe(t * STEP, 1000, 0) is None for t in range(100))


def test_a_momentarily_empty_kernel_queue_is_still_a_backlog_while_the_writer_waits() -> None:
    monitor = DrainMonitor(MIN, WINDOW)
    verdicts = [monitor.observe(t * STEP, 0, 0 if t % 4 == 0 else 5000, waiting=30000) for t in range(20)]
    assert verdicts[-1] == 0.0  # nothing drained for 4.75 s: cut, empty samples or not


def test_catching_up_resets_the_window() -> None:
    monitor = DrainMonitor(MIN, WINDOW)
    for t in range(15):  # 3.5 s stalled with a backlog…
        assert monitor.observe(t * STEP, 0, 5000) is None
    assert monitor.observe(15 * STEP, 5000, 0) is None  # …then the peer caught up
    assert monitor.observe(16 * STEP, 5000, 100) is None  # a new stall starts from here


def test_origin_commands() -> None:
    assert parse_send(b"send 8192\n") == (8192, 0.0)
    assert parse_send(b"send 10 after 300\n") == (10, 0.3)
    assert parse_send(b"send lots\n") is None
    assert parse_send(b"hello\n") is None
