"""The drain-pace check: does a backlogged connection's reader keep up with the minimum pace?

What the reader has taken is read from the kernel, not from the proxy's copies: the right edge of the window
the peer advertises (`tcpi_bytes_acked + tcpi_snd_wnd`) moves exactly as the peer's application reads, and
stands still while it does not, however full its receive buffer is. The same counters exist when the kernel
moves the bytes itself (a spliced connection), where the proxy copies nothing it could count.

The judge is a token bucket, not a rate between two samples. While bytes wait for the peer, the reader owes
`min_bytes_per_s` every second; what it takes pays the debt off (never below zero: a reader cannot bank a
head start). The connection is cut when the debt reaches one window's worth (`min_bytes_per_s x window_s`),
or the peer's largest advertised window if that is more. Why: a receiver reopens its window in steps (it
waits until about half of it is free, RFC 1122's silly-window avoidance), so the right edge lags what was
read by up to half a window; a rate measured between two samples a window apart therefore sees a steady
reader at 1.2x the minimum as low as 0.8x (issue 17: readers at 20,000 B/s were cut, measured at 13,891 B/s).
A debt, in contrast, never exceeds that lag for a reader at or above the minimum, so such a reader is never
cut; a reader at a fraction f of the minimum is cut after window / (1 - f) (a stalled one after one window);
a connection with nothing waiting accrues no debt at all.

Only the peer's slowness is charged: an interval counts when bytes waited at both of its ends, and for at
most `max_step_s`. A sample that comes later than that means the proxy itself was late (a starved CPU: on the
shared 2-core test machine, a proxy was seen to miss 4 s of samples at once, and its readers, who could only
read what it had sent, would have been charged for all of it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cut:
    """Why a connection is cut: the reader's pace over the stretch it fell behind, and its debt."""

    rate: float  # bytes/s taken while behind
    debt: float  # bytes behind the minimum pace
    seconds: float  # how long it has been behind


class DrainMonitor:
    """Judges one socket's reader from samples of the kernel's counters taken every few hundred ms."""

    def __init__(self, min_bytes_per_s: float, window_s: float, max_step_s: float = 0.5) -> None:
        self.min_rate = min_bytes_per_s
        self.window = window_s
        self.max_step = max_step_s
        self.debt = 0.0
        self.peak_window = 0
        self.last: tuple[float, int, bool] | None = None  # (time, consumed, backlogged) of the last sample
        # The stretch since the debt was last zero: backlogged seconds and bytes taken, for the verdict.
        self.behind_s = 0.0
        self.behind_bytes = 0

    def allowance(self) -> float:
        """The debt that cuts: one window at the minimum pace, or the peer's largest window if more."""
        return max(self.min_rate * self.window, float(self.peak_window))

    def observe(self, t: float, consumed: int, backlogged: bool, peer_window: int = 0) -> Cut | None:
        """Add a sample; a Cut once the reader is an allowance behind the minimum pace, else None.

        `consumed`: the right edge of the peer's window (bytes_acked + snd_wnd), any origin; `backlogged`:
        bytes wait unsent for this peer (in the kernel or the proxy); `peer_window`: its window now.
        """
        self.peak_window = max(self.peak_window, peer_window)
        if self.last is None:
            self.last = (t, consumed, backlogged)
            return None
        last_t, last_consumed, was_backlogged = self.last
        self.last = (t, consumed, backlogged)
        taken = max(0, consumed - last_consumed)
        charged = min(t - last_t, self.max_step) if backlogged and was_backlogged else 0.0
        self.debt = max(0.0, self.debt + self.min_rate * charged - taken)
        if self.debt == 0.0:
            self.behind_s, self.behind_bytes = 0.0, 0
            return None
        self.behind_s += charged
        self.behind_bytes += taken
        if self.debt < self.allowance():
            return None
        rate = self.behind_bytes / self.behind_s if self.behind_s else 0.0
        return Cut(rate, self.debt, self.behind_s)
