"""Socket dispatch end to end: real TCP connections from a client through the router's ECMP to the edges,
where sk_lookup hands them to the socket registered under their binding's label."""

from __future__ import annotations

import random
import socket
from ipaddress import IPv4Network

import pytest

from edgesim import namespaces
from edgesim.dispatch import control
from edgesim.plan import LabPlan
from tests.e2e.conftest import E2E_LAB

CLIENT = "client1"
PORTS = 100


def spectrum_prefix(lab: LabPlan) -> IPv4Network:
    assert lab.dispatch is not None
    return next(b.prefix for b in lab.dispatch.table.bindings if b.label == "spectrum")


def exchange(lab: LabPlan, address: str, port: int, line: bytes, timeout: float = 3.0) -> bytes:
    """Connect from the client, send one line, return what comes back until the peer stops."""
    with namespaces.inside(lab.nodes[CLIENT].netns):
        sock = socket.create_connection((address, port), timeout=timeout)
    with sock:
        sock.sendall(line)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        return answer


def http_get(lab: LabPlan, address: str, port: int = 80) -> str:
    """The body an HTTP GET gets (the echo services answer with their name)."""
    request = f"GET / HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n".encode()
    return exchange(lab, address, port, request).decode(errors="replace").split("\r\n\r\n", 1)[-1]


def label_sum(label: str, counter: str) -> int:
    return sum(edge["labels"][label][counter] for edge in control.counters(E2E_LAB).values())


def test_every_port_of_the_spectrum_prefix_reaches_the_origin(lab: LabPlan) -> None:
    prefix = spectrum_prefix(lab)
    rng = random.Random(13)
    # Hosts of the prefix but its broadcast address (the loopback's prefix route makes that one broadcast).
    addresses = [str(a) for a in prefix.hosts()]
    targets = [(rng.choice(addresses), port) for port in rng.sample(range(1, 65536), PORTS)]
    before = label_sum("spectrum", "lookups")
    for address, port in targets:
        line = f"hello {address}:{port}\n".encode()
        assert exchange(lab, address, port, line) == line, (address, port)  # the origin echoes it
    assert label_sum("spectrum", "lookups") - before >= PORTS


def test_an_unbound_address_behaves_as_before(lab: LabPlan) -> None:
    # The VIP's HTTP service is bound the ordinary way: no binding covers it, the kernel's lookup finds it.
    assert http_get(lab, lab.vips[0]).strip().startswith("edge")
    # An address of the VIP pool that no binding covers and no socket is bound to: refused, as without
    # sk_lookup (the edges' loopback holds only the VIP and the bound prefixes).
    with pytest.raises(ConnectionRefusedError):
        http_get(lab, lab.vips[0], 81)


def test_two_services_share_port_80_on_their_own_prefixes(lab: LabPlan) -> None:
    assert lab.dispatch is not None
    for binding in lab.dispatch.table.bindings:
        if binding.port != 80:
            continue
        for address in list(binding.prefix.hosts())[:3]:
            body = http_get(lab, str(address))
            assert body.strip().endswith(binding.label), (address, body)


def test_without_its_registration_the_spectrum_prefix_drops_and_counts(lab: LabPlan) -> None:
    prefix = spectrum_prefix(lab)
    address = str(next(prefix.hosts()))
    registration = next(r for r in lab.dispatch.table.registrations if r.label == "spectrum")
    drops = label_sum("spectrum", "drops")
    control.unregister(E2E_LAB, "spectrum")
    try:
        refused = 0
        for port in (1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000):
            try:
                exchange(lab, address, port, b"x\n", timeout=2.0)
            except (ConnectionRefusedError, TimeoutError):
                refused += 1
        assert refused == 8
        assert label_sum("spectrum", "drops") - drops >= 8
        assert label_sum("spectrum", "misses") > 0
    finally:
        control.register(E2E_LAB, "spectrum", registration.service, registration.listen)
    assert exchange(lab, address, 1000, b"back\n") == b"back\n"
