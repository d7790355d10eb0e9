"""The L4 LB's health checks: the verdicts from rounds of results, one checker per lab taking over from
another, and a round of real HTTP probes on loopback (answering, refusing, silent, failing servers)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from edgesim.lb import health
from edgesim.lb.health import FAILS_TO_DOWN, HealthChecker, Verdicts, judge
from edgesim.lb.probe import Probe, check_all

EDGES = ("edge1", "edge2", "edge3")


def rounds(results: list[dict[str, bool]], start: Verdicts | None = None) -> Verdicts:
    verdicts = start or Verdicts()
    for result in results:
        verdicts = judge(verdicts, result, "edge1")
    return verdicts


def test_an_edge_is_down_after_its_fails_to_down_th_failure_in_a_row_and_back_at_its_first_answer() -> None:
    up = dict.fromkeys(EDGES, True)
    verdicts = rounds([up, up])
    assert verdicts.unhealthy == [] and verdicts.round == 2
    failing = {**up, "edge2": False}
    verdicts = rounds([failing] * (FAILS_TO_DOWN - 1), verdicts)
    assert verdicts.unhealthy == []
    verdicts = judge(verdicts, failing, "edge1")
    assert verdicts.unhealthy == ["edge2"]
    # The tables reflect the round the verdict was decided in, however late an agent reads it.
    assert verdicts.since == verdicts.round == 2 + FAILS_TO_DOWN
    verdicts = rounds([failing, failing], verdicts)
    assert verdicts.since == 2 + FAILS_TO_DOWN
    verdicts = judge(verdicts, up, "edge1")
    assert verdicts.unhealthy == [] and verdicts.since == verdicts.round


def test_an_edge_that_never_answered_is_not_failing_yet() -> None:
    starting = {"edge1": True, "edge2": True, "edge3": False}
    verdicts = rounds([starting] * (3 * FAILS_TO_DOWN))
    assert verdicts.unhealthy == [] and verdicts.since == 0
    assert verdicts.answered == ["edge1", "edge2"]
    verdicts = rounds([dict.fromkeys(EDGES, True)] + [starting] * FAILS_TO_DOWN, verdicts)
    assert verdicts.unhealthy == ["edge3"]


class Answering(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    status = 200

    def do_GET(self) -> None:
        body = b"ok\n"
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Failing(Answering):
    status = 503


def serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def servers() -> Iterator[dict[str, int]]:
    good, bad = serve(Answering), serve(Failing)
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (the backlog), never answers
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    yield {
        "good": good.server_address[1],
        "bad": bad.server_address[1],
        "silent": silent.getsockname()[1],
        "closed": closed_port,
    }
    for server in (good, bad):
        server.shutdown()
        server.server_close()
    silent.close()


def test_one_round_checks_every_edge_in_parallel_within_one_timeout(servers: dict[str, int]) -> None:
    probes = {name: Probe("127.0.0.1", port) for name, port in servers.items()}
    started = time.monotonic()
    results = check_all(probes, 0.3)
    assert time.monotonic() - started < 0.3 + 0.2
    assert results == {"good": True, "bad": False, "silent": False, "closed": False}
    # The answering edge keeps its connection; the others start over at the next check.
    assert probes["good"].sock is not None
    assert all(probes[n].sock is None for n in ("bad", "silent", "closed"))
    kept = probes["good"].sock
    assert check_all(probes, 0.3)["good"] and probes["good"].sock is kept
    for probe in probes.values():
        probe.close()


def test_one_agent_checks_and_every_agent_applies_and_the_next_takes_over(
    servers: dict[str, int], tmp_path: Path
) -> None:
    targets = [("edge1", "127.0.0.1"), ("edge2", "127.0.0.1")]
    seen: dict[str, list[Verdicts]] = {"a": [], "b": []}
    agents = {
        name: HealthChecker(edge, targets, servers["good"], tmp_path, seen[name].append)
        for name, edge in (("a", "edge1"), ("b", "edge2"))
    }
    try:
        agents["a"].start()
        deadline = time.monotonic() + 5
        while (agents["a"].verdicts() or Verdicts()).round < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        agents["b"].start()
        time.sleep(3 * health.INTERVAL_S)
        assert agents["a"].checking and not agents["b"].checking
        assert seen["a"] and seen["b"] and seen["b"][-1].unhealthy == []
        at_stop = agents["a"].verdicts()
        assert at_stop is not None and at_stop.checker == "edge1"
        agents["a"].stop()  # its lock goes with it: b takes over and counts on
        deadline = time.monotonic() + 5
        while (verdicts := agents["b"].verdicts()) is None or verdicts.checker != "edge2":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert agents["b"].checking
        assert verdicts.round > at_stop.round and verdicts.answered == ["edge1", "edge2"]
    finally:
        for agent in agents.values():
            agent.stop()
