"""HTTP health probes of many edges at once, from one thread: each edge's check is a GET on a kept-open
HTTP/1.1 connection, and one round sends them all and waits for every answer with one selector.

One thread and one socket per edge, whatever the number of edges: a round of 64 checks costs 64 small
writes and reads, not 64 threads started.
"""

from __future__ import annotations

import errno
import selectors
import socket
import time
from collections.abc import Mapping

REQUEST = b"GET /health HTTP/1.1\r\nHost: lb\r\n\r\n"


class Probe:
    """One edge's check over a kept-open connection (opening one per check would show in the edges'
    connection counters); the answer's status line and whole body are read, so the next check on the
    connection starts at its own answer."""

    def __init__(self, address: str, port: int) -> None:
        self.address = address
        self.port = port
        self.sock: socket.socket | None = None
        self.connecting = False
        self.buffer = b""

    def begin(self) -> bool:
        """Start a check: connect (non-blocking) or send the request; False when it failed at once."""
        self.buffer = b""
        try:
            if self.sock is None:
                self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                self.sock.setblocking(False)
                code = self.sock.connect_ex((self.address, self.port))
                if code not in (0, errno.EINPROGRESS):
                    raise OSError(code, "connect")
                self.connecting = code == errno.EINPROGRESS
                if self.connecting:
                    return True
            self.sock.send(REQUEST)  # a few bytes on an idle connection: the socket buffer takes them
            return True
        except OSError:
            self.close()
            return False

    def wants(self) -> int:
        """The selector event this check waits for."""
        return selectors.EVENT_WRITE if self.connecting else selectors.EVENT_READ

    def step(self) -> bool | None:
        """Go on after the selector said ready: None while the answer is incomplete, else whether it was
        a 200 (after False the caller closes the connection, once the selector has let go of it)."""
        assert self.sock is not None
        try:
            if self.connecting:
                code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    raise OSError(code, "connect")
                self.connecting = False
                self.sock.send(REQUEST)
                return None
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionResetError("closed by the server")
            self.buffer += chunk
            done = _complete(self.buffer)
            return done
        except OSError:
            return False

    def close(self) -> None:
        """Drop the connection (the next check opens a new one)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.connecting = False


def _complete(answer: bytes) -> bool | None:
    """None until the head and the whole body arrived; then whether the status is 200."""
    head, found, body = answer.partition(b"\r\n\r\n")
    if not found:
        return None
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    if len(body) < length:
        return None
    return head.startswith(b"HTTP/1.1 200")


def check_all(probes: Mapping[str, Probe], timeout: float) -> dict[str, bool]:
    """One round: every probe checked in parallel, each answer allowed `timeout`; a late one fails (and
    its connection is closed, so a late answer never passes for the next check's)."""
    results: dict[str, bool] = {}
    with selectors.DefaultSelector() as selector:
        for name, probe in probes.items():
            if probe.begin():
                assert probe.sock is not None
                selector.register(probe.sock, probe.wants(), name)
            else:
                results[name] = False
        deadline = time.monotonic() + timeout
        while len(results) < len(probes):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, _ in selector.select(left):
                name = key.data
                probe = probes[name]
                outcome = probe.step()
                if outcome is None:
                    selector.modify(key.fileobj, probe.wants(), name)
                    continue
                selector.unregister(key.fileobj)
                if not outcome:
                    probe.close()
                results[name] = outcome
        for name, probe in probes.items():
            if name not in results:
                selector.unregister(probe.sock)
                probe.close()
                results[name] = False
    return results
