"""The drain-pace check: a reader at or above the minimum pace is never cut, one below it always is.

The reader is modelled the way a Linux receiver behaves towards the sender: its application takes `chunk`
bytes at a steady `rate`, and its advertised right edge (what the proxy reads as bytes_acked + snd_wnd)
advances only once at least half its window is free again (silly-window avoidance), so the sender sees the
reader's progress in steps of up to half a window, at whatever phase against the proxy's 250 ms samples.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from edgesim.services.drain import DrainMonitor
from edgesim.services.origin import parse_send

MIN = 16384.0
WINDOW = 4.0
STEP = 0.25


def run(
    rate: float,
    seconds: float,
    window: int = 24576,
    chunk: int = 4096,
    phase: float = 0.0,
    backlogged: bool = True,
) -> float | None:
    """When a reader of `rate` B/s with a receive `window` is cut (None: never within `seconds`)."""
    monitor = DrainMonitor(MIN, WINDOW)
    read = 0  # what the application has taken
    edge = window  # the right edge it advertised
    t = phase
    next_read = phase
    while t <= seconds + phase:
        # The application's reads up to now, each `chunk` bytes at the reader's pace.
        while rate and next_read <= t:
            read += chunk
            next_read += chunk / rate
            if read + window - edge >= window / 2:
                edge = read + window  # a window update: half the window is free again
        if monitor.observe(t, edge, backlogged, window) is not None:
            return round(t - phase, 6)
        t = round(t + STEP, 6)
    return None


@settings(max_examples=150, deadline=None)
@given(
    factor=st.floats(1.2, 4.0),
    window=st.integers(1024, 65536),
    chunk=st.integers(1, 16384),
    phase=st.floats(0, 1),
)
def test_a_steady_reader_above_the_minimum_is_never_cut(
    factor: float, window: int, chunk: int, phase: float
) -> None:
    assert run(factor * MIN, 60, window, chunk, phase) is None


@settings(max_examples=150, deadline=None)
@given(window=st.integers(1024, 65536), chunk=st.integers(1, 16384), phase=st.floats(0, 1))
def test_a_steady_reader_at_exactly_the_minimum_is_never_cut(window: int, chunk: int, phase: float) -> None:
    # Its debt never exceeds the window-update lag (half a window, or one chunk), below one window's worth.
    assert run(MIN, 60, window, min(chunk, window), phase) is None


@settings(max_examples=150, deadline=None)
@given(
    factor=st.floats(0.0, 0.5),
    window=st.integers(1024, 65536),
    chunk=st.integers(1, 8192),
    phase=st.floats(0, 1),
)
def test_a_reader_at_half_the_minimum_or_less_is_cut(
    factor: float, window: int, chunk: int, phase: float
) -> None:
    cut = run(factor * MIN, 60, window, chunk, phase)
    assert cut is not None
    # A debt of one window's worth builds at (1 - f) x the minimum; plus the head start of a first
    # update and chunk, and one sample.
    head_start = (window + chunk) / MIN
    assert WINDOW <= cut <= WINDOW / (1 - factor) + head_start + STEP


def test_a_stalled_reader_is_cut_after_one_window() -> None:
    assert run(0, 60) == WINDOW


def test_a_large_window_earns_its_own_allowance() -> None:
    # A receiver with a 1 MiB window steps its edge by up to half a megabyte at a time: judged on a 4 s
    # window alone it would look stalled between steps.
    assert run(1.2 * MIN, 120, window=1 << 20, chunk=65536) is None
    assert run(0, 120, window=1 << 20) == (1 << 20) / MIN


def test_the_proxy_being_late_is_not_charged_to_the_reader() -> None:
    monitor = DrainMonitor(MIN, WINDOW, max_step_s=0.5)
    monitor.observe(0.0, 0, True)
    # The proxy missed 5 s of samples: the reader could take only the 20 kB it had been sent.
    assert monitor.observe(5.0, 20_000, True) is None and monitor.debt == 0.0
    monitor.observe(5.25, 20_000, True)
    assert monitor.debt == MIN * STEP


def test_a_connection_with_nothing_waiting_owes_nothing() -> None:
    assert run(0, 60, backlogged=False) is None


def test_taking_bytes_pays_off_the_debt() -> None:
    monitor = DrainMonitor(MIN, WINDOW)
    monitor.observe(0.0, 0, True)
    for i in range(1, 15):  # 3.5 s stalled with a backlog…
        assert monitor.observe(i * STEP, 0, True) is None
    assert monitor.observe(15 * STEP, 100_000, True) is None  # …then the peer took a lot at once
    assert monitor.debt == 0.0
    assert all(monitor.observe((16 + i) * STEP, 100_000, True) is None for i in range(15))
    cut = monitor.observe(31 * STEP, 100_000, True)  # a new stall is judged from its own start
    assert cut is not None and cut.rate == 0.0 and cut.seconds == WINDOW


def test_origin_commands() -> None:
    assert parse_send(b"send 8192\n") == (8192, 0.0)
    assert parse_send(b"send 10 after 300\n") == (10, 0.3)
    assert parse_send(b"send lots\n") is None
    assert parse_send(b"hello\n") is None
