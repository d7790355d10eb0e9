"""The Python mirrors of the BPF programs' constants and map structs match the C headers.

(tests/bpf/test_map_types.py checks the same descriptions against the types bcc builds from the C.)
"""

from __future__ import annotations

import re

import pytest

from edgesim.bpf.loader import BPF_DIR
from edgesim.mitigation import layout
from edgesim.tenants import gre

# Each description, its C struct, and the fields it leaves out on purpose (padding, the program's state).
DESCRIPTIONS = [
    (layout.SrcKey, "ddos_structs.h", "src_key", {"pad"}),
    (layout.SrcRule, "ddos_structs.h", "src_rule", set()),
    (layout.SrcLengths, "ddos_structs.h", "src_lengths", {"pad"}),
    (layout.PortKey, "ddos_structs.h", "port_key", set()),
    (layout.ControlKey, "ddos_structs.h", "control_key", set()),
    (layout.RateCfg, "ddos_structs.h", "rate_cfg", set()),
    (layout.CookieKey, "ddos_structs.h", "cookie_key", {"pad"}),
    (layout.VipCap, "ddos_structs.h", "vip_cap", {"tat", "pad"}),
    (layout.Config, "ddos_structs.h", "config", set()),
    (gre.PrefixKey, "gre_structs.h", "prefix_key", set()),
    (gre.TenantRoute, "gre_structs.h", "tenant_route", set()),
]


def defines() -> dict[str, int]:
    text = (BPF_DIR / "ddos_consts.h").read_text()
    return {name: int(value) for name, value in re.findall(r"^#define (\w+) (\d+)", text, re.M)}


def c_fields(header: str, struct: str) -> list[str]:
    """The field names of `struct <struct> { ... };` in a header, in order."""
    body = re.search(rf"^struct {struct} \{{(.*?)^\}};", (BPF_DIR / header).read_text(), re.M | re.S)
    assert body, f"struct {struct} not found in {header}"
    return re.findall(r"^\s*[\w ]+?\s\**(\w+)(?:\[\w+\])?;", body.group(1), re.M)


def test_every_shared_constant_matches_ddos_consts_h() -> None:
    found = defines()
    shared = {name: getattr(layout, name) for name in found if hasattr(layout, name)}
    assert len(shared) >= 15
    assert shared == {name: found[name] for name in shared}


@pytest.mark.parametrize(
    ("description", "header", "struct", "left_out"), DESCRIPTIONS, ids=[d[2] for d in DESCRIPTIONS]
)
def test_descriptions_name_the_c_fields_in_order(
    description: type, header: str, struct: str, left_out: set[str]
) -> None:
    fields = c_fields(header, struct)
    assert left_out <= set(fields)
    assert list(description._fields) == [f for f in fields if f not in left_out]  # type: ignore[attr-defined]


def test_the_header_reader_sees_every_field() -> None:
    # The check above is only as good as its reading of the headers: every field, arrays included.
    assert c_fields("lb_structs.h", "lb_edge") == ["addr", "mac", "present", "pad"]
    assert c_fields("ddos_structs.h", "rate_cfg") == ["interval_ns", "tolerance_ns", "slot", "enabled"]
