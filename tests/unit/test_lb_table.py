"""Consistent hashing for the L4 load balancer: balance, minimal movement, drains and the C mirror."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgesim.lb import layout, maglev, rings, table
from edgesim.lb.store import LbEdge, LbState

CONSTS = (Path(__file__).resolve().parents[2] / "edgesim" / "bpf" / "lb_consts.h").read_text()


def edges(n: int) -> dict[str, int]:
    return {f"edge{i}": 1 for i in range(1, n + 1)}


@pytest.mark.parametrize("n", [4, 8, 16])
def test_largest_share_within_two_percent_of_the_mean(n: int) -> None:
    shares = maglev.shares(maglev.build(edges(n)))
    assert len(shares) == n
    mean = 1 / n
    assert max(shares.values()) <= mean * 1.02
    assert min(shares.values()) >= mean * 0.98


@pytest.mark.parametrize("n", [4, 8, 16])
def test_removing_one_edge_moves_about_only_its_flows(n: int) -> None:
    before = maglev.build(edges(n))
    for gone in edges(n):
        after = maglev.build({k: v for k, v in edges(n).items() if k != gone})
        assert gone not in after
        assert maglev.moved(before, after) <= 1 / n + 0.02, gone


def test_weights_scale_the_shares() -> None:
    shares = maglev.shares(maglev.build({"edge1": 2, "edge2": 1, "edge3": 1}))
    assert shares["edge1"] == pytest.approx(0.5, abs=0.01)
    assert shares["edge2"] == pytest.approx(0.25, abs=0.01)


def test_the_table_is_deterministic_and_prime_sized() -> None:
    size = maglev.RING_SIZE
    assert all(size % d for d in range(2, int(size**0.5) + 1))
    key = maglev.key_of(edges(4))
    assert maglev._build.__wrapped__(key, size) == maglev.build_ids(edges(4))[1]
    assert [maglev.build_ids(edges(4))[0][i] for i in maglev._build.__wrapped__(key, size)] == maglev.build(
        edges(4)
    )


def state(n: int, drained: list[str]) -> LbState:
    return LbState(
        edges=[
            LbEdge(name=f"edge{i}", address=f"198.18.1.{i}", mac=f"02:e5:c6:12:01:{i:02x}")
            for i in range(1, n + 1)
        ],
        drained=drained,
    )


def test_a_drained_edge_owns_nothing_new_but_stays_second_hop_of_its_buckets() -> None:
    before = table.buckets(state(4, []), (), "edge1")
    buckets = table.buckets(state(4, ["edge2"]), (), "edge1", before)
    assert 1 not in {first for first, _ in buckets}  # edge2 has id 1
    # edge2's quarter of the buckets moved, each keeping edge2 as its second hop; Maglev may move a few
    # more between the remaining edges (their second hop is then their previous owner).
    moved = [(first, second) for first, second in buckets if first != second]
    via_edge2 = sum(second == 1 for _, second in moved) / len(buckets)
    assert via_edge2 == pytest.approx(0.25, abs=0.001)
    assert len(moved) / len(buckets) <= 0.25 + 0.02
    assert all(second == old for (_, second), (old, _) in zip(buckets, before, strict=True))


def test_undrain_chains_back_to_where_connections_opened_meanwhile() -> None:
    whole = table.buckets(state(4, []), (), "edge1")
    drained = table.buckets(state(4, ["edge2"]), (), "edge1", whole)
    back = table.buckets(state(4, []), (), "edge1", drained)
    assert [first for first, _ in back] == [first for first, _ in whole]
    pairs = zip(back, drained, strict=True)
    assert all(second == d_first for (first, second), (d_first, _) in pairs if first != d_first)


def test_a_failing_edge_gets_nothing_new_and_keeps_its_connections() -> None:
    whole = table.buckets(state(4, []), (), "edge1")
    failing = table.buckets(state(4, []), {"edge2"}, "edge1", whole)
    assert 1 not in {first for first, _ in failing}
    # A false alarm must not cost the connections the edge holds: its buckets chain to it, and no other
    # bucket moves.
    assert sum(second == 1 for _, second in failing) == sum(first == 1 for first, _ in whole)
    assert all(f == w for (f, _), (w, _) in zip(failing, whole, strict=True) if w != 1)


def test_layout_mirrors_the_c_constants() -> None:
    for name in (
        "RING_SIZE",
        "MAX_EDGES",
        "SLOT_LB_LOCAL",
        "SLOT_LB_FORWARDED",
        "SLOT_LB_CHAINED",
        "SLOT_LB_RECEIVED",
        "SLOT_LB_BAD_ENCAP",
        "HOP_DIRECT",
        "HOP_FIRST",
        "HOP_SECOND",
        "ENCAP_TTL_FIRST",
        "ENCAP_TTL_SECOND",
    ):
        found = re.search(rf"#define {name} (\d+)", CONSTS)
        assert found and int(found.group(1)) == getattr(layout, name), name


def test_a_table_is_packed_as_struct_lb_bucket() -> None:
    assert table.Buckets(b"\x01\x02", b"\x03\x04").packed() == b"\x01\x03\x02\x04"
    assert list(table.Buckets(b"\x01\x02", b"\x03\x04")) == [(1, 3), (2, 4)]


def test_the_lab_s_agents_build_each_table_once_and_rebuild_a_damaged_file(tmp_path: Path) -> None:
    weights = edges(4)
    first, second = rings.SharedRings(tmp_path), rings.SharedRings(tmp_path)
    assert first.build(weights) == maglev.build_ids(weights)
    (filed,) = (tmp_path / rings.RINGS_DIR).glob("*.ring")
    built_at = filed.stat().st_mtime_ns
    assert second.build(weights) == maglev.build_ids(weights)
    assert filed.stat().st_mtime_ns == built_at, "the second agent built the table again"
    filed.write_bytes(b"\x07" * maglev.RING_SIZE)  # names an edge the table does not have
    assert second.build(weights) == maglev.build_ids(weights)
    assert first.build({}) == ((), b"")
