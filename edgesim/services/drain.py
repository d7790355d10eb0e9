"""The drain-pace check: is a connection's unsent backlog shrinking at least at the minimum pace?

A connection is judged only while it is backlogged (bytes wait unsent, in the kernel or in the writer): the
bytes that left the kernel's unsent queue over the last window are what the writer added minus how much the
queue grew. A peer that stopped
reading, or vanished, drains nothing and is cut after one window; a slow reader that keeps the pace is never
cut; a connection with nothing waiting (idle, or a peer that keeps up) is not judged at all.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    """A moment of one socket: time, bytes the writer has handed to the kernel so far, bytes still unsent."""

    t: float
    written: int
    notsent: int


class DrainMonitor:
    """Judges one socket's drain pace from samples taken every few hundred milliseconds."""

    def __init__(self, min_bytes_per_s: float, window_s: float) -> None:
        self.min_rate = min_bytes_per_s
        self.window = window_s
        self.samples: deque[Sample] = deque()

    def observe(self, t: float, written: int, notsent: int, waiting: int = 0) -> float | None:
        """Add a sample; the drain rate (bytes/s) over the last window if below the minimum, else None.

        `waiting`: bytes the writer holds that the kernel has not taken yet (it counts as backlog: a window
        that opens wide can empty the kernel's queue for a moment before the writer refills it).
        """
        if notsent == 0 and waiting == 0:
            # The peer caught up: whatever came before says nothing about the next stall.
            self.samples.clear()
            return None
        self.samples.append(Sample(t, written, notsent))
        while len(self.samples) > 1 and t - self.samples[1].t >= self.window:
            self.samples.popleft()
        first = self.samples[0]
        if t - first.t < self.window:
            return None
        drained = (written - first.written) - (notsent - first.notsent)
        rate = drained / (t - first.t)
        return rate if rate < self.min_rate else None
