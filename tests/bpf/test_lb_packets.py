"""The L4 load balancer, packet by packet through BPF_PROG_TEST_RUN: local delivery, forwarding to the
owner (the IP-in-IP packet it sends), the daisy chain, the hop limit, and malformed encapsulation (dropped,
counted), with the DoS program in front of it as on an edge (one bcc module, LB at chain[CHAIN_NEXT])."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw, raw

from edgesim.bpf import loader, testrun
from edgesim.lb import layout as lb_layout
from edgesim.lb import maps as lb_maps
from edgesim.lb.store import LbEdge, LbState
from edgesim.lb.table import Buckets
from edgesim.mitigation import layout, maps
from edgesim.mitigation.rules import RULE_ADAPTER, build_rule_set
from tests.conftest import require_root

pytestmark = pytest.mark.root

VIP = "198.51.100.10"
PROTECTED = 80  # SYN cookies, as in the default topology
OPEN = 8080  # balanced, no cookies
EDGES = [LbEdge(name=f"edge{i}", address=f"198.18.1.{i}", mac=f"02:e5:c6:12:01:{i:02x}") for i in (1, 2, 3)]
SELF, OTHER, THIRD = 0, 1, 2  # edge ids: the program runs as edge1
SLOTS = [*layout.VERDICT_SLOTS, *lb_layout.COUNTER_SLOTS]


@dataclass
class Edge:
    """edge1's programs, loaded and chained as the agent does."""

    bpf: Any
    ddos: int
    backplane: int

    def table(self, first: int, second: int, enabled: bool = True) -> None:
        """Every bucket the same: the packets' hashes do not matter for these cases."""
        lb_maps.write_table(self.bpf, Buckets.every(first, second), enabled, SELF, 1)

    def run(self, fd: int, packet: bytes) -> tuple[testrun.RunResult, dict[int, int]]:
        """Run one packet; return the result and which counters moved."""
        before = maps.read_counters(self.bpf, SLOTS)
        result = testrun.run(fd, packet)
        after = maps.read_counters(self.bpf, SLOTS)
        return result, {s: after[s][0] - before[s][0] for s in SLOTS if after[s][0] != before[s][0]}


@pytest.fixture(scope="module")
def edge() -> Iterator[Edge]:
    require_root()
    bpf = loader.compile_program(Path("xdp_edge.c"))
    ddos = loader.load_xdp(bpf, "xdp_ddos")
    lb = loader.load_xdp(bpf, "xdp_lb")
    backplane = loader.load_xdp(bpf, "xdp_backplane")
    rules = [{"kind": "syn_cookie", "vip": VIP, "port": PROTECTED, "name": "cookies"}]
    maps.apply(bpf, maps.contents_for(build_rule_set([RULE_ADAPTER.validate_python(r) for r in rules])))
    lb_maps.write_members(bpf, LbState(edges=EDGES, vips=[(VIP, PROTECTED), (VIP, OPEN)]))
    bpf[b"chain"][layout.CHAIN_NEXT] = lb
    yield Edge(bpf, ddos, backplane)
    bpf.cleanup()


def client_tcp(dport: int, flags: str = "A", sport: int = 40000, payload: bytes = b"") -> IP:
    return (
        IP(src="100.64.0.1", dst=VIP)
        / TCP(sport=sport, dport=dport, flags=flags, seq=7, ack=9)
        / Raw(payload)
    )


def from_router(inner: IP) -> bytes:
    return raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / inner)


def encapsulated(inner: IP | bytes, src: int = OTHER, dst: int = SELF, ttl: int = 2, **outer: Any) -> bytes:
    return raw(
        Ether(src=EDGES[src].mac, dst=EDGES[dst].mac)
        / IP(src=EDGES[src].address, dst=EDGES[dst].address, proto=4, ttl=ttl, **outer)
        / (inner if isinstance(inner, bytes) else raw(inner))
    )


def test_owner_here_is_delivered_locally(edge: Edge) -> None:
    edge.table(SELF, SELF)
    result, moved = edge.run(edge.ddos, from_router(client_tcp(OPEN)))
    assert result.verdict == "XDP_PASS"
    assert moved.get(lb_layout.SLOT_LB_LOCAL) == 1 and lb_layout.SLOT_LB_FORWARDED not in moved


def test_owner_elsewhere_gets_the_packet_in_ip_in_ip(edge: Edge) -> None:
    edge.table(OTHER, OTHER)
    inner = client_tcp(OPEN, payload=b"GET / HTTP/1.1\r\n\r\n")
    result, moved = edge.run(edge.ddos, from_router(inner))
    assert result.verdict == "XDP_REDIRECT" and moved.get(lb_layout.SLOT_LB_FORWARDED) == 1
    out = Ether(result.packet)
    assert (out.src, out.dst, out.type) == (EDGES[SELF].mac, EDGES[OTHER].mac, 0x0800)
    outer = out[IP]
    assert (outer.src, outer.dst, outer.proto, outer.ttl, outer.flags) == (
        EDGES[SELF].address,
        EDGES[OTHER].address,
        4,
        lb_layout.ENCAP_TTL_FIRST,
        "DF",
    )
    assert outer.len == 20 + len(raw(inner))
    assert raw(outer.payload) == raw(inner), "the inner packet travels unchanged"
    check = IP(raw(outer))
    del check.chksum
    assert IP(raw(check)).chksum == outer.chksum


def test_protected_unknown_flow_is_forwarded_not_dropped_when_another_edge_owns_it(edge: Edge) -> None:
    edge.table(OTHER, OTHER)
    result, moved = edge.run(edge.ddos, from_router(client_tcp(PROTECTED)))
    assert result.verdict == "XDP_REDIRECT" and moved.get(lb_layout.SLOT_LB_FORWARDED) == 1
    assert layout.SLOT_COOKIE_ACK_BAD not in moved


def test_protected_unknown_flow_owned_here_is_dropped_as_without_lb(edge: Edge) -> None:
    edge.table(SELF, SELF)
    result, moved = edge.run(edge.ddos, from_router(client_tcp(PROTECTED)))
    assert result.verdict == "XDP_DROP" and moved.get(layout.SLOT_COOKIE_ACK_BAD) == 1


def test_lb_off_leaves_the_dos_verdicts_alone(edge: Edge) -> None:
    edge.table(OTHER, OTHER, enabled=False)
    result, moved = edge.run(edge.ddos, from_router(client_tcp(PROTECTED)))
    assert result.verdict == "XDP_DROP" and moved.get(layout.SLOT_COOKIE_ACK_BAD) == 1
    result, moved = edge.run(edge.ddos, from_router(client_tcp(OPEN)))
    assert result.verdict == "XDP_PASS" and lb_layout.SLOT_LB_FORWARDED not in moved


def test_unbalanced_port_is_never_forwarded(edge: Edge) -> None:
    edge.table(OTHER, OTHER)
    result, moved = edge.run(edge.ddos, from_router(client_tcp(443)))
    assert result.verdict == "XDP_PASS" and not set(moved) & set(lb_layout.COUNTER_SLOTS)


def test_new_owner_chains_mid_flow_packets_to_the_previous_owner(edge: Edge) -> None:
    edge.table(SELF, THIRD)  # the bucket moved from edge3 to edge1 (e.g. edge3 drained)
    result, moved = edge.run(edge.backplane, encapsulated(client_tcp(OPEN)))
    assert result.verdict == "XDP_REDIRECT"
    assert moved.get(lb_layout.SLOT_LB_RECEIVED) == 1 and moved.get(lb_layout.SLOT_LB_CHAINED) == 1
    out = Ether(result.packet)
    assert (out.dst, out[IP].dst, out[IP].ttl) == (EDGES[THIRD].mac, EDGES[THIRD].address, 1)


def test_new_connections_stay_with_the_new_owner(edge: Edge) -> None:
    edge.table(SELF, THIRD)
    result, moved = edge.run(edge.backplane, encapsulated(client_tcp(OPEN, flags="S")))
    assert result.verdict == "XDP_PASS" and moved.get(lb_layout.SLOT_LB_LOCAL) == 1


def test_valid_cookie_ack_is_a_new_connection_for_the_owner(edge: Edge) -> None:
    edge.table(SELF, THIRD)
    syn = IP(src="100.64.0.9", dst=VIP) / TCP(sport=41000, dport=PROTECTED, flags="S", seq=1000)
    answer, _ = edge.run(edge.ddos, from_router(syn))
    assert answer.verdict == "XDP_TX"
    cookie = Ether(answer.packet)[TCP].seq
    ack = IP(src="100.64.0.9", dst=VIP) / TCP(
        sport=41000, dport=PROTECTED, flags="A", seq=1001, ack=cookie + 1
    )
    result, moved = edge.run(edge.backplane, encapsulated(ack))
    assert result.verdict == "XDP_PASS", "not chained to the previous owner: it has no such connection"
    assert moved.get(layout.SLOT_COOKIE_ACK_OK) == 1 and moved.get(lb_layout.SLOT_LB_LOCAL) == 1


def test_second_hop_is_never_forwarded_again(edge: Edge) -> None:
    edge.table(OTHER, THIRD)  # this edge's table disagrees with the sender's
    result, moved = edge.run(edge.backplane, encapsulated(client_tcp(OPEN), ttl=1))
    assert result.verdict == "XDP_PASS" and moved.get(lb_layout.SLOT_LB_LOCAL) == 1


def test_first_hop_whose_table_names_another_owner_passes_it_on_once(edge: Edge) -> None:
    edge.table(THIRD, THIRD)  # the sender's table said edge1; this one says edge3
    result, moved = edge.run(edge.backplane, encapsulated(client_tcp(OPEN)))
    assert result.verdict == "XDP_REDIRECT" and moved.get(lb_layout.SLOT_LB_CHAINED) == 1
    out = Ether(result.packet)
    assert (out[IP].dst, out[IP].ttl) == (EDGES[THIRD].address, lb_layout.ENCAP_TTL_SECOND)


def test_backplane_traffic_that_is_not_ip_in_ip_goes_to_the_stack(edge: Edge) -> None:
    health = Ether() / IP(src=EDGES[OTHER].address, dst=EDGES[SELF].address) / TCP(dport=80, flags="S")
    result, moved = edge.run(edge.backplane, raw(health))
    # Counted too (the fuzzing found it uncounted): every verdict of every program is.
    assert result.verdict == "XDP_PASS" and moved == {lb_layout.SLOT_LB_BACKPLANE_OWN: 1}


INNER = raw(client_tcp(OPEN))
MALFORMED = [
    ("outer destination is another edge", encapsulated(INNER, dst=THIRD)),
    (
        "outer source is not an edge",
        raw(Ether() / IP(src="198.18.1.99", dst=EDGES[SELF].address, proto=4, ttl=2) / INNER),
    ),
    ("hop budget that no edge sends (TTL 64)", encapsulated(INNER, ttl=64)),
    ("outer header with options", encapsulated(INNER, options=b"\x01\x01\x01\x00")),
    ("outer fragment", encapsulated(INNER, flags="MF")),
    ("inner packet truncated (outer length says more)", encapsulated(INNER[:-4] + b"", len=20 + len(INNER))),
    ("inner length disagrees with the outer", encapsulated(INNER[:2] + b"\x00\x10" + INNER[4:])),
    ("inner is not IPv4", encapsulated(b"\x60" + INNER[1:])),
    ("nothing inside", encapsulated(b"")),
]


@pytest.mark.parametrize(("description", "packet"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_encapsulation_is_dropped_and_counted(edge: Edge, description: str, packet: bytes) -> None:
    edge.table(SELF, SELF)
    result, moved = edge.run(edge.backplane, packet)
    assert result.verdict == "XDP_DROP", description
    assert moved.get(lb_layout.SLOT_LB_BAD_ENCAP) == 1 or moved.get(layout.SLOT_MALFORMED) == 1, moved
    assert lb_layout.SLOT_LB_RECEIVED not in moved
