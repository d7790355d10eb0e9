"""The Python mirror of the DoS program's constants and structs matches the C headers."""

from __future__ import annotations

import ctypes
import re

from edgesim.bpf.loader import BPF_DIR
from edgesim.mitigation import layout


def defines() -> dict[str, int]:
    text = (BPF_DIR / "ddos_consts.h").read_text()
    return {name: int(value) for name, value in re.findall(r"^#define (\w+) (\d+)", text, re.M)}


def test_every_shared_constant_matches_consts_h() -> None:
    found = defines()
    shared = {name: getattr(layout, name) for name in found if hasattr(layout, name)}
    assert len(shared) >= 15
    assert shared == {name: found[name] for name in shared}


def test_struct_sizes_match_the_c_layout() -> None:
    # Sizes from ddos_structs.h with natural alignment, as clang lays them out for BPF.
    expected = {
        layout.Counter: 16,
        layout.LpmKey: 8,
        layout.PortKey: 4,
        layout.RateCfg: 24,
        layout.CookieKey: 8,
        layout.VipCap: 32,
        layout.Config: 8,
    }
    assert {t: ctypes.sizeof(t) for t in expected} == expected
