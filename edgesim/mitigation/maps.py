"""Rules → the DoS program's map entries (pure), and applying them to a loaded program as a diff."""

from __future__ import annotations

import ctypes
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any

from edgesim.mitigation import layout
from edgesim.mitigation.rules import (
    AllowSrc,
    DropPort,
    DropSrc,
    Malformed,
    RateLimit,
    RuleSet,
    SynCookie,
    VipCap,
)

NS_PER_S = 1_000_000_000
# Maps that hold one entry per rule, rewritten by diff; rate_limits and config are fixed-size arrays.
RULE_MAPS = ("allow_src", "drop_src", "port_rules", "cookie_vips", "vip_caps")


def be32(address: IPv4Address) -> int:
    """An IPv4 address as the u32 whose memory holds it in network byte order (on this host)."""
    return int.from_bytes(address.packed, "little")


def gcra(rate: int, burst: int) -> tuple[int, int]:
    """(interval, tolerance) in ns for `rate` packets/s with `burst` packets allowed at once."""
    interval = max(1, NS_PER_S // rate)
    return interval, (burst - 1) * interval


@dataclass
class MapContents:
    """Every entry the rule maps should hold, as ctypes keys and values."""

    entries: dict[
        str, list[tuple[ctypes.Structure | ctypes.c_uint32, ctypes.Structure | ctypes.c_uint32]]
    ] = field(default_factory=lambda: {name: [] for name in RULE_MAPS})
    rate_limits: list[layout.RateCfg] = field(
        default_factory=lambda: [layout.RateCfg() for _ in range(layout.RATE_KINDS)]
    )
    config: layout.Config = field(default_factory=layout.Config)


def contents_for(rule_set: RuleSet) -> MapContents:
    """The map entries that enforce a rule set."""
    out = MapContents()
    for slotted in rule_set.rules:
        rule, slot = slotted.rule, ctypes.c_uint32(slotted.slot)
        match rule:
            case AllowSrc() | DropSrc():
                key = layout.LpmKey(rule.prefix.prefixlen, be32(rule.prefix.network_address))
                out.entries["allow_src" if isinstance(rule, AllowSrc) else "drop_src"].append((key, slot))
            case DropPort():
                side, port = (
                    (layout.SIDE_SRC, rule.src_port)
                    if rule.src_port is not None
                    else (layout.SIDE_DST, rule.dst_port)
                )
                out.entries["port_rules"].append(
                    (layout.PortKey(layout.IPPROTO[rule.proto], side, port), slot)
                )
            case RateLimit():
                interval, tolerance = gcra(rule.rate, rule.burst)
                kind = {"syn": layout.RATE_SYN, "udp": layout.RATE_UDP, "icmp": layout.RATE_ICMP}[rule.match]
                out.rate_limits[kind] = layout.RateCfg(interval, tolerance, slotted.slot, 1)
            case SynCookie():
                out.entries["cookie_vips"].append((layout.CookieKey(be32(rule.vip), rule.port, 0), slot))
            case VipCap():
                interval, tolerance = gcra(rule.rate, rule.burst)
                cap = layout.VipCap(interval, tolerance, 0, slotted.slot, 0)
                out.entries["vip_caps"].append((ctypes.c_uint32(be32(rule.vip)), cap))
            case Malformed():
                out.config = layout.Config(
                    slotted.slot if rule.ip_options else 0, slotted.slot if rule.fragments else 0
                )
    return out


def _config_bytes(value: Any) -> bytes:
    # A VIP cap's `tat` is the program's running state, not configuration: leave it out of comparisons.
    if isinstance(value, layout.VipCap):
        return bytes(layout.VipCap(value.interval_ns, value.tolerance_ns, 0, value.slot, 0))
    return bytes(value)


def apply(bpf: Any, contents: MapContents) -> int:
    """Bring the loaded program's maps to `contents` by diff (no reload, other entries untouched)."""
    changes = 0
    for name in RULE_MAPS:
        table = bpf[name.encode()]
        wanted = {bytes(k): (k, v) for k, v in contents.entries[name]}
        current = {bytes(k): _config_bytes(v) for k, v in table.items()}
        for key_bytes in current.keys() - wanted.keys():
            del table[table.Key.from_buffer_copy(key_bytes)]
            changes += 1
        for key_bytes, (key, value) in wanted.items():
            if current.get(key_bytes) != _config_bytes(value):
                table[table.Key.from_buffer_copy(bytes(key))] = table.Leaf.from_buffer_copy(bytes(value))
                changes += 1
    rates = bpf[b"rate_limits"]
    for kind, cfg in enumerate(contents.rate_limits):
        if bytes(rates[ctypes.c_int(kind)]) != bytes(cfg):
            rates[ctypes.c_int(kind)] = rates.Leaf.from_buffer_copy(bytes(cfg))
            changes += 1
    config = bpf[b"config"]
    if bytes(config[ctypes.c_int(0)]) != bytes(contents.config):
        config[ctypes.c_int(0)] = config.Leaf.from_buffer_copy(bytes(contents.config))
        changes += 1
    return changes


def read_counters(bpf: Any, slots: Iterable[int]) -> dict[int, tuple[int, int]]:
    """(packets, bytes) per slot, summed over CPUs."""
    stats = bpf[b"stats"]
    result = {}
    for slot in slots:
        per_cpu = stats[ctypes.c_int(slot)]
        result[slot] = (sum(c.packets for c in per_cpu), sum(c.bytes for c in per_cpu))
    return result


def clear_counters(bpf: Any, slots: Iterable[int]) -> None:
    """Zero the counters of slots that a new rule takes over."""
    stats = bpf[b"stats"]
    for slot in slots:
        stats[ctypes.c_int(slot)] = stats.Leaf()
