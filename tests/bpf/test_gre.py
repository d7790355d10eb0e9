"""gre.c, table-driven: each case runs one program on one packet (BPF_PROG_TEST_RUN) and checks the verdict,
the packet that comes out and the counter that moved. Root, no namespace needed: the packets go nowhere."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

import pytest
from scapy.layers.inet import GRE, ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet, Raw

from edgesim.bpf import testrun
from edgesim.tenants.gre import GreEndpoint, Route
from edgesim.tenants.spec import MARK_BASE

pytestmark = pytest.mark.root

TC_ACT_OK, TC_ACT_SHOT, TC_ACT_REDIRECT = 0, 2, 7
ANYCAST = IPv4Address("192.0.2.1")
ACME_SITE, GLOBEX_SITE = IPv4Address("100.64.0.7"), IPv4Address("100.64.0.9")
ACME, GLOBEX = IPv4Network("203.0.113.0/25"), IPv4Network("203.0.113.128/25")
INITECH, INITECH_SITE = IPv4Network("203.0.113.64/32"), IPv4Address("100.64.0.11")
CLIENT = "100.64.0.1"
# What the default lab's edges refuse after decapsulation (tenants.planner.refused_ranges).
REFUSED = {
    IPv4Network("198.18.0.0/15"): "infrastructure",
    IPv4Network("198.51.100.0/24"): "anycast",
    IPv4Network("192.0.2.0/24"): "anycast",
    IPv4Network("203.0.113.0/24"): "tenant",
}
ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


@pytest.fixture(scope="module")
def endpoints() -> Iterator[dict[str, GreEndpoint]]:
    """The edge's program (by destination, checks sources and marks) and acme's site router's (by source)."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("tests/bpf need root, and CI must run them")
        pytest.skip("needs root")
    edge = GreEndpoint(ANYCAST, by_source=False, check_source=True, mark_base=MARK_BASE, to_context=True)
    # Tenant 3 (initech) has a tunnel but, on this edge, no namespace (yet): nowhere to route its traffic.
    edge.sync(
        {ACME: Route(1, ACME_SITE), GLOBEX: Route(2, GLOBEX_SITE), INITECH: Route(3, INITECH_SITE)},
        {ACME_SITE: 1, GLOBEX_SITE: 2, INITECH_SITE: 3},
        REFUSED,
        {1: 1, 2: 1},  # the loopback's ifindex: a test run returns the redirect verdict, sends nothing
    )
    site = GreEndpoint(ACME_SITE, by_source=True, check_source=False, mark_base=0)
    site.sync({ACME: Route(1, ANYCAST)}, {ANYCAST: 1})
    yield {"edge": edge, "site": site}
    for endpoint in (edge, site):
        endpoint.program.cleanup()


def tunneled(outer_src: IPv4Address, outer_dst: IPv4Address, inner: Packet, **gre: int) -> Packet:
    return ETH / IP(src=str(outer_src), dst=str(outer_dst), id=0) / GRE(**gre) / inner


TO_ACME = IP(src=CLIENT, dst="203.0.113.100") / TCP(sport=40000, dport=80, flags="S") / Raw(b"hello")
FROM_ACME = IP(src="203.0.113.100", dst=CLIENT) / TCP(sport=80, dport=40000, flags="SA") / Raw(b"world")


@dataclass
class Case:
    """One packet through one program: what must come out, and which counter counts it."""

    name: str
    endpoint: str  # edge | site
    program: str  # encap | decap
    packet: Packet
    verdict: int
    out: Packet | None  # the frame after the program; None: unchanged
    counter: tuple[int, str]  # (tenant, verdict) that counts it
    mark: int = 0


CASES = [
    Case(
        "edge: to acme's prefix, marked for acme -> GRE to acme's site from the anycast address",
        "edge",
        "encap",
        ETH / TO_ACME,
        TC_ACT_OK,
        tunneled(ANYCAST, ACME_SITE, TO_ACME),
        (1, "encapsulated"),
        MARK_BASE + 1,
    ),
    Case(
        "edge: to acme's prefix but marked for globex -> dropped, never sent to a site",
        "edge",
        "encap",
        ETH / TO_ACME,
        TC_ACT_SHOT,
        None,
        (1, "wrong_tenant"),
        MARK_BASE + 2,
    ),
    Case(
        "edge: marked by a tenant namespace, to an address with no tunnel -> dropped, not looped back",
        "edge",
        "encap",
        ETH / IP(src=CLIENT, dst="198.51.100.10") / TCP(dport=80),
        TC_ACT_SHOT,
        None,
        (0, "wrong_tenant"),
        MARK_BASE + 3,
    ),
    Case(
        "edge: to an address of no tenant -> left alone",
        "edge",
        "encap",
        ETH / IP(src=CLIENT, dst="198.51.100.10") / TCP(dport=80),
        TC_ACT_OK,
        None,
        (0, "not_tunneled"),
    ),
    Case(
        "edge: ARP -> left alone",
        "edge",
        "encap",
        ETH / ARP(pdst="198.18.2.2"),
        TC_ACT_OK,
        None,
        (0, "not_tunneled"),
    ),
    Case(
        "edge: GRE from acme's site with acme's source -> the inner packet, into acme's namespace",
        "edge",
        "decap",
        tunneled(ACME_SITE, ANYCAST, FROM_ACME),
        TC_ACT_REDIRECT,
        ETH / FROM_ACME,
        (1, "decapsulated"),
    ),
    # Issue 17's probe: GRE spoofed from acme's site address, inner packets into the infrastructure.
    *(
        Case(
            f"edge: GRE from acme's site, inner destination {dst} ({what}) -> dropped, counted as {verdict}",
            "edge",
            "decap",
            tunneled(ACME_SITE, ANYCAST, IP(src="203.0.113.100", dst=dst) / TCP(dport=port, flags="S")),
            TC_ACT_SHOT,
            None,
            (1, verdict),
        )
        for dst, port, what, verdict in [
            ("198.18.1.0", 2379, "etcd in the management network", "to_infrastructure"),
            ("198.18.0.1", 179, "the router's BGP address", "to_infrastructure"),
            ("198.18.4.1", 80, "the backplane", "to_infrastructure"),
            ("198.19.0.1", 22, "a host's management network", "to_infrastructure"),
            ("198.51.100.10", 80, "the VIP", "to_anycast"),
            ("192.0.2.1", 80, "the GRE endpoint", "to_anycast"),
            ("203.0.113.200", 80, "globex's server", "to_tenant"),
            ("203.0.113.100", 80, "acme's own server, looped", "to_tenant"),
        ]
    ),
    Case(
        "edge: GRE from a tenant with no namespace on this edge -> dropped, never routed by the edge",
        "edge",
        "decap",
        tunneled(INITECH_SITE, ANYCAST, IP(src="203.0.113.64", dst=CLIENT) / TCP(sport=80, dport=40000)),
        TC_ACT_SHOT,
        None,
        (3, "no_context"),
    ),
    Case(
        "edge: GRE from globex's site carrying acme's source (spoofed) -> dropped",
        "edge",
        "decap",
        tunneled(GLOBEX_SITE, ANYCAST, FROM_ACME),
        TC_ACT_SHOT,
        None,
        (2, "spoofed"),
    ),
    Case(
        "edge: GRE from an address with no tunnel -> dropped",
        "edge",
        "decap",
        tunneled(IPv4Address(CLIENT), ANYCAST, FROM_ACME),
        TC_ACT_SHOT,
        None,
        (0, "unknown_remote"),
    ),
    Case(
        "edge: GRE with a key (not plain RFC 2784) -> dropped",
        "edge",
        "decap",
        tunneled(ACME_SITE, ANYCAST, FROM_ACME, key_present=1, key=7),
        TC_ACT_SHOT,
        None,
        (1, "malformed"),
    ),
    Case(
        "edge: a fragment of a GRE packet -> dropped",
        "edge",
        "decap",
        ETH / IP(src=str(ACME_SITE), dst=str(ANYCAST), flags="MF", proto=47) / GRE() / FROM_ACME,
        TC_ACT_SHOT,
        None,
        (1, "malformed"),
    ),
    Case(
        "edge: GRE to another address -> left alone",
        "edge",
        "decap",
        tunneled(ACME_SITE, IPv4Address("100.64.0.9"), FROM_ACME),
        TC_ACT_OK,
        None,
        (0, "not_tunneled"),
    ),
    Case(
        "edge: ICMP to the anycast address -> left alone",
        "edge",
        "decap",
        ETH / IP(src=CLIENT, dst=str(ANYCAST)) / ICMP(),
        TC_ACT_OK,
        None,
        (0, "not_tunneled"),
    ),
    Case(
        "site: from acme's prefix -> GRE to the anycast address, from the site's address",
        "site",
        "encap",
        ETH / FROM_ACME,
        TC_ACT_OK,
        tunneled(ACME_SITE, ANYCAST, FROM_ACME),
        (1, "encapsulated"),
    ),
    Case(
        "site: the site router's own traffic -> left alone",
        "site",
        "encap",
        ETH / IP(src=str(ACME_SITE), dst=CLIENT) / UDP(dport=53),
        TC_ACT_OK,
        None,
        (0, "not_tunneled"),
    ),
    Case(
        "site: GRE from the anycast address -> the inner packet",
        "site",
        "decap",
        tunneled(ANYCAST, ACME_SITE, TO_ACME),
        TC_ACT_OK,
        ETH / TO_ACME,
        (1, "decapsulated"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_gre_packet(endpoints: dict[str, GreEndpoint], case: Case) -> None:
    endpoint = endpoints[case.endpoint]
    fd = endpoint.encap_fd if case.program == "encap" else endpoint.decap_fd
    before = endpoint.counters().get(case.counter, (0, 0))[0]
    frame = bytes(case.packet)
    result = testrun.run(fd, frame, skb_mark=case.mark)
    verdict, out = result.retval, result.packet
    assert verdict == case.verdict
    assert endpoint.counters().get(case.counter, (0, 0))[0] == before + 1
    if case.verdict == TC_ACT_SHOT:
        assert case.counter[1] not in ("decapsulated", "encapsulated"), "a drop is counted as a drop"
        return
    expected = frame if case.out is None else bytes(case.out)
    assert Ether(out).summary() == Ether(expected).summary()
    assert out == expected, "byte for byte, outer checksum and length included"
