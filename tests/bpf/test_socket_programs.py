"""The two socket-layer programs on real sockets in a scratch namespace: the DNS socket filter's per-source
bucket (one source over its rate does not touch another's), and sk_lookup's choice of binding."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from edgesim import namespaces
from edgesim.bpf import loader, sklookup
from edgesim.dispatch import maps as dispatch_maps
from edgesim.dispatch.bindings import Binding, BindingTable
from edgesim.dns import filtermaps
from edgesim.dns.section import DnsLimit
from tests.bpf.scratch import scratch_netns

PREFIX = IPv4Network("198.51.100.64/26")


@pytest.fixture
def scratch() -> Iterator[str]:
    """A namespace with loopback up and PREFIX local on it; removed with everything in it."""
    with scratch_netns("dnsock", PREFIX) as name:
        yield name


def _drain(sock: socket.socket) -> list[str]:
    sources = []
    sock.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:
            sources.append(sock.recvfrom(64)[1][0])
    return sources


def test_one_source_over_its_rate_leaves_another_alone(scratch: str) -> None:
    bpf = loader.compile_program(Path("sock_filter.c"))
    fd = loader.load_socket_filter(bpf, "dns_filter")
    filtermaps.set_limit(bpf, DnsLimit(rate=1, burst=5))
    with namespaces.inside(scratch):
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        loader.attach_socket_filter(server, fd)
        server.bind(("127.0.0.1", 5353))
        flooder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        flooder.bind(("127.0.0.2", 0))
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other.bind(("127.0.0.3", 0))
    with server, flooder, other:
        for _ in range(50):
            flooder.sendto(b"q", ("127.0.0.1", 5353))
        for _ in range(3):
            other.sendto(b"q", ("127.0.0.1", 5353))
        received = _drain(server)
    assert received.count("127.0.0.2") == 5 and received.count("127.0.0.3") == 3
    counts = {s.address: (s.passed, s.dropped) for s in filtermaps.source_counters(bpf)}
    assert counts == {"127.0.0.2": (5, 45), "127.0.0.3": (3, 0)}
    assert filtermaps.totals(bpf) == {"sources": 2, "passed": 8, "dropped": 45, "unparsed": 0}
    # Counting only: the same flood passes, still counted per source.
    filtermaps.set_limit(bpf, DnsLimit(rate=1, burst=5, enabled=False))
    assert filtermaps.top_sources(filtermaps.source_counters(bpf), 1)[0].address == "127.0.0.2"


def _listener(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(16)
    sock.settimeout(2.0)
    return sock


def _reaches(address: str, port: int, listeners: dict[str, socket.socket]) -> str:
    """Which listener accepts a connection to address:port ('refused' when none does)."""
    try:
        client = socket.create_connection((address, port), timeout=2.0)
    except ConnectionRefusedError:
        return "refused"
    with client:
        for name, listener in listeners.items():
            listener.setblocking(False)
            try:
                accepted, _ = listener.accept()
            except BlockingIOError:
                continue
            with accepted:
                assert accepted.getsockname() == (address, port)  # the address the client dialled
                return name
    return "nobody"


def test_sk_lookup_takes_the_most_specific_binding(scratch: str) -> None:
    bpf = loader.compile_program(Path("sk_dispatch.c"))
    prog = sklookup.load(bpf, "dispatch")
    sockets_fd = loader.map_fd(bpf, "sockets")
    table = BindingTable()
    for binding in (
        Binding(label="all", prefix=PREFIX),
        Binding(label="web", prefix=IPv4Network("198.51.100.64/30"), port=80),
        Binding(label="nosock", prefix=IPv4Network("198.51.100.96/27"), port=80),
    ):
        table = table.with_binding(binding)
    dispatch_maps.sync_bindings(bpf, table)
    with namespaces.inside(scratch):
        listeners = {"all": _listener(7100), "web": _listener(7101)}
        link = sklookup.attach(prog, "/proc/thread-self/ns/net")
        try:
            for label, sock in listeners.items():
                sklookup.sockmap_set(sockets_fd, table.labels[label], sock.fileno())
            seen = {
                ("198.51.100.70", 1234): _reaches("198.51.100.70", 1234, listeners),
                ("198.51.100.65", 80): _reaches("198.51.100.65", 80, listeners),
                ("198.51.100.65", 81): _reaches("198.51.100.65", 81, listeners),
                ("198.51.100.100", 80): _reaches("198.51.100.100", 80, listeners),
                ("127.0.0.1", 7101): _reaches(
                    "127.0.0.1", 7101, listeners
                ),  # no binding: the kernel's lookup
            }
        finally:
            os.close(link)
            for sock in listeners.values():
                sock.close()
    assert seen == {
        ("198.51.100.70", 1234): "all",
        ("198.51.100.65", 80): "web",  # /30 beats /26
        ("198.51.100.65", 81): "all",  # the /30 binds port 80 only
        ("198.51.100.100", 80): "refused",  # bound to a label with no socket
        ("127.0.0.1", 7101): "web",
    }
    counters = dispatch_maps.label_counters(bpf, table)
    assert counters["nosock"] == {"lookups": 1, "misses": 1, "drops": 1}
    assert counters["all"]["lookups"] == 2 and counters["web"]["lookups"] == 1
    assert dispatch_maps.totals(bpf) == {"no_binding": 1, "assigned": 3}
