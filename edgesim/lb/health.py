"""Health checks of the edges over the backplane: an edge that stops answering leaves the table.

Every agent checks every edge (itself included) with an HTTP request to its backplane address every
INTERVAL_S, each allowed TIMEOUT_S. FAILS_TO_DOWN failures in a row mark an edge down; RISES_TO_UP
success brings it back. An edge that stops answering is therefore out of every table at most
FAILS_TO_DOWN x (INTERVAL_S + TIMEOUT_S) + the table write after its last good answer (≈ 2.3 s).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Sequence

INTERVAL_S = 0.2
# Generous: a busy 2-core host can delay a healthy Python server's answer by a few hundred ms, and a
# false alarm moves new connections for nothing.
TIMEOUT_S = 0.5
FAILS_TO_DOWN = 3
RISES_TO_UP = 1  # back at the first good answer: removal is the cautious direction
# The bound stated in the README and checked by the e2e test (plus the table write, well under 0.2 s).
DETECTION_BOUND_S = FAILS_TO_DOWN * (INTERVAL_S + TIMEOUT_S) + 0.2


class Probe:
    """One edge's health check over a kept-open HTTP/1.1 connection: a GET request per check, so the
    checks do not open a connection each time (that would show in the edges' connection counters)."""

    def __init__(self, address: str, port: int) -> None:
        self.address = address
        self.port = port
        self.sock: socket.socket | None = None

    def answers(self, timeout: float = TIMEOUT_S) -> bool:
        """Whether the service answers a request with a status line within `timeout`."""
        try:
            if self.sock is None:
                self.sock = socket.create_connection((self.address, self.port), timeout=timeout)
            self.sock.settimeout(timeout)
            self.sock.sendall(b"GET /health HTTP/1.1\r\nHost: lb\r\n\r\n")
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += self._recv()
            head, _, body = answer.partition(b"\r\n\r\n")
            # Read the whole body too, so the next check on this connection starts at its own answer.
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            while len(body) < length:
                body += self._recv()
            return head.startswith(b"HTTP/1.1 200")
        except OSError:
            self.close()
            return False

    def _recv(self) -> bytes:
        assert self.sock is not None
        chunk = self.sock.recv(4096)
        if not chunk:
            raise ConnectionResetError("closed by the server")
        return chunk

    def close(self) -> None:
        """Drop the connection (the next check opens a new one)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class HealthChecker:
    """Probes a fixed set of edges in a thread; calls `on_change(unhealthy names)` when the set changes."""

    def __init__(self, targets: Sequence[tuple[str, str]], port: int, on_change: Callable[[set[str]], None]):
        self.probes = {name: Probe(address, port) for name, address in targets}
        self.on_change = on_change
        self.unhealthy: set[str] = set()
        self.rounds = 0  # checks of every edge done so far: `up` waits for a few before it trusts the table
        self._streak = dict.fromkeys(self.probes, 0)  # > 0: successes in a row, < 0: failures
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
        for probe in self.probes.values():
            probe.close()

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL_S):
            self.probe_once()

    def probe_once(self) -> None:
        """Probe every edge once, in parallel, and report a change of the unhealthy set."""
        results: dict[str, bool] = {}
        threads = [
            threading.Thread(target=lambda n=name, p=probe: results.__setitem__(n, p.answers()))
            for name, probe in self.probes.items()
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
        self.rounds += 1
        if changed:
            print(f"lb health: failing edges now {sorted(self.unhealthy) or 'none'}", flush=True)
            self.on_change(set(self.unhealthy))
