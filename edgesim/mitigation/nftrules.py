"""The layer-7 mitigation rules as nftables JSON: one table per edge, one rule and its objects per slot. Pure.

The XDP program sees packets one at a time; what needs connection state or a look into the payload lives in
the edge's stack, in table `ip edgesim_l7`, the nftables form of the seed's iptables layer (connlimit,
hashlimit, ipset, xt_bpf payload matches):

| kind | nftables |
|---|---|
| `blocklist` | a set of sources with timeouts (`flags dynamic, timeout`); `ip saddr @set drop` (prerouting) |
| `conn_limit` | `add @c<slot> { ip saddr ct count over N }` on connection attempts to VIP:port (input) |
| `conn_rate` | a meter: `update @m<slot> { ip saddr limit rate over R/second burst B packets }` (input) |
| `payload_match` | `@ih,<bits>,<bits> == value` (raw payload, from the start of the TCP/UDP payload) |

Every rule counts what it drops in a named counter `r<slot>` and carries the comment `edgesim slot <slot>
<digest>`, so an agent can bring the table to a new rule set by diff: rules whose comment is gone are deleted
by handle, new ones added, and everything else (counters, meters, connection counts, blocked sources) keeps
its state. An offender of a `block_set` rule is put in that blocklist's set for `block_s` seconds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from edgesim.mitigation.rules import (
    Blocklist,
    ConnLimit,
    ConnRate,
    PayloadMatch,
    Rule,
    RuleSet,
    SlottedRule,
)
from edgesim.nftexpr import Command, Expr, base_chain, match, payload, tcp_flags, verdict

TABLE = "edgesim_l7"
PRE = "pre"  # prerouting: sources blocked, payload matches (before anything else of the stack sees them)
INPUT = "in"  # input: connection attempts to the edge's own VIPs, with their conntrack entry
COMMENT = "edgesim slot"
METER_TIMEOUT_S = 60  # a meter's per-source state is forgotten after this long quiet (spoofed sources)
SET_SIZE = 65535
CHUNK = 4  # bytes compared at once by a raw payload match (nft's JSON integers are 64-bit)
L7_TYPES = (Blocklist, ConnLimit, ConnRate, PayloadMatch)


@dataclass(frozen=True)
class SlotObjects:
    """What one L7 rule puts in the table: its sets and counter (by name), and its rule."""

    slot: int
    comment: str
    chain: str
    sets: dict[str, Command] = field(default_factory=dict)
    counter: str = ""
    rule: list[Expr] = field(default_factory=list)


def is_l7(rule: Rule) -> bool:
    """Whether nftables (not XDP) enforces this rule."""
    return isinstance(rule, L7_TYPES)


def l7_rules(rule_set: RuleSet) -> list[SlottedRule]:
    """The rules of a set that live in nftables, in slot order."""
    return sorted((r for r in rule_set.rules if is_l7(r.rule)), key=lambda r: r.slot)


def digest(slotted: SlottedRule) -> str:
    """A short digest of a rule and its slot: the rule's identity in the table."""
    text = json.dumps(slotted.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def counter_name(slot: int) -> str:
    """The named counter of a rule's slot."""
    return f"r{slot}"


def _set(name: str, flags: list[str], timeout: int | None = None) -> Command:
    # Sets a rule adds to from the packet path are dynamic; nft marks them so when it sees such a rule (its
    # JSON parser has no `dynamic` flag).
    spec: dict = {"name": name, "type": "ipv4_addr", "size": SET_SIZE}
    if flags:
        spec["flags"] = flags
    if timeout is not None:
        spec["timeout"] = timeout
    return {"set": spec}


def _saddr() -> Expr:
    return payload("ip", "saddr")


def _to_vip_port(vip: object, proto: str, port: int) -> list[Expr]:
    head = [match(payload("ip", "daddr"), str(vip))] if vip is not None else []
    return [*head, match(payload(proto, "dport"), port)]


def raw_payload(offset: int, data: bytes) -> list[Expr]:
    """`@ih,<bits>,<bits> == value` for `data` at `offset` bytes into the TCP/UDP payload, 4 bytes a time."""
    out = []
    for start in range(0, len(data), CHUNK):
        part = data[start : start + CHUNK]
        left = {"payload": {"base": "ih", "offset": 8 * (offset + start), "len": 8 * len(part)}}
        out.append(match(left, int.from_bytes(part, "big")))
    return out


def _block(rule: ConnLimit | ConnRate | PayloadMatch) -> list[Expr]:
    if rule.block_set is None:
        return []
    elem: object = _saddr()
    if rule.block_s is not None:
        elem = {"elem": {"val": _saddr(), "timeout": rule.block_s}}
    return [{"set": {"op": "update", "elem": elem, "set": f"@{rule.block_set}"}}]


def objects_for(slotted: SlottedRule) -> SlotObjects:
    """The sets, counter and rule that enforce one L7 rule."""
    rule, slot = slotted.rule, slotted.slot
    comment = f"{COMMENT} {slot} {digest(slotted)}"
    count = counter_name(slot)
    tail = [{"counter": count}, verdict("drop")]
    attempt = tcp_flags(["syn", "ack"], "syn")
    match rule:
        case Blocklist():
            sets = {rule.set_name: _set(rule.set_name, ["timeout"], rule.timeout_s)}
            body = [match(_saddr(), f"@{rule.set_name}"), *tail]
            return SlotObjects(slot, comment, PRE, sets, count, body)
        case ConnLimit():
            name = f"c{slot}"
            over = {
                "set": {"op": "add", "elem": _saddr(), "set": f"@{name}", "stmt": [_ct_count(rule.count)]}
            }
            body = [*_to_vip_port(rule.vip, "tcp", rule.port), attempt, over, *_block(rule), *tail]
            return SlotObjects(slot, comment, INPUT, {name: _set(name, [])}, count, body)
        case ConnRate():
            name = f"m{slot}"
            limit = {"limit": {"rate": rule.rate, "burst": rule.burst, "per": "second", "inv": True}}
            over = {"set": {"op": "update", "elem": _saddr(), "set": f"@{name}", "stmt": [limit]}}
            body = [*_to_vip_port(rule.vip, "tcp", rule.port), attempt, over, *_block(rule), *tail]
            sets = {name: _set(name, ["timeout"], METER_TIMEOUT_S)}
            return SlotObjects(slot, comment, INPUT, sets, count, body)
        case PayloadMatch():
            data = bytes.fromhex(rule.hex)
            body = [
                *_to_vip_port(rule.vip, rule.proto, rule.dst_port),
                *raw_payload(rule.offset, data),
                *_block(rule),
                *tail,
            ]
            return SlotObjects(slot, comment, PRE, {}, count, body)
    raise ValueError(f"{rule.kind} is not an nftables rule")


def _ct_count(limit: int) -> Expr:
    return {"ct count": {"val": limit, "inv": True}}


def skeleton() -> list[Command]:
    """The table's base chains (as `add` bodies): prerouting and input, both accepting by default."""
    return [base_chain(PRE, "prerouting", "filter", "accept"), base_chain(INPUT, "input", "filter", "accept")]


@dataclass(frozen=True)
class Present:
    """What a listing of the table shows: rule handles by comment, set and counter names."""

    rules: dict[str, tuple[str, int]]  # comment → (chain, handle)
    sets: set[str]
    counters: set[str]


def diff(present: Present, wanted: list[SlotObjects]) -> list[Command]:
    """The commands (one transaction) that bring the table from `present` to `wanted`, in a safe order.

    Deleted rules go first (they may use a set about to go), then unwanted sets and counters; then new sets
    and counters, then new rules (which use them). What stays is not touched: it keeps its state.
    """
    keep = {w.comment for w in wanted}
    sets = {name for w in wanted for name in w.sets}
    counters = {w.counter for w in wanted}
    ident = {"family": "ip", "table": TABLE}
    out: list[Command] = []
    out += [
        {"delete": {"rule": {**ident, "chain": chain, "handle": handle}}}
        for comment, (chain, handle) in present.rules.items()
        if comment not in keep
    ]
    out += [{"delete": {"set": {**ident, "name": n}}} for n in sorted(present.sets - sets)]
    out += [{"delete": {"counter": {**ident, "name": n}}} for n in sorted(present.counters - counters)]
    for w in wanted:
        if w.comment in present.rules:
            continue
        for name, spec in w.sets.items():
            if name not in present.sets:
                out.append({"add": {"set": {**ident, **spec["set"]}}})
        if w.counter in present.counters:  # the slot's previous rule counted there: start from zero
            out.append({"delete": {"counter": {**ident, "name": w.counter}}})
        out.append({"add": {"counter": {**ident, "name": w.counter}}})
        out.append({"add": {"rule": {**ident, "chain": w.chain, "expr": w.rule, "comment": w.comment}}})
    return out
