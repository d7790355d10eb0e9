"""The TCP proxy's splice (SOCKMAP) against the real kernel: the proxy and the origin run as their own
processes in a scratch namespace, the client talks to them over loopback, and every stream is checked byte
for byte (edgesim.services.pattern) or by digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edgesim import namespaces
from edgesim.proxy.splice import Splicer
from edgesim.services import pattern
from tests.bpf.scratch import scratch_netns

ORIGIN = "127.0.0.1:9000"
LISTEN = ("127.0.0.1", 8080)
STARTUP_S = 60.0  # the first start compiles the program into the BPF cache

Stats = Callable[[], dict[str, Any]]


@pytest.fixture
def scratch() -> Iterator[str]:
    """A namespace with loopback up; removed with everything in it."""
    with scratch_netns("splice") as name:
        yield name


def _start(scratch: str, tmp_path: Path, *proxy_args: str) -> tuple[list[subprocess.Popen[bytes]], Stats]:
    control = tmp_path / "proxy.sock"
    run = ["ip", "netns", "exec", scratch, sys.executable, "-m"]
    log = (tmp_path / "services.log").open("wb")
    origin = subprocess.Popen([*run, "edgesim.services.origin", "--listen", ORIGIN], stdout=log, stderr=log)
    proxy_cmd = ["edgesim.services.tcp_proxy", "--name", "t", "--listen", "127.0.0.1:8080"]
    proxy_cmd += ["--origin", ORIGIN, "--socket", str(control), *proxy_args]
    proxy = subprocess.Popen([*run, *proxy_cmd], stdout=log, stderr=log)

    def stats() -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(control))
            sock.sendall(b'{"op": "stats"}\n')
            return dict(json.loads(sock.makefile().readline()))

    deadline = time.monotonic() + STARTUP_S
    while True:
        try:
            stats()
            break
        except OSError:
            if time.monotonic() > deadline or proxy.poll() is not None:
                raise AssertionError((tmp_path / "services.log").read_text()) from None
            time.sleep(0.1)
    return [origin, proxy], stats


@pytest.fixture
def proxy(scratch: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stats]:
    """The proxy (with the test's `proxy_args` marker's arguments) and the origin; stopped after the test."""
    marker = request.node.get_closest_marker("proxy_args")
    processes, stats = _start(scratch, tmp_path, *(marker.args if marker else ("--splice",)))
    try:
        yield stats
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


def _client(scratch: str) -> socket.socket:
    with namespaces.inside(scratch):
        sock = socket.socket()
    sock.connect(LISTEN)
    sock.sendall(b"hello\n")
    assert sock.recv(100) == b"hello\n"
    return sock


def _download(sock: socket.socket, count: int, chunk: int = 1 << 20, rate: float | None = None) -> str | None:
    """Have the origin send `count` bytes of the pattern, checked as they come: the first error, or None."""
    sock.sendall(f"pattern {count}\n".encode())
    checker = pattern.Checker()
    started = time.monotonic()
    while checker.offset < count:
        data = sock.recv(min(chunk, count - checker.offset))
        if not data:
            return f"end of stream after {checker.offset} bytes"
        if not checker.feed(data):
            return checker.error
        if rate is not None and (ahead := checker.offset / rate - (time.monotonic() - started)) > 0:
            time.sleep(ahead)
    return None


def _upload(sock: socket.socket, count: int) -> bool:
    """Send `count` random bytes to the origin's sink; whether its digest is theirs."""
    data = os.urandom(count)
    sock.sendall(f"sink {count}\n".encode())
    sock.sendall(data)
    return sock.makefile().readline().strip() == f"sha256 {hashlib.sha256(data).hexdigest()}"


def _copied(stats: Stats) -> int:
    return sum(stats()["copied_bytes"].values())


@pytest.mark.root
@pytest.mark.proxy_args("--splice", "--splice-budget", str(1 << 30))
def test_the_kernel_moves_a_large_stream_both_ways_and_the_proxy_copies_nothing(
    proxy: Stats, scratch: str
) -> None:
    sock = _client(scratch)
    time.sleep(0.1)  # the handover is asked for once the proxy has forwarded the hello
    before = proxy()
    assert before["splice"] == "on" and before["connections"]["spliced"] == 1
    assert _download(sock, 48_000_000) is None
    assert _upload(sock, 24_000_000)
    after = proxy()
    sock.close()
    assert _copied(lambda: after) == _copied(lambda: before), "the proxy copied payload itself"
    redirected = after["kernel"]["redirected_bytes"] - before["kernel"]["redirected_bytes"]
    assert redirected >= 72_000_000
    assert after["kernel"]["pauses"] == 0 and after["kernel"]["redirect_failed"] == 0


@pytest.mark.root
@pytest.mark.proxy_args("--splice", "--splice-budget", str(256 << 10))
def test_a_reader_behind_its_budget_is_copied_for_in_order_and_handed_back(
    proxy: Stats, scratch: str
) -> None:
    """The budget holds a fast sender back (copy mode) while a slow reader catches up; no byte moves."""
    sock = _client(scratch)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    assert _download(sock, 12_000_000, chunk=65536, rate=6e6) is None  # slow: the origin is faster
    assert _download(sock, 24_000_000) is None  # fast again
    kernel = proxy()["kernel"]
    sock.close()
    assert kernel["pauses"] >= 1, kernel  # the budget was spent: the kernel no longer took more
    assert kernel["handovers"] > kernel["pauses"] / 2, kernel  # and the kernel took over again after pauses
    assert _copied(proxy) > 0 and kernel["redirected_bytes"] > 0


@pytest.mark.root
@pytest.mark.proxy_args("--splice")
def test_a_client_that_sends_before_the_splice_keeps_its_order(proxy: Stats, scratch: str) -> None:
    """Bytes that arrive before the sockets are in the socket hash are copied first, then the kernel's."""
    for _ in range(5):
        with namespaces.inside(scratch):
            sock = socket.socket()
        sock.connect(LISTEN)
        sock.sendall(b"pattern 3000000\n")  # at once: it may well be queued before the handover
        checker = pattern.Checker()
        while checker.offset < 3_000_000:
            data = sock.recv(1 << 20)
            assert data and checker.feed(data), checker.error
        sock.close()
    assert proxy()["connections"]["spliced"] >= 5


@pytest.mark.root
def test_the_verdict_program_loads_and_attaches(scratch: str) -> None:
    """The splice's program through the verifier and onto its socket hash (what `--splice` needs)."""
    with namespaces.inside(scratch):
        splicer = Splicer()
    totals = splicer.totals()
    assert set(totals) >= {"redirected_bytes", "passed_bytes", "pauses", "empty_dropped"}
    assert not any(totals.values())
