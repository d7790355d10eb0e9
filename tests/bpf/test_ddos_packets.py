"""The DoS program, packet by packet: a table of scapy packets run through BPF_PROG_TEST_RUN, asserting the
verdict, the counter that moved and (for SYN cookies) the packet sent back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw, raw

from edgesim.bpf import loader, testrun
from edgesim.mitigation import layout, maps
from edgesim.mitigation.rules import RULE_ADAPTER, RuleSet, build_rule_set
from tests.conftest import require_root

pytestmark = pytest.mark.root

VIP = "198.51.100.10"
# The control session of the edge's uplink: the router's and the edge's addresses on their /31.
ROUTER, EDGE = "198.18.0.0", "198.18.0.1"
CAPPED_VIP = "198.51.100.20"
RULES = [
    {"kind": "malformed", "ip_options": True, "fragments": True},
    {"kind": "allow_src", "prefix": "100.100.5.0/24", "name": "allow"},
    {"kind": "drop_src", "prefix": "100.100.0.0/16", "name": "drop-wide"},
    {"kind": "drop_src", "prefix": "100.127.0.0/16", "name": "drop-src"},
    {"kind": "drop_port", "proto": "udp", "src_port": 53, "name": "dns-reflection"},
    {"kind": "drop_port", "proto": "tcp", "dst_port": 23, "name": "closed-telnet"},
    {"kind": "rate_limit", "match": "syn", "rate": 10, "burst": 3, "name": "syn-rate"},
    {"kind": "rate_limit", "match": "udp", "rate": 10, "burst": 3, "name": "udp-rate"},
    {"kind": "rate_limit", "match": "icmp", "rate": 10, "burst": 3, "name": "icmp-rate"},
    {"kind": "syn_cookie", "vip": VIP, "port": 80, "name": "cookies"},
    {"kind": "vip_cap", "vip": CAPPED_VIP, "rate": 10, "burst": 2, "name": "cap"},
]


@dataclass
class Program:
    """The loaded program, its rules, and a way to run packets through it."""

    bpf: Any
    fd: int
    rules: RuleSet

    def slot(self, name: str) -> int:
        """The counter slot of a rule, or of a built-in verdict given by its slot number."""
        found = self.rules.find(name)
        assert found is not None, name
        return found.slot

    def run(self, packet: bytes) -> tuple[testrun.RunResult, dict[int, int]]:
        """Run one packet; return the result and which counters moved (slot → packets)."""
        slots = [*layout.VERDICT_SLOTS, *(r.slot for r in self.rules.rules)]
        before = maps.read_counters(self.bpf, slots)
        result = testrun.run(self.fd, packet)
        after = maps.read_counters(self.bpf, slots)
        moved = {s: after[s][0] - before[s][0] for s in slots if after[s][0] != before[s][0]}
        return result, moved


@pytest.fixture(scope="module")
def program() -> Iterator[Program]:
    require_root()
    bpf = loader.compile_program(Path("xdp_edge.c"))
    fd = loader.load_xdp(bpf, "xdp_ddos")
    rules = build_rule_set([RULE_ADAPTER.validate_python(r) for r in RULES])
    maps.apply(bpf, maps.contents_for(rules))
    maps.set_control_peers(bpf, [(ip_address(ROUTER), ip_address(EDGE))])
    yield Program(bpf, fd, rules)
    bpf.cleanup()


def eth() -> Ether:
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def tcp(src: str, dport: int, flags: str = "A", dst: str = VIP, **kw: Any) -> bytes:
    return raw(eth() / IP(src=src, dst=dst) / TCP(sport=40000, dport=dport, flags=flags, **kw))


def udp(src: str, sport: int, dport: int, dst: str = VIP) -> bytes:
    return raw(eth() / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / Raw(b"x" * 16))


def mangle(packet: bytes, offset: int, value: bytes) -> bytes:
    return packet[:offset] + value + packet[offset + len(value) :]


# (description, packet, expected verdict, counter that must move: a rule name or a built-in slot)
CASES: list[tuple[str, bytes, str, str | int]] = [
    ("legitimate TCP ACK to an unprotected port", tcp("100.64.0.1", 443), "XDP_PASS", layout.SLOT_PASS),
    ("legitimate UDP", udp("100.64.0.1", 40000, 5353), "XDP_PASS", layout.SLOT_PASS),
    (
        "legitimate ICMP echo",
        raw(eth() / IP(src="100.64.0.1", dst=VIP) / ICMP()),
        "XDP_PASS",
        layout.SLOT_PASS,
    ),
    (
        "ARP is not IPv4 and passes",
        raw(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP()),
        "XDP_PASS",
        layout.SLOT_NOT_IPV4,
    ),
    ("source in a dropped prefix", tcp("100.127.200.1", 443), "XDP_DROP", "drop-src"),
    ("near miss: just below the dropped prefix", tcp("100.126.255.255", 443), "XDP_PASS", layout.SLOT_PASS),
    ("allowlist wins over a wider drop", tcp("100.100.5.7", 443), "XDP_PASS", "allow"),
    ("the wider drop outside the allowlist", tcp("100.100.6.7", 443), "XDP_DROP", "drop-wide"),
    ("UDP from port 53 (DNS reflection)", udp("100.64.1.1", 53, 40000), "XDP_DROP", "dns-reflection"),
    ("near miss: UDP from port 54", udp("100.64.1.2", 54, 40000), "XDP_PASS", layout.SLOT_PASS),
    (
        "near miss: UDP to port 53 is not reflection",
        udp("100.64.1.3", 40000, 53),
        "XDP_PASS",
        layout.SLOT_PASS,
    ),
    ("TCP to closed port 23", tcp("100.64.1.4", 23), "XDP_DROP", "closed-telnet"),
    ("near miss: TCP to port 24", tcp("100.64.1.5", 24), "XDP_PASS", layout.SLOT_PASS),
    (
        "ACK to the protected port without a cookie",
        tcp("100.64.1.6", 80),
        "XDP_DROP",
        layout.SLOT_COOKIE_ACK_BAD,
    ),
    (
        "IP options",
        raw(eth() / IP(src="100.64.1.7", dst=VIP, options=[b"\x01\x01\x01\x00"]) / TCP(dport=443)),
        "XDP_DROP",
        "malformed",
    ),
    (
        "first fragment",
        raw(eth() / IP(src="100.64.1.8", dst=VIP, flags="MF") / UDP(dport=9) / Raw(b"x" * 8)),
        "XDP_DROP",
        "malformed",
    ),
    (
        "later fragment",
        raw(eth() / IP(src="100.64.1.9", dst=VIP, frag=10, proto=17) / Raw(b"x" * 8)),
        "XDP_DROP",
        "malformed",
    ),
    (
        "IPv4 header cut short",
        raw(Ether(type=0x0800)) + raw(IP(src="100.64.2.1", dst=VIP))[:12],
        "XDP_DROP",
        layout.SLOT_MALFORMED,
    ),
    ("IHL below 5", mangle(tcp("100.64.2.2", 443), 14, b"\x44"), "XDP_DROP", layout.SLOT_MALFORMED),
    (
        "IHL pointing past the packet",
        mangle(raw(eth() / IP(src="100.64.2.3", dst=VIP, proto=6)), 14, b"\x4f"),
        "XDP_DROP",
        layout.SLOT_MALFORMED,
    ),
    (
        "total length longer than the frame",
        mangle(tcp("100.64.2.4", 443), 16, b"\x05\xdc"),
        "XDP_DROP",
        layout.SLOT_MALFORMED,
    ),
    (
        "TCP header cut short",
        raw(eth() / IP(src="100.64.2.5", dst=VIP, proto=6) / Raw(b"\x00" * 12)),
        "XDP_DROP",
        layout.SLOT_MALFORMED,
    ),
    (
        "TCP data offset below 5",
        raw(eth() / IP(src="100.64.2.6", dst=VIP) / TCP(dport=443, dataofs=4)),
        "XDP_DROP",
        layout.SLOT_MALFORMED,
    ),
    (
        "TCP data offset past the packet",
        raw(eth() / IP(src="100.64.2.7", dst=VIP) / TCP(dport=443, dataofs=15)),
        "XDP_DROP",
        layout.SLOT_MALFORMED,
    ),
    (
        "UDP length longer than the datagram",
        mangle(udp("100.64.2.8", 40000, 9), 38, b"\x01\x00"),
        "XDP_DROP",
        layout.SLOT_MALFORMED,
    ),
    (
        "ICMP header cut short",
        raw(eth() / IP(src="100.64.2.9", dst=VIP, proto=1) / Raw(b"\x08\x00\x00")),
        "XDP_DROP",
        layout.SLOT_MALFORMED,
    ),
]


@pytest.mark.parametrize(("packet", "verdict", "counter"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_packet_case(program: Program, packet: bytes, verdict: str, counter: str | int) -> None:
    result, moved = program.run(packet)
    slot = counter if isinstance(counter, int) else program.slot(counter)
    assert result.verdict == verdict
    assert moved.get(slot) == 1, f"expected counter {counter} to move, moved: {moved}"


def _burst(program: Program, make: Callable[[int], bytes], count: int) -> list[str]:
    return [program.run(make(i))[0].verdict for i in range(count)]


def test_syn_rate_limit_per_source(program: Program) -> None:
    verdicts = _burst(program, lambda i: tcp("100.64.3.1", 443, "S", seq=i), 4)
    assert verdicts == ["XDP_PASS"] * 3 + ["XDP_DROP"], "burst of 3, then over the rate"
    # Near miss: another source has its own bucket.
    assert program.run(tcp("100.64.3.2", 443, "S"))[0].verdict == "XDP_PASS"
    result, moved = program.run(tcp("100.64.3.1", 443, "S"))
    assert result.verdict == "XDP_DROP" and moved.get(program.slot("syn-rate")) == 1


def test_udp_rate_limit_per_source(program: Program) -> None:
    verdicts = _burst(program, lambda i: udp("100.64.3.3", 40000, 9000 + i), 4)
    assert verdicts == ["XDP_PASS"] * 3 + ["XDP_DROP"]


def test_icmp_rate_limit_per_source(program: Program) -> None:
    verdicts = _burst(program, lambda i: raw(eth() / IP(src="100.64.3.4", dst=VIP) / ICMP(seq=i)), 4)
    assert verdicts == ["XDP_PASS"] * 3 + ["XDP_DROP"]


def test_vip_cap(program: Program) -> None:
    verdicts = _burst(program, lambda i: tcp(f"100.64.4.{i + 1}", 443, dst=CAPPED_VIP), 3)
    assert verdicts == ["XDP_PASS", "XDP_PASS", "XDP_DROP"]
    # Near miss: the uncapped VIP is not affected.
    assert program.run(tcp("100.64.4.9", 443))[0].verdict == "XDP_PASS"


def test_syn_cookie_answer_and_handshake(program: Program) -> None:
    syn = (
        eth()
        / IP(src="100.64.5.1", dst=VIP)
        / TCP(sport=41000, dport=80, flags="S", seq=1000, options=[("MSS", 1460), ("SAckOK", b"")])
    )
    result, moved = program.run(raw(syn))
    assert result.verdict == "XDP_TX"
    assert moved.get(layout.SLOT_COOKIE_SENT) == 1 and moved.get(program.slot("cookies")) == 1
    answer = Ether(result.packet)
    assert (answer[Ether].dst, answer[Ether].src) == (syn[Ether].src, syn[Ether].dst)
    assert (answer[IP].src, answer[IP].dst) == (VIP, "100.64.5.1")
    assert (answer[TCP].sport, answer[TCP].dport, answer[TCP].flags) == (80, 41000, "SA")
    assert answer[TCP].ack == 1001
    assert dict(answer[TCP].options)["MSS"] == 1460
    recomputed = Ether(raw(answer.copy()))
    del recomputed[IP].chksum, recomputed[TCP].chksum
    recomputed = Ether(raw(recomputed))
    assert (answer[IP].chksum, answer[TCP].chksum) == (recomputed[IP].chksum, recomputed[TCP].chksum)

    cookie = answer[TCP].seq

    def ack(ack_number: int, payload: bytes = b"") -> bytes:
        return raw(
            eth()
            / IP(src="100.64.5.1", dst=VIP)
            / TCP(sport=41000, dport=80, flags="A", seq=1001, ack=ack_number)
            / Raw(payload)
        )

    result, moved = program.run(ack(cookie + 2))
    assert result.verdict == "XDP_DROP" and moved.get(layout.SLOT_COOKIE_ACK_BAD) == 1, "a wrong cookie"
    result, moved = program.run(ack(cookie + 1))
    assert result.verdict == "XDP_PASS" and moved.get(layout.SLOT_COOKIE_ACK_OK) == 1
    result, moved = program.run(ack(cookie + 1, b"GET / HTTP/1.1\r\n\r\n"))
    assert result.verdict == "XDP_PASS" and moved.get(layout.SLOT_COOKIE_FLOW) == 1


def test_syn_with_payload_to_protected_port_is_dropped(program: Program) -> None:
    result, moved = program.run(tcp("100.64.5.2", 80, "S") + b"")
    assert result.verdict == "XDP_TX"
    payload = raw(eth() / IP(src="100.64.5.3", dst=VIP) / TCP(dport=80, flags="S") / Raw(b"data"))
    result, moved = program.run(payload)
    assert result.verdict == "XDP_DROP" and moved.get(program.slot("cookies")) == 1


def control(
    sport: int, dport: int, ttl: int = 255, proto: str = "tcp", src: str = ROUTER, dst: str = EDGE
) -> bytes:
    transport = TCP(sport=sport, dport=dport, flags="A") if proto == "tcp" else UDP(sport=sport, dport=dport)
    return raw(eth() / IP(src=src, dst=dst, ttl=ttl) / transport / Raw(b"x" * 19))


# (description, packet, passes as control traffic)
CONTROL_CASES = [
    ("BGP from the router (to port 179)", control(40179, 179), True),
    ("BGP from the router (from port 179)", control(179, 40179), True),
    ("BFD control from the router", control(49152, 3784, proto="udp"), True),
    ("BFD echo from the router", control(49153, 3785, proto="udp"), True),
    (
        "near miss: BGP forwarded by the router (TTL 254: spoofed from outside)",
        control(40179, 179, 254),
        False,
    ),
    ("near miss: BGP with TTL 255 to another address", control(40179, 179, dst="198.18.0.3"), False),
    ("near miss: BGP with TTL 255 from another address", control(40179, 179, src="198.18.0.2"), False),
    ("near miss: the router's TTL 255, another port", control(40022, 22), False),
    ("near miss: BFD's port over TCP", control(49152, 3784), False),
    ("near miss: UDP from port 3784", control(3784, 49152, proto="udp"), False),
]


@pytest.mark.parametrize(
    ("packet", "passes"), [c[1:] for c in CONTROL_CASES], ids=[c[0] for c in CONTROL_CASES]
)
def test_the_labs_control_traffic_wins_over_a_drop_everything_rule(
    program: Program, packet: bytes, passes: bool
) -> None:
    """Issue 17: `drop_src 0.0.0.0/0` must not cut BGP or BFD; what only looks like them is dropped."""
    everything = RULE_ADAPTER.validate_python({"kind": "drop_src", "prefix": "0.0.0.0/0", "name": "all"})
    with_rule = program.rules.with_rule(everything)
    maps.apply(program.bpf, maps.contents_for(with_rule))
    try:
        before = maps.read_counters(program.bpf, [layout.SLOT_CONTROL])[layout.SLOT_CONTROL][0]
        result = testrun.run(program.fd, packet)
        after = maps.read_counters(program.bpf, [layout.SLOT_CONTROL])[layout.SLOT_CONTROL][0]
        assert (result.verdict, after - before) == (("XDP_PASS", 1) if passes else ("XDP_DROP", 0))
        assert testrun.run(program.fd, tcp("100.64.7.1", 443)).verdict == "XDP_DROP", "clients are dropped"
    finally:
        maps.apply(program.bpf, maps.contents_for(program.rules))


def test_rules_change_without_reload(program: Program) -> None:
    packet = tcp("100.64.6.1", 443)
    assert program.run(packet)[0].verdict == "XDP_PASS"
    extra = RULE_ADAPTER.validate_python({"kind": "drop_src", "prefix": "100.64.6.0/24", "name": "late"})
    with_rule = program.rules.with_rule(extra)
    maps.apply(program.bpf, maps.contents_for(with_rule))
    try:
        assert program.run(packet)[0].verdict == "XDP_DROP"
    finally:
        maps.apply(program.bpf, maps.contents_for(program.rules))
    assert program.run(packet)[0].verdict == "XDP_PASS"
