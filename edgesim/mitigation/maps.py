"""Rules → the DoS program's map entries (pure), and applying them to a loaded program as a diff."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from edgesim.bpf import grace, tables
from edgesim.bpf.tables import be32
from edgesim.mitigation import layout, prefixes
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
# rate_limits and config are fixed-size arrays. The source-prefix rules have maps of their own (src_rules,
# src_lengths, src_active), written in two generations.
RULE_MAPS: dict[str, tuple[type, type]] = {
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
    # The source-prefix entries (allow resolved, see prefixes.py), by prefix.
    sources: dict[IPv4Network, layout.SrcRule] = field(default_factory=dict)
    rate_limits: list[layout.RateCfg] = field(default_factory=lambda: [layout.RATE_OFF] * layout.RATE_KINDS)
    config: layout.Config = layout.MALFORMED_OFF


def contents_for(rule_set: RuleSet) -> MapContents:
    """The map entries that enforce a rule set."""
    out = MapContents()
    allow: dict[IPv4Network, int] = {}
    drop: dict[IPv4Network, int] = {}
    for slotted in rule_set.rules:
        rule, slot = slotted.rule, slotted.slot
        match rule:
            case AllowSrc():
                allow[rule.prefix] = slot
            case DropSrc():
                drop[rule.prefix] = slot
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
    if len(allow) + len(drop) > layout.MAX_PREFIXES:
        raise ValueError(f"at most {layout.MAX_PREFIXES:,} allow_src and drop_src rules together")
    out.sources = prefixes.resolve(allow, drop)
    return out


def _write_array(table: Any, index: int, value: tuple[Any, ...]) -> int:
    """Write one array entry when it differs from `value`; 1 if it did."""
    if tables.decode(table[index], type(value)) == value:
        return 0
    table[index] = tables.encode(table.Leaf, value)
    return 1


# A source-prefix entry as the writer compares it: (prefix length, __be32 network address) → its decision.
_Entries = dict[tuple[int, int], layout.SrcRule]


def _write_generation(
    bpf: Any, gen: int, current: _Entries, wanted: _Entries, lengths: layout.SrcLengths
) -> None:
    """Bring one generation's entries and lengths to `wanted` by diff (it is not in force meanwhile)."""
    table = bpf[b"src_rules"]
    for prefixlen, addr in current.keys() - wanted.keys():
        del table[tables.encode(table.Key, layout.SrcKey(gen, prefixlen, addr))]
    for (prefixlen, addr), rule in wanted.items():
        if current.get((prefixlen, addr)) != rule:
            table[tables.encode(table.Key, layout.SrcKey(gen, prefixlen, addr))] = tables.encode(
                table.Leaf, rule
            )
    _write_array(bpf[b"src_lengths"], gen, lengths)


def apply_sources(bpf: Any, sources: Mapping[IPv4Network, layout.SrcRule]) -> int:
    """Bring the source-prefix entries to `sources` so that every packet sees the old rules or the new ones.

    The generation not in force gets the new entries and lengths first; then src_active switches to it (one
    4-byte array write, which every packet reads once), and once the programs that started on the old one
    have finished, the old generation is brought to the same entries, ready for the next change. Returns the
    entries that changed.
    """
    wanted = {(net.prefixlen, be32(net.network_address)): rule for net, rule in sources.items()}
    lengths = prefixes.lengths_leaf(sources)
    table, active = bpf[b"src_rules"], bpf[b"src_active"]
    current: dict[int, _Entries] = {gen: {} for gen in range(layout.SRC_GENERATIONS)}
    # One BPF_MAP_LOOKUP_BATCH call per few thousand entries: reading 200,000 entries one key at a time
    # took seconds (0.09 s this way).
    for key, value in table.items_lookup_batch():
        entry = tables.decode(key, layout.SrcKey)
        current[entry.gen][(entry.prefixlen, entry.addr)] = tables.decode(value, layout.SrcRule)
    live = active[0].value % layout.SRC_GENERATIONS
    if current[live] == wanted and tables.decode(bpf[b"src_lengths"][live], layout.SrcLengths) == lengths:
        return 0
    changes = len(current[live].keys() - wanted.keys()) + sum(
        1 for key, rule in wanted.items() if current[live].get(key) != rule
    )
    standby = (live + 1) % layout.SRC_GENERATIONS
    _write_generation(bpf, standby, current[standby], wanted, lengths)
    active[0] = active.Leaf(standby)
    grace.wait_for_programs()
    _write_generation(bpf, live, current[live], wanted, lengths)
    return changes


def apply(bpf: Any, contents: MapContents) -> int:
    """Bring the loaded program's maps to `contents` by diff (no reload, other entries untouched)."""
    changes = sum(
        tables.sync(bpf[name.encode()], contents.entries[name], key_type, value_type)
        for name, (key_type, value_type) in RULE_MAPS.items()
    )
    changes += apply_sources(bpf, contents.sources)
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
