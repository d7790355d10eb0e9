"""Source-prefix rules as exact-match entries per length (edgesim/mitigation/prefixes.py): the program's
longest-first lookup over the resolved entries decides exactly as the allowlist-then-longest-drop rules say,
for every mix of lengths."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from hypothesis import given, settings
from hypothesis import strategies as st

from edgesim.mitigation import layout, prefixes
from tests.prefix_reference import reference

ALLOW, DROP = layout.SRC_ALLOW, layout.SRC_DROP


def decide(allow: dict[str, int], drop: dict[str, int], source: str) -> layout.SrcRule | None:
    entries = prefixes.resolve(
        {IPv4Network(k): v for k, v in allow.items()}, {IPv4Network(k): v for k, v in drop.items()}
    )
    return prefixes.decide(entries, IPv4Address(source))


# (description, allow, drop, source, expected (slot, verdict) or None)
CASES = [
    ("no rules", {}, {}, "100.64.0.1", None),
    (
        "longest drop counts",
        {},
        {"100.64.0.0/10": 20, "100.64.0.0/16": 21, "100.64.0.0/24": 22},
        "100.64.0.9",
        (22, DROP),
    ),
    (
        "next length out when the longest misses",
        {},
        {"100.64.0.0/10": 20, "100.64.0.0/24": 22},
        "100.64.1.9",
        (20, DROP),
    ),
    ("a /32", {}, {"100.64.0.9/32": 23, "100.64.0.0/24": 22}, "100.64.0.9", (23, DROP)),
    ("its neighbour", {}, {"100.64.0.9/32": 23, "100.64.0.0/24": 22}, "100.64.0.8", (22, DROP)),
    ("/0 covers everything", {}, {"0.0.0.0/0": 30}, "203.0.113.7", (30, DROP)),
    ("a longer allow inside a drop", {"100.64.5.0/24": 40}, {"100.64.0.0/16": 21}, "100.64.5.1", (40, ALLOW)),
    ("the drop around it", {"100.64.5.0/24": 40}, {"100.64.0.0/16": 21}, "100.64.6.1", (21, DROP)),
    (
        "a shorter allow around a longer drop wins",
        {"100.64.0.0/10": 41},
        {"100.64.5.0/24": 22},
        "100.64.5.1",
        (41, ALLOW),
    ),
    (
        "the longest of the allows around a drop counts",
        {"100.64.0.0/10": 41, "100.64.0.0/16": 42},
        {"100.64.5.0/24": 22},
        "100.64.5.1",
        (42, ALLOW),
    ),
    (
        "the same prefix allowed and dropped",
        {"100.64.5.0/24": 40},
        {"100.64.5.0/24": 22},
        "100.64.5.1",
        (40, ALLOW),
    ),
    (
        "an allow elsewhere changes nothing",
        {"100.65.0.0/16": 40},
        {"100.64.5.0/24": 22},
        "100.64.5.1",
        (22, DROP),
    ),
    ("allow everything", {"0.0.0.0/0": 43}, {"100.64.5.7/32": 23}, "100.64.5.7", (43, ALLOW)),
]


def test_cases_across_lengths() -> None:
    for description, allow, drop, source, expected in CASES:
        got = decide(allow, drop, source)
        assert got == (layout.SrcRule(*expected) if expected else None), description
        assert got == reference(
            {IPv4Network(k): v for k, v in allow.items()},
            {IPv4Network(k): v for k, v in drop.items()},
            IPv4Address(source),
        ), description


def test_lengths_are_the_ones_in_use_longest_first() -> None:
    entries = prefixes.resolve(
        {IPv4Network("100.64.0.0/10"): 16}, {IPv4Network("100.64.0.9/32"): 17, IPv4Network("0.0.0.0/0"): 18}
    )
    assert prefixes.lengths(entries) == (32, 10, 0)
    leaf = prefixes.lengths_leaf(entries)
    assert leaf.count == 3 and leaf.len[:4] == (32, 10, 0, 0) and len(leaf.len) == layout.SRC_LENGTHS
    assert prefixes.lengths_leaf({}) == layout.SrcLengths(0, (0,) * layout.SRC_LENGTHS)


# Prefixes inside 100.64.0.0/24 and its neighbours, so that random rules nest and overlap often.
def _network(base: int, length: int) -> IPv4Network:
    return IPv4Network((base & ((0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF), length))


NETWORKS = st.builds(_network, st.integers(0x64400000, 0x644003FF), st.integers(0, 32))
TABLES = st.dictionaries(NETWORKS, st.integers(16, 1000), max_size=12)


@settings(max_examples=400, deadline=None)
@given(
    allow=TABLES, drop=TABLES, sources=st.lists(st.integers(0x643FFF00, 0x64400500), min_size=1, max_size=20)
)
def test_longest_first_lookup_decides_as_the_rules_say(
    allow: dict[IPv4Network, int], drop: dict[IPv4Network, int], sources: list[int]
) -> None:
    entries = prefixes.resolve(allow, drop)
    assert set(entries) == set(allow) | set(drop), "one entry per prefix"
    for value in sources:
        source = IPv4Address(value)
        assert prefixes.decide(entries, source) == reference(allow, drop, source)
