"""Health checks of the edges over the backplane: an edge that stops answering leaves the table.

Every agent checks every edge (itself included) with an HTTP request to its backplane address every
INTERVAL_S, each allowed TIMEOUT_S. FAILS_TO_DOWN failures in a row mark an edge down; RISES_TO_UP
successes in a row bring it back. An edge that stops answering is therefore out of every table at most
FAILS_TO_DOWN x (INTERVAL_S + TIMEOUT_S) + the table write after its last good answer (≈ 1.3 s).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Sequence

INTERVAL_S = 0.2
TIMEOUT_S = 0.2
FAILS_TO_DOWN = 3
RISES_TO_UP = 3
# The bound stated in the README and checked by the e2e test (plus the table write, well under 0.2 s).
DETECTION_BOUND_S = FAILS_TO_DOWN * (INTERVAL_S + TIMEOUT_S) + 0.2


def answers(address: str, port: int, timeout: float = TIMEOUT_S) -> bool:
    """Whether the HTTP service at address:port answers a request with a status line within `timeout`."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"HEAD /health HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n")
            answer = b""
            # Read to the end, so the close is a clean FIN rather than a reset for unread data.
            while chunk := sock.recv(4096):
                answer += chunk
            return answer.startswith(b"HTTP/1.")
    except OSError:
        return False


class HealthChecker:
    """Probes a fixed set of edges in a thread; calls `on_change(unhealthy names)` when the set changes."""

    def __init__(self, targets: Sequence[tuple[str, str]], port: int, on_change: Callable[[set[str]], None]):
        self.targets = list(targets)  # (name, backplane address)
        self.port = port
        self.on_change = on_change
        self.unhealthy: set[str] = set()
        self._streak = {name: 0 for name, _ in self.targets}  # > 0: successes in a row, < 0: failures
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lb-health", daemon=True)

    def start(self) -> None:
        """Start probing."""
        self._thread.start()

    def stop(self) -> None:
        """Stop probing (returns once the thread ended)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL_S):
            self.probe_once()

    def probe_once(self) -> None:
        """Probe every edge once, in parallel, and report a change of the unhealthy set."""
        results: dict[str, bool] = {}
        threads = [
            threading.Thread(target=lambda n=name, a=address: results.__setitem__(n, answers(a, self.port)))
            for name, address in self.targets
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        changed = False
        for name, ok in results.items():
            streak = self._streak[name]
            self._streak[name] = max(streak, 0) + 1 if ok else min(streak, 0) - 1
            if name in self.unhealthy and self._streak[name] >= RISES_TO_UP:
                self.unhealthy.discard(name)
                changed = True
            elif name not in self.unhealthy and self._streak[name] <= -FAILS_TO_DOWN:
                self.unhealthy.add(name)
                changed = True
        if changed:
            self.on_change(set(self.unhealthy))
