"""The source-prefix rules in the kernel (ddos_sources.h over the entries maps.py writes): longest-prefix
semantics across prefix lengths, allow before drop, per-rule counters, and rule changes that no packet sees
half-done."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw, raw

from edgesim.bpf import loader, testrun
from edgesim.mitigation import layout, maps, prefixes
from edgesim.mitigation.rules import RULE_ADAPTER, Rule, RuleSet, build_rule_set
from tests.conftest import require_root
from tests.prefix_reference import reference

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def edge() -> Iterator[tuple[Any, int]]:
    require_root()
    bpf = loader.compile_program(Path("xdp_edge.c"))
    fd = loader.load_xdp(bpf, "xdp_ddos")
    yield bpf, fd
    bpf.cleanup()


def udp_from(source: IPv4Address | str) -> bytes:
    # From port 40000 to 9000: no port rule, no rate limit, no cookie; only the source decides.
    return raw(
        Ether() / IP(src=str(source), dst="198.51.100.10") / UDP(sport=40000, dport=9000) / Raw(b"x" * 16)
    )


def source_rules(allow: dict[str, str], drop: dict[str, str]) -> RuleSet:
    """A rule set of allow_src and drop_src rules, name → prefix."""
    rules: list[Rule] = [
        RULE_ADAPTER.validate_python({"kind": kind, "prefix": prefix, "name": name})
        for kind, table in (("allow_src", allow), ("drop_src", drop))
        for name, prefix in table.items()
    ]
    return build_rule_set(rules)


def verdict_and_counter(
    bpf: Any, fd: int, rule_set: RuleSet, source: IPv4Address | str
) -> tuple[str, int | None]:
    """The program's verdict for a packet from `source`, and the rule slot whose counter moved (or None)."""
    slots = [layout.SLOT_PASS, *(r.slot for r in rule_set.rules)]
    before = maps.read_counters(bpf, slots)
    result = testrun.run(fd, udp_from(source))
    after = maps.read_counters(bpf, slots)
    moved = [s for s in slots[1:] if after[s][0] != before[s][0]]
    assert len(moved) <= 1, moved
    return result.verdict, (moved[0] if moved else None)


# (description, allow, drop, source, verdict, rule whose counter moves)
CASES = [
    (
        "/32 inside /24 inside /10: the /32",
        {},
        {"a": "100.64.0.0/10", "b": "100.64.1.0/24", "c": "100.64.1.9/32"},
        "100.64.1.9",
        "XDP_DROP",
        "c",
    ),
    (
        "its neighbour: the /24",
        {},
        {"a": "100.64.0.0/10", "b": "100.64.1.0/24", "c": "100.64.1.9/32"},
        "100.64.1.8",
        "XDP_DROP",
        "b",
    ),
    (
        "outside the /24: the /10",
        {},
        {"a": "100.64.0.0/10", "b": "100.64.1.0/24", "c": "100.64.1.9/32"},
        "100.100.1.9",
        "XDP_DROP",
        "a",
    ),
    ("outside everything", {}, {"a": "100.64.0.0/10", "b": "100.64.1.0/24"}, "203.0.113.9", "XDP_PASS", None),
    ("/0 drops everything", {}, {"all": "0.0.0.0/0", "b": "100.64.1.0/24"}, "203.0.113.9", "XDP_DROP", "all"),
    (
        "an allow /26 inside a drop /16",
        {"ok": "100.64.7.64/26"},
        {"d": "100.64.0.0/16"},
        "100.64.7.70",
        "XDP_PASS",
        "ok",
    ),
    (
        "the /16 just outside the /26",
        {"ok": "100.64.7.64/26"},
        {"d": "100.64.0.0/16"},
        "100.64.7.63",
        "XDP_DROP",
        "d",
    ),
    (
        "an allow /12 wins over a longer drop /30",
        {"ok": "100.64.0.0/12"},
        {"d": "100.64.7.64/30"},
        "100.64.7.65",
        "XDP_PASS",
        "ok",
    ),
    (
        "the longest of two allows around a drop counts",
        {"wide": "100.64.0.0/10", "narrow": "100.64.0.0/20"},
        {"d": "100.64.7.0/24"},
        "100.64.7.1",
        "XDP_PASS",
        "narrow",
    ),
    (
        "allow and drop of the same prefix: allow",
        {"ok": "100.64.9.0/24"},
        {"d": "100.64.9.0/24"},
        "100.64.9.1",
        "XDP_PASS",
        "ok",
    ),
]


@pytest.mark.parametrize(
    ("allow", "drop", "source", "verdict", "rule"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_longest_prefix_across_lengths(
    edge: tuple[Any, int],
    allow: dict[str, str],
    drop: dict[str, str],
    source: str,
    verdict: str,
    rule: str | None,
) -> None:
    bpf, fd = edge
    rule_set = source_rules(allow, drop)
    maps.apply(bpf, maps.contents_for(rule_set))
    slot = rule_set.find(rule).slot if rule else None  # type: ignore[union-attr]
    assert verdict_and_counter(bpf, fd, rule_set, source) == (verdict, slot)


# Random nested prefixes around 100.64.0.0/22, every length from /0 to /32.
def _network(base: int, length: int) -> str:
    return str(IPv4Network((base & ((0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF), length)))


NETWORKS = st.builds(_network, st.integers(0x64400000, 0x644003FF), st.integers(0, 32))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    allow=st.lists(NETWORKS, max_size=5, unique=True),
    drop=st.lists(NETWORKS, max_size=10, unique=True),
    sources=st.lists(st.integers(0x643FFF00, 0x64400500), min_size=1, max_size=8),
)
def test_the_kernel_decides_as_the_reference(
    edge: tuple[Any, int], allow: list[str], drop: list[str], sources: list[int]
) -> None:
    """Random rules of every length: the program's verdict and counter are those of the rules' meaning (an
    allow covering the source wins, its longest; else the longest drop), the reference in tests/unit."""
    bpf, fd = edge
    rule_set = source_rules(
        {f"a{i}": p for i, p in enumerate(allow)}, {f"d{i}": p for i, p in enumerate(drop)}
    )
    maps.apply(bpf, maps.contents_for(rule_set))
    slot_of = {(r.rule.kind, r.rule.prefix): r.slot for r in rule_set.rules}  # type: ignore[union-attr]
    allowed = {IPv4Network(p): slot_of[("allow_src", IPv4Network(p))] for p in allow}
    dropped = {IPv4Network(p): slot_of[("drop_src", IPv4Network(p))] for p in drop}
    for value in sources:
        source = IPv4Address(value)
        expected = reference(allowed, dropped, source)
        got = verdict_and_counter(bpf, fd, rule_set, source)
        if expected is None:
            assert got == ("XDP_PASS", None)
        else:
            assert got == ("XDP_PASS" if expected.verdict == layout.SRC_ALLOW else "XDP_DROP", expected.slot)


def test_both_generations_end_equal_and_only_lengths_in_use_are_listed(edge: tuple[Any, int]) -> None:
    bpf, _ = edge
    rule_set = source_rules({"ok": "100.64.7.0/24"}, {"d": "100.64.0.0/16", "one": "100.65.0.1/32"})
    contents = maps.contents_for(rule_set)
    maps.apply(bpf, contents)
    assert maps.apply(bpf, contents) == 0, "nothing to change the second time"
    by_gen: dict[int, set[tuple[int, int, int, int]]] = {0: set(), 1: set()}
    for key, value in bpf[b"src_rules"].items():
        by_gen[key.gen].add((key.prefixlen, key.addr, value.slot, value.verdict))
    assert by_gen[0] == by_gen[1] and len(by_gen[0]) == 3
    for gen in (0, 1):
        lengths = bpf[b"src_lengths"][gen]
        assert (lengths.count, tuple(lengths.len[:3])) == (3, (32, 24, 16))
    assert prefixes.lengths(contents.sources) == (32, 24, 16)


def test_a_change_is_never_seen_half_done(edge: tuple[Any, int]) -> None:
    """A /16 drop replaced by a /24 drop inside it (and 300 more prefixes): a source in the /24 is dropped
    before and after, so it must be dropped at every instant in between, while another thread runs packets.
    (Writing the maps one entry at a time, the /16 removed first, would pass it for a moment.)"""
    bpf, fd = edge
    wide = source_rules({}, {"wide": "100.64.0.0/16"})
    others = {
        f"x{i}": str(net)
        for i, net in enumerate(IPv4Network("100.96.0.0/16").subnets(new_prefix=28))
        if i < 300
    }
    narrow = source_rules({}, {"narrow": "100.64.1.0/24", **others})
    maps.apply(bpf, maps.contents_for(wide))
    packet = udp_from("100.64.1.7")
    stop = threading.Event()
    seen: list[int] = []

    def run_packets() -> None:
        while not stop.is_set():
            seen.append(testrun.run(fd, packet).retval)

    runner = threading.Thread(target=run_packets)
    runner.start()
    try:
        for _ in range(10):
            maps.apply(bpf, maps.contents_for(narrow))
            maps.apply(bpf, maps.contents_for(wide))
    finally:
        stop.set()
        runner.join()
    assert len(seen) > 100
    assert set(seen) == {1}, f"verdicts seen: {sorted(set(seen))} (1 is XDP_DROP)"
