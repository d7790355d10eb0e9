"""The edges' spliced TCP proxy, end to end: client1 through the router to VIP:8080, the kernel moving the
bytes between the edge's two sockets (SOCKMAP) to the origin host and back.

Every byte is checked in order (edgesim.services.pattern) or by digest; the proxies' own copy counters must
stand still while the kernel's redirect counters rise. The transfers stay within the topology's splice
budget, so nothing makes the proxy copy (tests/bpf/test_splice.py spends a budget on purpose).
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time

import pytest

from edgesim import namespaces
from edgesim.load import load_topology
from edgesim.plan import LabPlan
from edgesim.proxy import control
from edgesim.runtime import DEFAULT_TOPOLOGY
from edgesim.services import pattern

pytestmark = [pytest.mark.e2e, pytest.mark.root]

PROXY = load_topology(DEFAULT_TOPOLOGY).proxy
assert PROXY is not None and PROXY.splice
LARGE = 12_000_000  # both ways: within the budget, well beyond any socket buffer


def _totals(lab: LabPlan) -> dict[str, int]:
    """Over every edge: bytes the proxies copied themselves, bytes the kernel redirected, budget pauses."""
    answers = control.stats(lab.lab)
    return {
        "copied": sum(sum(a["copied_bytes"].values()) for a in answers.values()),
        "redirected": sum(a["kernel"]["redirected_bytes"] for a in answers.values()),
        "pauses": sum(a["kernel"]["pauses"] for a in answers.values()),
        "spliced": sum(a["connections"].get("spliced", 0) for a in answers.values()),
    }


def _connect(lab: LabPlan) -> socket.socket:
    with namespaces.inside(lab.nodes["client1"].netns):
        sock = socket.socket()
    sock.settimeout(30)
    sock.connect((lab.vips[0], PROXY.port))
    sock.sendall(b"hello\n")
    assert sock.recv(100) == b"hello\n", "the proxy must relay to the origin and back"
    time.sleep(0.1)  # the proxy asks for the handover once the hello is through
    return sock


def _read_pattern(sock: socket.socket, count: int, rate: float | None = None) -> pattern.Checker:
    sock.sendall(f"pattern {count}\n".encode())
    checker = pattern.Checker()
    started = time.monotonic()
    while checker.offset < count:
        data = sock.recv(min(1 << 20, count - checker.offset) if rate is None else 4096)
        if not data or not checker.feed(data):
            break
        if rate is not None and (ahead := checker.offset / rate - (time.monotonic() - started)) > 0:
            time.sleep(ahead)
    return checker


def test_a_large_transfer_both_ways_is_moved_by_the_kernel_in_order(lab: LabPlan) -> None:
    spliced_before = _totals(lab)["spliced"]
    sock = _connect(lab)  # the splice is made when the origin side is up: counted before the transfer
    before = _totals(lab)
    try:
        checker = _read_pattern(sock, LARGE)
        assert checker.error is None and checker.offset == LARGE, checker.error or f"{checker.offset} bytes"
        upload = os.urandom(LARGE)
        sock.sendall(f"sink {LARGE}\n".encode())
        sock.sendall(upload)
        answer = sock.makefile().readline().strip()
        assert answer == f"sha256 {hashlib.sha256(upload).hexdigest()}", "the origin got other bytes"
        after = _totals(lab)
    finally:
        sock.close()
    assert before["spliced"] > spliced_before, "the connection was not spliced"
    assert after["copied"] == before["copied"], "the proxy copied payload in user space"
    assert after["redirected"] - before["redirected"] >= 2 * LARGE
    assert after["pauses"] == before["pauses"]


def test_a_slow_reader_through_the_spliced_proxy_gets_every_byte_in_order(lab: LabPlan) -> None:
    """A reader at 8x the minimum drain pace for about 5 s: kept, spliced, nothing lost or moved."""
    sock = _connect(lab)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    before = _totals(lab)
    rate = 8 * PROXY.min_drain_bytes_per_s
    try:
        checker = _read_pattern(sock, int(5 * rate), rate=rate)
    finally:
        sock.close()
    assert checker.error is None and checker.offset == int(5 * rate), checker.error or checker.offset
    after = _totals(lab)
    assert after["copied"] == before["copied"] and after["redirected"] > before["redirected"]


def test_proxy_stats_shows_every_edge_splicing(lab: LabPlan) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "edgesim", "proxy", "stats", "--lab", lab.lab],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for edge in lab.nodes_with_role("edge"):
        row = next(line for line in result.stdout.splitlines() if f" {edge.name} " in line)
        assert " on " in row, row
