"""Every BPF program fuzzed through BPF_PROG_TEST_RUN: random and mutated packets (hypothesis + scapy).

Programs: the edge's XDP chain entered on the uplink (xdp_ddos, tail-calling xdp_lb), xdp_lb on its own,
xdp_backplane (decapsulation, then the same chain), and gre.c's four programs as an edge and a customer site
router load them. Rules, LB table and tunnels as in the default lab, so the packets reach every stage.

For every packet, every program must:
- not crash and answer a known verdict (never XDP_ABORTED);
- count its verdict (a counter moved; for gre.c exactly one);
- pass nothing half-parsed. A packet is half-parsed when a header the program acts on is incomplete or
  disagrees with the frame (`wellformed` below mirrors common/parsing.h: IPv4 header, total length within
  the frame, the TCP/UDP/ICMP header inside the IPv4 packet). Such a packet is never sent back or
  redirected (XDP_TX, XDP_REDIRECT, TC redirect), never rewritten (a tunnel header added or stripped),
  and on the uplink never even passed: the DoS program drops it. What a program passes untouched is the
  stack's to check (the backplane's own traffic, ARP, what no tunnel is for).
Every verdict a program returns is also checked against what it must have done (the output bytes).
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, ip_address
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import GRE, ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw, raw

from edgesim.bpf import loader, testrun
from edgesim.lb import layout as lb_layout
from edgesim.lb import maps as lb_maps
from edgesim.lb.store import LbEdge, LbState
from edgesim.lb.table import Buckets
from edgesim.mitigation import layout, maps
from edgesim.mitigation.rules import RULE_ADAPTER, build_rule_set
from edgesim.tenants.gre import GreEndpoint, Route
from edgesim.tenants.spec import MARK_BASE
from tests.conftest import require_root

pytestmark = pytest.mark.root

EXAMPLES = 120  # per test, 10 tests: 1,200 cases, ~20 s of CPU with the compiles
XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = 1, 2, 3, 4
TC_OK, TC_SHOT, TC_REDIRECT = 0, 2, 7

VIP = "198.51.100.10"
ANYCAST, ACME_SITE, GLOBEX_SITE = "192.0.2.1", "100.64.0.7", "100.64.0.9"
ACME, GLOBEX = IPv4Network("203.0.113.0/25"), IPv4Network("203.0.113.128/25")
ROUTER, EDGE = "198.18.0.0", "198.18.0.1"
EDGES = [LbEdge(name=f"edge{i}", address=f"198.18.4.{i}", mac=f"02:e5:c6:12:04:{i:02x}") for i in (1, 2, 3)]
RULES = [  # the default lab's rules, and a drop rule on a source prefix
    {"kind": "malformed", "ip_options": True, "fragments": True},
    {"kind": "drop_port", "proto": "udp", "src_port": 53},
    {"kind": "drop_src", "prefix": "100.127.0.0/16"},
    {"kind": "rate_limit", "match": "syn", "rate": 2000, "burst": 100},
    {"kind": "rate_limit", "match": "udp", "rate": 500, "burst": 50},
    {"kind": "syn_cookie", "vip": VIP, "port": 80},
    {"kind": "vip_cap", "vip": VIP, "rate": 1000000, "burst": 10000},
]
REFUSED = {
    IPv4Network("198.18.0.0/15"): "infrastructure",
    IPv4Network("198.51.100.0/24"): "anycast",
    IPv4Network("192.0.2.0/24"): "anycast",
    IPv4Network("203.0.113.0/24"): "tenant",
}
# Addresses the programs know, so that generated packets hit their maps; plus any address at all.
ADDRESSES = [
    VIP, ANYCAST, ACME_SITE, GLOBEX_SITE, ROUTER, EDGE, "100.64.0.1", "100.127.0.5", "203.0.113.100",
    "203.0.113.200", "198.18.1.0", *(e.address for e in EDGES),
]  # fmt: skip
PORTS = [0, 20, 21, 53, 80, 179, 443, 2379, 3784, 3785, 8080, 40000, 65535]


# The reference: what common/parsing.h accepts, in Python.


def ipv4_header(frame: bytes, at: int) -> tuple[int, int] | None:
    """(header length, total length) of a valid IPv4 header at `at` whose total length fits the frame."""
    if len(frame) < at + 20 or frame[at] >> 4 != 4:
        return None
    ihl, total = (frame[at] & 0xF) * 4, struct.unpack_from("!H", frame, at + 2)[0]
    if ihl < 20 or at + ihl > len(frame) or total < ihl or at + total > len(frame):
        return None
    return ihl, total


def wellformed(frame: bytes, at: int = 14) -> bool:
    """An IPv4 packet at `at` whose headers all parse (IP, and TCP/UDP/ICMP unless a later fragment)."""
    found = ipv4_header(frame, at)
    if found is None:
        return False
    ihl, total = found
    end, l4, proto = at + total, at + ihl, frame[at + 9]
    if struct.unpack_from("!H", frame, at + 6)[0] & 0x1FFF:
        return True  # a later fragment carries no transport header
    if proto == 6:
        return l4 + 20 <= end and 20 <= (frame[l4 + 12] >> 4) * 4 <= end - l4
    if proto == 17:
        return l4 + 8 <= end and 8 <= struct.unpack_from("!H", frame, l4 + 4)[0] <= end - l4
    if proto == 1:
        return l4 + 8 <= end
    return True


def is_ipv4(frame: bytes) -> bool:
    return frame[12:14] == b"\x08\x00"


def tunnel_ok(frame: bytes) -> bool:
    """An IPv4 + plain GRE + IPv4 packet whose lengths agree: outer total = 24 + inner total."""
    outer = ipv4_header(frame, 14)
    if outer is None or outer[0] != 20 or len(frame) < 38 + 20:
        return False
    inner = frame[38:]
    inner_total = struct.unpack_from("!H", inner, 2)[0]
    return inner[0] == 0x45 and inner_total >= 20 and outer[1] == 24 + inner_total


# The generator: scapy packets with random fields, some of them tunnels, then mutated.

address = st.one_of(st.sampled_from(ADDRESSES), st.ip_addresses(v=4).map(str))
port = st.one_of(st.sampled_from(PORTS), st.integers(0, 65535))
maybe_byte = st.one_of(st.none(), st.integers(0, 255))


@st.composite
def transport(draw: st.DrawFn, depth: int = 0) -> Any:
    kinds = ["tcp", "udp", "icmp", "raw"] + (["gre", "ipip"] if depth == 0 else [])
    kind = draw(st.sampled_from(kinds))
    payload = Raw(draw(st.binary(max_size=24)))
    if kind == "tcp":
        flags = draw(st.one_of(st.sampled_from(["S", "A", "SA", "R", "PA", "F"]), st.integers(0, 255)))
        dataofs = draw(st.one_of(st.none(), st.integers(0, 15)))
        return TCP(sport=draw(port), dport=draw(port), flags=flags, dataofs=dataofs) / payload
    if kind == "udp":
        length = draw(st.one_of(st.none(), st.integers(0, 80)))
        return UDP(sport=draw(port), dport=draw(port), len=length) / payload
    if kind == "icmp":
        return ICMP(type=draw(st.integers(0, 255))) / payload
    if kind == "gre":
        flags = draw(st.sampled_from([0, 0, 0, 0x2000, 0x8000, 0x1]))
        proto = draw(st.sampled_from([0x0800, 0x0800, 0x0800, 0x86DD, 0x6558]))
        return GRE(flags=flags, proto=proto) / draw(ipv4(depth + 1))
    if kind == "ipip":
        return draw(ipv4(depth + 1))
    return payload


@st.composite
def ipv4(draw: st.DrawFn, depth: int = 0) -> IP:
    options = draw(st.sampled_from([[], [], [], [b"\x01\x01\x01\x00"]]))
    header = IP(
        src=draw(address),
        dst=draw(address),
        ttl=draw(st.one_of(st.sampled_from([1, 2, 64, 254, 255]), st.integers(0, 255))),
        flags=draw(st.sampled_from([0, 0, 2, 1, 3])),
        frag=draw(st.sampled_from([0, 0, 0, 1, 100])),
        ihl=draw(st.one_of(st.none(), st.none(), st.none(), st.integers(0, 15))),
        len=draw(st.one_of(st.none(), st.none(), st.none(), st.integers(0, 200))),
        options=options,
    )
    upper = draw(transport(depth))
    if isinstance(upper, IP):
        header.proto = 4
    return header / upper


@st.composite
def to_vip(draw: st.DrawFn) -> IP:
    """A client's TCP segment to the VIP's ports: what the cookies and the load balancer act on."""
    flags = draw(st.sampled_from(["S", "S", "A", "PA", "SA", "R"]))
    segment = TCP(sport=draw(port), dport=draw(st.sampled_from([80, 8080])), flags=flags, seq=draw(port))
    return IP(src=draw(address), dst=VIP) / segment / Raw(draw(st.binary(max_size=8)))


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """One Ethernet frame: a generated packet (mostly IPv4), mutated or not; or random bytes."""
    kind = draw(st.sampled_from(["ipv4"] * 5 + ["vip"] * 2 + ["arp", "random"]))
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    if kind == "random":
        return draw(st.binary(min_size=14, max_size=120))
    if kind == "arp":
        frame = raw(eth / ARP())
    else:
        frame = raw(eth / draw(to_vip() if kind == "vip" else ipv4()))
    mutation = draw(st.sampled_from(["none", "none", "truncate", "flip", "append"]))
    if mutation == "truncate":
        frame = frame[: draw(st.integers(14, max(14, len(frame) - 1)))]
    elif mutation == "flip":
        data = bytearray(frame)
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(14, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
        frame = bytes(data)
    elif mutation == "append":
        frame += draw(st.binary(min_size=1, max_size=16))
    return frame


# The programs under test, each with its counters and what it must have done.


@dataclass
class Target:
    """One program: how to run it, how much its counters counted, and the checks of one run."""

    name: str
    fd: int
    counted: Callable[[], int]
    check: Callable[[bytes, int, bytes], None]  # (frame in, verdict, frame out): asserts
    exactly_once: bool = False  # gre.c: one counter per packet; the XDP chain counts a verdict per stage
    needs_count: bool = True
    tc: bool = False
    verdicts: Counter[int | str] = field(default_factory=Counter)


def check_uplink(frame: bytes, verdict: int, out: bytes) -> None:
    """xdp_ddos (and the LB behind it) on the uplink."""
    assert verdict in (XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT), f"verdict {verdict}"
    if is_ipv4(frame) and not wellformed(frame):
        assert verdict == XDP_DROP, "a half-parsed packet got through the DoS program"
    if verdict == XDP_PASS:
        assert out == frame, "passed, yet rewritten"
    if verdict == XDP_TX:  # a SYN cookie answered: the same flow, turned around, a SYN-ACK
        assert Ether(frame)[TCP].flags == "S" and wellformed(out)
        assert Ether(out)[TCP].flags == "SA" and Ether(out)[IP].src == Ether(frame)[IP].dst
    if verdict == XDP_REDIRECT:  # to the owner edge: the whole IPv4 packet inside IP-in-IP
        assert out[14 + 9] == 4 and out[34:] == frame[14:]


def check_lb_alone(frame: bytes, verdict: int, out: bytes) -> None:
    """xdp_lb entered directly (it never is on an edge): whatever the DoS stage left in its scratch value,
    it sends nothing half-parsed anywhere."""
    assert verdict in (XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT), f"verdict {verdict}"
    if verdict in (XDP_TX, XDP_REDIRECT):
        assert wellformed(frame), "a half-parsed packet was sent on"
    if verdict == XDP_PASS:
        assert out == frame


def check_backplane(frame: bytes, verdict: int, out: bytes) -> None:
    """xdp_backplane: IP-in-IP from a peer edge is unwrapped and runs the DoS chain; the rest goes on."""
    assert verdict in (XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT), f"verdict {verdict}"
    ipip = is_ipv4(frame) and len(frame) >= 34 and frame[23] == 4
    if is_ipv4(frame) and ipv4_header(frame, 14) is None:
        assert verdict == XDP_DROP, "a broken outer header got through"
    if ipip and not wellformed(frame, 34):
        assert verdict == XDP_DROP, "a half-parsed inner packet was unwrapped"
    if verdict == XDP_PASS:
        assert out in (frame, frame[:14] + frame[34:]), "passed as it came, or unwrapped: nothing else"
    if verdict in (XDP_TX, XDP_REDIRECT):
        assert ipip and wellformed(frame, 34)


def check_decap(edge: bool) -> Callable[[bytes, int, bytes], None]:
    def check(frame: bytes, verdict: int, out: bytes) -> None:
        decapsulated = TC_REDIRECT if edge else TC_OK
        assert verdict in (TC_OK, TC_SHOT, decapsulated), f"verdict {verdict}"
        if out != frame and verdict != TC_SHOT:
            assert verdict == decapsulated and tunnel_ok(frame), "a half-parsed tunnel packet was unwrapped"
            assert out == frame[:14] + frame[38:], "unwrapped: exactly the outer 24 bytes removed"
            if edge:
                inner = ip_address(frame[38 + 16 : 38 + 20])
                assert not any(inner in net for net in REFUSED), f"decapsulated towards {inner}"
        elif edge:
            assert verdict != TC_REDIRECT, "redirected without being unwrapped"

    return check


def check_encap(frame: bytes, verdict: int, out: bytes) -> None:
    assert verdict in (TC_OK, TC_SHOT), f"verdict {verdict}"
    if verdict == TC_OK and out != frame:
        found = ipv4_header(frame, 14)
        assert found is not None, "a half-parsed packet was tunneled"
        outer = ipv4_header(out, 14)
        assert outer == (20, len(out) - 14) and out[23] == 47, "the outer header is whole and says GRE"
        assert out[34:38] == b"\x00\x00\x08\x00" and out[38:] == frame[14:], "RFC 2784, then the packet"


@pytest.fixture(scope="module")
def targets() -> Iterator[dict[str, Target]]:
    """Every program, loaded once, with maps as on an edge of the default lab (and on acme's site)."""
    require_root()
    bpf = loader.compile_program(Path("xdp_edge.c"))
    ddos, lb = loader.load_xdp(bpf, "xdp_ddos"), loader.load_xdp(bpf, "xdp_lb")
    backplane = loader.load_xdp(bpf, "xdp_backplane")
    maps.apply(bpf, maps.contents_for(build_rule_set([RULE_ADAPTER.validate_python(r) for r in RULES])))
    maps.set_control_peers(bpf, [(ip_address(ROUTER), ip_address(EDGE))])
    lb_maps.write_members(bpf, LbState(edges=EDGES, vips=[(VIP, 80), (VIP, 8080)]))
    # Buckets owned by each edge in turn, so that flows stay, move and chain.
    slots = range(lb_layout.RING_SIZE)
    buckets = Buckets(bytes(i % 3 for i in slots), bytes((i + 1) % 3 for i in slots))
    lb_maps.write_table(bpf, buckets, True, 0, 1)
    bpf[b"chain"][layout.CHAIN_NEXT] = lb
    slots = [*layout.VERDICT_SLOTS, *lb_layout.COUNTER_SLOTS, *range(layout.FIRST_RULE_SLOT, 32)]

    def xdp_counted() -> int:
        return sum(packets for packets, _ in maps.read_counters(bpf, slots).values())

    edge = GreEndpoint(
        IPv4Address(ANYCAST), by_source=False, check_source=True, mark_base=MARK_BASE, to_context=True
    )
    edge.sync(
        {ACME: Route(1, IPv4Address(ACME_SITE)), GLOBEX: Route(2, IPv4Address(GLOBEX_SITE))},
        {IPv4Address(ACME_SITE): 1, IPv4Address(GLOBEX_SITE): 2},
        REFUSED,
        {1: 1, 2: 1},
    )
    site = GreEndpoint(IPv4Address(ACME_SITE), by_source=True, check_source=False, mark_base=0)
    site.sync({ACME: Route(1, IPv4Address(ANYCAST))}, {IPv4Address(ANYCAST): 1})

    def gre_counted(endpoint: GreEndpoint) -> Callable[[], int]:
        return lambda: sum(packets for packets, _ in endpoint.counters().values())

    found = [
        Target("xdp_ddos + xdp_lb (uplink)", ddos, xdp_counted, check_uplink),
        Target("xdp_lb", lb, xdp_counted, check_lb_alone, needs_count=False),
        Target("xdp_backplane", backplane, xdp_counted, check_backplane),
        Target("gre_decap (edge)", edge.decap_fd, gre_counted(edge), check_decap(True), True, tc=True),
        Target("gre_encap (edge)", edge.encap_fd, gre_counted(edge), check_encap, True, tc=True),
        Target("gre_decap (site)", site.decap_fd, gre_counted(site), check_decap(False), True, tc=True),
        Target("gre_encap (site)", site.encap_fd, gre_counted(site), check_encap, True, tc=True),
    ]
    yield {t.name: t for t in found}
    print("\nBPF fuzzing, cases run and verdicts per program:")
    for t in found:
        print(f"  {t.name:28} {sum(t.verdicts.values()):5} cases  verdicts {dict(t.verdicts)}")
    for program in (bpf, edge.program, site.program):
        program.cleanup()


def run_case(target: Target, frame: bytes, mark: int) -> None:
    before = target.counted()
    if target.tc and is_ipv4(frame) and len(frame) < 14 + 20:
        # The kernel builds no skb for IPv4 without room for its header: the program never sees one.
        with pytest.raises(OSError, match="Invalid argument"):
            testrun.run(target.fd, frame, skb_mark=mark)
        target.verdicts["refused by the kernel"] += 1
        return
    result = testrun.run(target.fd, frame, skb_mark=mark if target.tc else None)
    moved = target.counted() - before
    target.verdicts[result.retval] += 1
    assert result.retval != 0 or target.tc, "XDP_ABORTED"
    if target.exactly_once:
        assert moved == 1, f"{moved} counters moved, not one"
    elif target.needs_count:
        assert moved >= 1, "the verdict was not counted"
    target.check(frame, result.retval, result.packet)


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
MARKS = st.sampled_from([0, MARK_BASE + 1, MARK_BASE + 2, MARK_BASE + 9, 0x20001])


@pytest.mark.parametrize(
    "name",
    [
        "xdp_ddos + xdp_lb (uplink)",
        "xdp_lb",
        "xdp_backplane",
        "gre_decap (edge)",
        "gre_encap (edge)",
        "gre_decap (site)",
        "gre_encap (site)",
    ],
)
@FUZZ
@given(frame=frames(), mark=MARKS)
def test_fuzzed_packets(targets: dict[str, Target], name: str, frame: bytes, mark: int) -> None:
    run_case(targets[name], frame, mark)


@st.composite
def backplane_frames(draw: st.DrawFn) -> bytes:
    """IP-in-IP from a peer edge to this one (the backplane's own traffic), the inner packet fuzzed."""
    inner = raw(draw(st.one_of(to_vip(), ipv4(1))))
    mutation = draw(st.sampled_from(["none", "truncate", "flip"]))
    if mutation == "truncate":
        inner = inner[: draw(st.integers(0, len(inner)))]
    elif mutation == "flip" and inner:
        data = bytearray(inner)
        data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
        inner = bytes(data)
    ttl = draw(st.sampled_from([1, 2, 3]))
    outer = IP(src=EDGES[1].address, dst=EDGES[0].address, proto=4, ttl=ttl, len=20 + len(inner), id=0)
    return raw(Ether(src=EDGES[1].mac, dst=EDGES[0].mac) / outer / Raw(inner))


@st.composite
def tunnel_frames(draw: st.DrawFn, outer_src: str, outer_dst: str, inner_src: str) -> bytes:
    """Plain GRE between a site and the anycast endpoint (what the other end unwraps), the inner packet
    fuzzed: mostly from (or to) the tenant's prefix, sometimes cut short, the outer length sometimes wrong."""
    packet = draw(ipv4(1))
    field_name = "src" if inner_src else "dst"
    setattr(packet, field_name, draw(st.sampled_from([inner_src or "203.0.113.100"] * 3 + [packet.src])))
    inner = raw(packet)
    if draw(st.booleans()):
        inner = inner[: draw(st.integers(0, len(inner)))]
    outer_len = draw(st.sampled_from([None, None, None, 0, 43, 44, 64, 200]))
    outer = IP(src=outer_src, dst=outer_dst, proto=47, id=0, len=outer_len)
    return raw(Ether() / outer / GRE(proto=0x0800) / Raw(inner))


@FUZZ
@given(frame=backplane_frames())
def test_fuzzed_backplane_encapsulation(targets: dict[str, Target], frame: bytes) -> None:
    run_case(targets["xdp_backplane"], frame, 0)


@FUZZ
@given(frame=tunnel_frames(ACME_SITE, ANYCAST, "203.0.113.100"))
def test_fuzzed_gre_from_a_known_site(targets: dict[str, Target], frame: bytes) -> None:
    run_case(targets["gre_decap (edge)"], frame, 0)


@FUZZ
@given(frame=tunnel_frames(ANYCAST, ACME_SITE, ""))
def test_fuzzed_gre_from_the_edges(targets: dict[str, Target], frame: bytes) -> None:
    run_case(targets["gre_decap (site)"], frame, 0)


# Reached: the generator is only as good as the paths it drives the programs down.
REACHED = {
    "xdp_ddos + xdp_lb (uplink)": {XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT},
    "xdp_lb": {XDP_REDIRECT},
    "xdp_backplane": {XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT},
    "gre_decap (edge)": {TC_OK, TC_SHOT, TC_REDIRECT},
    "gre_encap (edge)": {TC_OK, TC_SHOT},
    "gre_decap (site)": {TC_OK, TC_SHOT},
    "gre_encap (site)": {TC_OK},
}


def test_the_fuzzing_reached_every_verdict(targets: dict[str, Target]) -> None:
    missing = {name: wanted - set(targets[name].verdicts) for name, wanted in REACHED.items()}
    assert {name: gap for name, gap in missing.items() if gap} == {}, "verdicts the generator never produced"
