"""Rules → the DoS program's map entries (pure), and applying them to a loaded program as a diff."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any

from edgesim.bpf import tables
from edgesim.bpf.tables import be32
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
# Maps that hold one entry per rule, rewritten by diff, with the descriptions of their keys and values;
# rate_limits and config are fixed-size arrays.
RULE_MAPS: dict[str, tuple[type, type]] = {
    "allow_src": (layout.LpmKey, int),
    "drop_src": (layout.LpmKey, int),
    "port_rules": (layout.PortKey, int),
    "cookie_vips": (layout.CookieKey, int),
    "vip_caps": (int, layout.VipCap),
}


def gcra(rate: int, burst: int) -> tuple[int, int]:
    """(interval, tolerance) in ns for `rate` packets/s with `burst` packets allowed at once."""
    interval = max(1, NS_PER_S // rate)
    return interval, (burst - 1) * interval


@dataclass
class MapContents:
    """Every entry the rule maps should hold, as descriptions (layout's NamedTuples and ints) by map."""

    entries: dict[str, dict[Any, Any]] = field(default_factory=lambda: {name: {} for name in RULE_MAPS})
    rate_limits: list[layout.RateCfg] = field(default_factory=lambda: [layout.RATE_OFF] * layout.RATE_KINDS)
    config: layout.Config = layout.MALFORMED_OFF


def contents_for(rule_set: RuleSet) -> MapContents:
    """The map entries that enforce a rule set."""
    out = MapContents()
    for slotted in rule_set.rules:
        rule, slot = slotted.rule, slotted.slot
        match rule:
            case AllowSrc() | DropSrc():
                key = layout.LpmKey(rule.prefix.prefixlen, be32(rule.prefix.network_address))
                out.entries["allow_src" if isinstance(rule, AllowSrc) else "drop_src"][key] = slot
            case DropPort():
                side, port = (
                    (layout.SIDE_SRC, rule.src_port)
                    if rule.src_port is not None
                    else (layout.SIDE_DST, rule.dst_port)
                )
                out.entries["port_rules"][layout.PortKey(layout.IPPROTO[rule.proto], side, port)] = slot
            case RateLimit():
                interval, tolerance = gcra(rule.rate, rule.burst)
                kind = {"syn": layout.RATE_SYN, "udp": layout.RATE_UDP, "icmp": layout.RATE_ICMP}[rule.match]
                out.rate_limits[kind] = layout.RateCfg(interval, tolerance, slot, 1)
            case SynCookie():
                out.entries["cookie_vips"][layout.CookieKey(be32(rule.vip), rule.port)] = slot
            case VipCap():
                interval, tolerance = gcra(rule.rate, rule.burst)
                out.entries["vip_caps"][be32(rule.vip)] = layout.VipCap(interval, tolerance, slot)
            case Malformed():
                out.config = layout.Config(slot if rule.ip_options else 0, slot if rule.fragments else 0)
    return out


def _write_array(table: Any, index: int, value: tuple[Any, ...]) -> int:
    """Write one array entry when it differs from `value`; 1 if it did."""
    if tables.decode(table[index], type(value)) == value:
        return 0
    table[index] = tables.encode(table.Leaf, value)
    return 1


def apply(bpf: Any, contents: MapContents) -> int:
    """Bring the loaded program's maps to `contents` by diff (no reload, other entries untouched)."""
    changes = sum(
        tables.sync(bpf[name.encode()], contents.entries[name], key_type, value_type)
        for name, (key_type, value_type) in RULE_MAPS.items()
    )
    rates = bpf[b"rate_limits"]
    changes += sum(_write_array(rates, kind, cfg) for kind, cfg in enumerate(contents.rate_limits))
    return changes + _write_array(bpf[b"config"], 0, contents.config)


def read_counters(bpf: Any, slots: Iterable[int]) -> dict[int, tuple[int, int]]:
    """(packets, bytes) per slot, summed over CPUs."""
    stats = bpf[b"stats"]
    result = {}
    for slot in slots:
        per_cpu = stats[slot]
        result[slot] = (sum(c.packets for c in per_cpu), sum(c.bytes for c in per_cpu))
    return result


def clear_counters(bpf: Any, slots: Iterable[int]) -> None:
    """Zero the counters of slots that a new rule takes over."""
    stats = bpf[b"stats"]
    for slot in slots:
        stats[slot] = stats.Leaf()


def set_control_peers(bpf: Any, peers: Iterable[tuple[IPv4Address, IPv4Address]]) -> None:
    """The lab's control sessions on the uplink, (router address, edge address): BGP and BFD between them
    pass before every rule (with TTL 255, see ddos_consts.h)."""
    wanted = {layout.ControlKey(be32(router), be32(edge)): 1 for router, edge in peers}
    tables.sync(bpf[b"control_peers"], wanted, layout.ControlKey, int)
