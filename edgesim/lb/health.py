"""Health checks of the edges over the backplane: an edge that stops answering leaves every table.

One checker per lab, whose verdicts every agent applies. Every edge's agent runs a `HealthChecker`; the
one that holds the lab's health lock (`lb-health.lock`, flock: the first agent up, and when it dies the
kernel frees the lock and the next agent to try takes it over within a round) checks every edge, itself
included, with an HTTP request to its backplane address every INTERVAL_S, each allowed TIMEOUT_S.
FAILS_TO_DOWN failures in a row mark an edge down; RISES_TO_UP success brings it back. After each round
it writes the verdicts (round number, failing edges, the round they last changed in, every edge's
streak) to `lb-health.json`; every agent, the checker's own included, reads that file every INTERVAL_S
and recomputes its table when the failing set changed. So the checks grow with the edges (N a round,
not N x N) and every agent applies the same verdict: their tables cannot disagree about who failed.

An edge counts as failing only once it has answered at least once: at start every edge is in the table
(the LB state's default) and `up` waits until every service accepts connections, so edges whose service
is still starting cost no table changes (64 agents each recomputing 65,537 buckets per edge coming up).

An edge that stops answering is out of every table at most FAILS_TO_DOWN x (INTERVAL_S + TIMEOUT_S) +
one read of the verdicts (INTERVAL_S) + the table write after its last good answer (≈ 2.5 s).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgesim import locks
from edgesim.files import atomic_write_text
from edgesim.lb.probe import Probe, check_all

INTERVAL_S = 0.2
# Generous: a busy 2-core host can delay a healthy Python server's answer by a few hundred ms, and a
# false alarm moves new connections for nothing.
TIMEOUT_S = 0.5
FAILS_TO_DOWN = 3
RISES_TO_UP = 1  # back at the first good answer: removal is the cautious direction
# The bound stated in the README (plus the table write, well under 0.2 s).
DETECTION_BOUND_S = FAILS_TO_DOWN * (INTERVAL_S + TIMEOUT_S) + INTERVAL_S + 0.2
# Beside the LB state file in the lab's state directory.
VERDICTS_FILE = "lb-health.json"
LOCK_FILE = "lb-health.lock"


@dataclass
class Verdicts:
    """What the lab's checker found: the agents' tables leave out `unhealthy`."""

    round: int = 0  # rounds the lab's checkers (one at a time) completed
    since: int = 0  # the round `unhealthy` last changed in: the tables applying it reflect that round
    unhealthy: list[str] = field(default_factory=list)
    # > 0: answers in a row, < 0: failures in a row, 0: never answered (never counted as failing)
    streaks: dict[str, int] = field(default_factory=dict)
    answered: list[str] = field(default_factory=list)  # edges that answered at least once
    checker: str = ""  # the edge whose agent checks now

    def key(self) -> tuple[int, tuple[str, ...]]:
        """What a table depends on: the failing set and the round it was decided in."""
        return self.since, tuple(self.unhealthy)


def read(path: Path) -> Verdicts | None:
    """The verdicts at `path`, or None before the first round (or when the file cannot be read)."""
    try:
        return Verdicts(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def judge(previous: Verdicts, results: dict[str, bool], checker: str) -> Verdicts:
    """The verdicts after one round of results: streaks, then who crossed FAILS_TO_DOWN or RISES_TO_UP."""
    streaks = dict(previous.streaks)
    answered = set(previous.answered)
    unhealthy = set(previous.unhealthy)
    for name, ok in results.items():
        streak = streaks.get(name, 0)
        streaks[name] = max(streak, 0) + 1 if ok else min(streak, 0) - 1
        if ok:
            answered.add(name)
        if name in unhealthy and streaks[name] >= RISES_TO_UP:
            unhealthy.discard(name)
        elif name not in unhealthy and name in answered and streaks[name] <= -FAILS_TO_DOWN:
            unhealthy.add(name)
    now = previous.round + 1
    changed = unhealthy != set(previous.unhealthy)
    return Verdicts(
        round=now,
        since=now if changed else previous.since,
        unhealthy=sorted(unhealthy),
        streaks=streaks,
        answered=sorted(answered),
        checker=checker,
    )


class HealthChecker:
    """One agent's part: check every edge while it holds the lab's lock, and apply the lab's verdicts.

    `on_change(verdicts)` is called from the thread when the failing set (or the round it was decided in)
    differs from the last one applied, and once with the verdicts found at start.
    """

    def __init__(
        self,
        edge: str,
        targets: Sequence[tuple[str, str]],
        port: int,
        directory: Path,
        on_change: Callable[[Verdicts], None],
    ):
        self.edge = edge
        self.probes = {name: Probe(address, port) for name, address in targets}
        self.path = directory / VERDICTS_FILE
        self.lock = directory / LOCK_FILE
        self.on_change = on_change
        self._lock_fd: int | None = None  # the lab's health lock, while this agent is its checker
        self.applied: tuple[int, tuple[str, ...]] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lb-health", daemon=True)

    def start(self) -> None:
        """Start following (and, with the lock, checking)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop (returns once the thread ended); the lock goes back with it, to the next agent to try."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        for probe in self.probes.values():
            probe.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @property
    def checking(self) -> bool:
        """Whether this agent is the lab's checker now."""
        return self._lock_fd is not None

    def verdicts(self) -> Verdicts | None:
        """The lab's verdicts as the file says now (None before the first round)."""
        return read(self.path)

    def _run(self) -> None:
        self._follow()
        while not self._stop.wait(INTERVAL_S):
            if self._lock_fd is None:
                self._take_over()
            if self._lock_fd is not None:
                self.check_once()
            self._follow()

    def _take_over(self) -> None:
        self._lock_fd = locks.try_own(self.lock)
        if self._lock_fd is not None:
            print(f"lb health: {self.edge} checks the lab's edges now", flush=True)

    def check_once(self) -> Verdicts:
        """One round of checks of every edge, and the verdicts written for every agent."""
        # Continue from the file: a checker taking over keeps the round count and every streak.
        previous = read(self.path) or Verdicts()
        started = time.monotonic()
        results = check_all(self.probes, TIMEOUT_S)
        verdicts = judge(previous, results, self.edge)
        if verdicts.since == verdicts.round:
            took = time.monotonic() - started
            print(
                f"lb health: round {verdicts.round} ({took:.2f} s): failing edges now "
                f"{verdicts.unhealthy or 'none'}",
                flush=True,
            )
        atomic_write_text(self.path, json.dumps(asdict(verdicts)) + "\n")
        return verdicts

    def _follow(self) -> None:
        verdicts = read(self.path)
        if verdicts is None or verdicts.key() == self.applied:
            return
        self.applied = verdicts.key()
        self.on_change(verdicts)
