"""Mitigation rules: what the topology file and `invoke mitigate` may say, and their counter slots."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from edgesim.mitigation import layout

Port = Annotated[int, Field(ge=1, le=65535)]
Rate = Annotated[int, Field(ge=1, le=100_000_000, description="packets per second")]
Burst = Annotated[int, Field(ge=1, le=10_000_000, description="packets allowed at once")]


class _Rule(BaseModel):
    """Fields every rule has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(None, description="Unique name (default: derived from the rule).")
    # What makes two rules the same rule, whatever their names: the rule's fields in a template.
    key_template: ClassVar[str]

    def key(self) -> str:
        """What makes two rules the same rule, whatever their names (e.g. `drop_src 100.64.0.0/16`)."""
        return self.key_template.format_map(dict(self))

    def label(self) -> str:
        """The rule's name, or its derived name."""
        return self.name or self.key()


class AllowSrc(_Rule):
    """Sources in this prefix skip every drop rule."""

    key_template = "allow_src {prefix}"
    kind: Literal["allow_src"]
    prefix: IPv4Network


class DropSrc(_Rule):
    """Drop everything from sources in this prefix."""

    key_template = "drop_src {prefix}"
    kind: Literal["drop_src"]
    prefix: IPv4Network


class DropPort(_Rule):
    """Drop a protocol from (reflection floods) or to (closed service) a port."""

    kind: Literal["drop_port"]
    proto: Literal["tcp", "udp"]
    src_port: Port | None = None
    dst_port: Port | None = None

    @model_validator(mode="after")
    def _one_port(self) -> DropPort:
        if (self.src_port is None) == (self.dst_port is None):
            raise ValueError("give exactly one of src_port and dst_port")
        return self

    def key(self) -> str:
        """drop_port <proto> src|dst <port>."""
        side, port = ("src", self.src_port) if self.src_port is not None else ("dst", self.dst_port)
        return f"drop_port {self.proto} {side} {port}"


class RateLimit(_Rule):
    """Per-source packet-rate limit for TCP SYNs, for UDP or for ICMP."""

    key_template = "rate_limit {match}"  # one per match kind
    kind: Literal["rate_limit"]
    match: Literal["syn", "udp", "icmp"]
    rate: Rate
    burst: Burst


class SynCookie(_Rule):
    """Answer SYNs to this VIP:port with SYN cookies from XDP; pass only ACKs with a valid cookie."""

    key_template = "syn_cookie {vip}:{port}"
    kind: Literal["syn_cookie"]
    vip: IPv4Address
    port: Port


class VipCap(_Rule):
    """Cap the packet rate to one VIP, whatever the source: the last line of defence."""

    key_template = "vip_cap {vip}"
    kind: Literal["vip_cap"]
    vip: IPv4Address
    rate: Rate
    burst: Burst


class Malformed(_Rule):
    """Also drop packets with IP options and/or fragments (truncated or inconsistent headers always are)."""

    key_template = "malformed"  # one per lab
    kind: Literal["malformed"]
    ip_options: bool = True
    fragments: bool = True


# Layer-7 kinds: enforced by nftables in each edge's stack (edgesim.mitigation.l7), not by the XDP maps.
SetName = Annotated[
    str, Field(pattern=r"^[a-z][a-z0-9_]{0,15}$", description="nftables set name: a-z, 0-9, _, <= 16")
]
Seconds = Annotated[int, Field(ge=1, le=86_400, description="seconds")]


class _Blocking(_Rule):
    """An L7 rule whose offenders may land in a blocklist's set for a while."""

    block_set: SetName | None = Field(None, description="Blocklist (its set_name) the offender is added to.")
    block_s: Seconds | None = Field(None, description="How long the offender stays in that set.")

    @model_validator(mode="after")
    def _block_pair(self) -> _Blocking:
        if self.block_s is not None and self.block_set is None:
            raise ValueError("block_s needs block_set (the blocklist to put the offender in)")
        return self


class Blocklist(_Rule):
    """A named set of blocked sources, each for a while: everything from them is dropped in nftables."""

    key_template = "blocklist {set_name}"
    kind: Literal["blocklist"]
    set_name: SetName
    timeout_s: Seconds = Field(60, description="How long a source stays when its adder gives no time.")


class ConnLimit(_Blocking):
    """At most `count` concurrent connections per source to VIP:port (nftables `ct count`)."""

    key_template = "conn_limit {vip}:{port}"
    kind: Literal["conn_limit"]
    vip: IPv4Address
    port: Port
    count: int = Field(ge=1, le=1_000_000, description="connections per source")


class ConnRate(_Blocking):
    """At most `rate` new connections per second per source to VIP:port, `burst` at once (a meter)."""

    key_template = "conn_rate {vip}:{port}"
    kind: Literal["conn_rate"]
    vip: IPv4Address
    port: Port
    rate: Rate
    burst: Burst


class PayloadMatch(_Blocking):
    """Drop packets to a port whose transport payload holds `hex` at `offset` (nftables raw payload)."""

    kind: Literal["payload_match"]
    proto: Literal["tcp", "udp"]
    dst_port: Port
    offset: int = Field(0, ge=0, le=1400, description="bytes into the TCP or UDP payload")
    hex: str = Field(pattern=r"^([0-9a-f]{2}){1,32}$", description="the bytes to match, hex, 1-32 bytes")
    vip: IPv4Address | None = None

    def key(self) -> str:
        """payload_match <proto> <vip>:<port> @<offset> <hex>."""
        return f"payload_match {self.proto} {self.vip or '*'}:{self.dst_port} @{self.offset} {self.hex}"


Rule = Annotated[
    AllowSrc
    | DropSrc
    | DropPort
    | RateLimit
    | SynCookie
    | VipCap
    | Malformed
    | Blocklist
    | ConnLimit
    | ConnRate
    | PayloadMatch,
    Field(discriminator="kind"),
]
RULE_ADAPTER: TypeAdapter[Rule] = TypeAdapter(Rule)
L7_KINDS = ("blocklist", "conn_limit", "conn_rate", "payload_match")
RULE_KINDS = (
    "allow_src",
    "drop_src",
    "drop_port",
    "rate_limit",
    "syn_cookie",
    "vip_cap",
    "malformed",
    *L7_KINDS,
)


class Mitigation(BaseModel):
    """The `mitigation:` section of a topology: rules applied to every edge."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[Rule] = Field(default_factory=list)


class SlottedRule(BaseModel):
    """A rule with the counter slot its packets are counted in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slot: int
    rule: Rule


class RuleSet(BaseModel):
    """The rules in force on a lab's edges, each with a stable counter slot."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[SlottedRule] = Field(default_factory=list)

    def names(self) -> list[str]:
        """Rule names in order."""
        return [r.rule.label() for r in self.rules]

    def find(self, name: str) -> SlottedRule | None:
        """The rule with this name, if any."""
        return next((r for r in self.rules if r.rule.label() == name), None)

    def conflicts(self, rule: Rule) -> str | None:
        """Why `rule` cannot join this set (same name, or a second rule for the same thing), if it cannot."""
        for existing in self.rules:
            if existing.rule.label() == rule.label():
                return f"a rule named {rule.label()!r} exists already"
            if existing.rule.key() == rule.key():
                return f"rule {existing.rule.label()!r} already covers {rule.key()}"
        if isinstance(rule, AllowSrc | DropSrc) and self.source_prefixes() >= layout.MAX_PREFIXES:
            return f"at most {layout.MAX_PREFIXES:,} allow_src and drop_src rules together"
        return None

    def source_prefixes(self) -> int:
        """How many allow_src and drop_src rules the set holds (they share one table of MAX_PREFIXES)."""
        return sum(isinstance(r.rule, AllowSrc | DropSrc) for r in self.rules)

    def unresolved(self) -> list[str]:
        """Rules naming a blocklist the set does not have: '<rule>: no blocklist <set>'."""
        sets = {r.rule.set_name for r in self.rules if isinstance(r.rule, Blocklist)}
        return [
            f"{r.rule.label()}: no blocklist {r.rule.block_set!r}"
            for r in self.rules
            if isinstance(r.rule, _Blocking) and r.rule.block_set is not None and r.rule.block_set not in sets
        ]

    def with_rule(self, rule: Rule) -> RuleSet:
        """A new set with `rule` added in the lowest free slot."""
        used = {r.slot for r in self.rules}
        slot = next((s for s in range(layout.FIRST_RULE_SLOT, layout.MAX_SLOTS) if s not in used), None)
        if slot is None:
            raise ValueError(f"at most {layout.MAX_RULES} rules")
        return RuleSet(rules=[*self.rules, SlottedRule(slot=slot, rule=rule)])

    def without(self, name: str) -> RuleSet:
        """A new set without the rule called `name`."""
        return RuleSet(rules=[r for r in self.rules if r.rule.label() != name])


def build_rule_set(rules: list[Rule]) -> RuleSet:
    """Assign slots in order; the caller has checked there are no conflicts."""
    if len(rules) > layout.MAX_RULES:
        raise ValueError(f"at most {layout.MAX_RULES} rules")
    return RuleSet(rules=[SlottedRule(slot=layout.FIRST_RULE_SLOT + i, rule=r) for i, r in enumerate(rules)])
