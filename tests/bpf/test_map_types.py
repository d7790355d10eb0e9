"""The Python descriptions of map keys and values against the types bcc builds from the C (a renamed,
reordered or added field fails here), the sizes clang gives the structs, and the bytes that reach a map."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from edgesim.bpf import loader, tables
from edgesim.mitigation import layout
from edgesim.tenants import gre
from tests.conftest import require_root

pytestmark = pytest.mark.root

# (map, key or leaf, description, fields it leaves out on purpose)
DESCRIBED = [
    ("control_peers", "Key", layout.ControlKey, set()),
    ("src_rules", "Key", layout.SrcKey, {"pad"}),
    ("src_rules", "Leaf", layout.SrcRule, set()),
    ("src_lengths", "Leaf", layout.SrcLengths, {"pad"}),
    ("port_rules", "Key", layout.PortKey, set()),
    ("rate_limits", "Leaf", layout.RateCfg, set()),
    ("cookie_vips", "Key", layout.CookieKey, {"pad"}),
    ("vip_caps", "Leaf", layout.VipCap, {"tat", "pad"}),
    ("config", "Leaf", layout.Config, set()),
]
# Sizes with natural alignment, as clang lays the structs out for BPF.
SIZES = {
    ("stats", "sLeaf"): 16,
    ("src_rules", "Key"): 8,
    ("src_rules", "Leaf"): 8,
    ("src_lengths", "Leaf"): 40,
    ("port_rules", "Key"): 4,
    ("rate_limits", "Leaf"): 24,
    ("cookie_vips", "Key"): 8,
    ("vip_caps", "Leaf"): 32,
    ("config", "Leaf"): 8,
    ("lb_ring", "Leaf"): 2,
    ("lb_edges", "Leaf"): 12,
    ("lb_config", "Leaf"): 16,
    ("lb_vips", "Key"): 8,
}


@pytest.fixture(scope="module")
def edge() -> Iterator[Any]:
    require_root()
    bpf = loader.compile_program(Path("xdp_edge.c"))
    yield bpf
    bpf.cleanup()


@pytest.mark.parametrize(
    ("name", "part", "description", "left_out"), DESCRIBED, ids=[f"{d[0]}.{d[1]}" for d in DESCRIBED]
)
def test_descriptions_match_bccs_types(
    edge: Any, name: str, part: str, description: type, left_out: set[str]
) -> None:
    fields = tables.fields(getattr(edge[name.encode()], part))
    assert left_out <= set(fields)
    assert description._fields == tuple(f for f in fields if f not in left_out)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("name", "part"), list(SIZES), ids=[f"{n}.{p}" for n, p in SIZES])
def test_struct_sizes_match_the_c_layout(edge: Any, name: str, part: str) -> None:
    assert ctypes.sizeof(getattr(edge[name.encode()], part)) == SIZES[(name, part)]


def test_gre_descriptions_match_bccs_types() -> None:
    require_root()
    endpoint = gre.GreEndpoint(IPv4Address("192.0.2.1"), by_source=False, check_source=True, mark_base=0)
    try:
        prefixes = endpoint.program[b"prefixes"]
        assert gre.PrefixKey._fields == tables.fields(prefixes.Key)
        assert gre.TenantRoute._fields == tables.fields(prefixes.Leaf)
    finally:
        endpoint.program.cleanup()


def test_keys_reach_the_map_in_network_byte_order(edge: Any) -> None:
    key = layout.SrcKey(1, 16, tables.be32(IPv4Address("100.127.0.0")))
    assert bytes(tables.encode(edge[b"src_rules"].Key, key)) == bytes([1, 16, 0, 0, 100, 127, 0, 0])
    cookie = tables.encode(
        edge[b"cookie_vips"].Key, layout.CookieKey(tables.be32(IPv4Address("198.51.100.10")), 80)
    )
    assert bytes(cookie) == bytes([198, 51, 100, 10]) + (80).to_bytes(2, "little") + b"\0\0"


def test_a_cap_is_written_with_its_schedule_at_zero_and_compared_without_it(edge: Any) -> None:
    caps = edge[b"vip_caps"]
    vip = tables.be32(IPv4Address("198.51.100.20"))
    wanted = {vip: layout.VipCap(1000, 2000, 17)}
    assert tables.sync(caps, wanted, int, layout.VipCap) == 1
    assert caps[caps.Key(vip)].tat == 0
    caps[caps.Key(vip)] = caps.Leaf(interval_ns=1000, tolerance_ns=2000, tat=12345, slot=17)
    assert tables.sync(caps, wanted, int, layout.VipCap) == 0, "a running schedule is no change"
    assert tables.sync(caps, {}, int, layout.VipCap) == 1
    assert len(caps) == 0
