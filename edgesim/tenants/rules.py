"""Tenant firewall rules: a small nft-like language, parsed into a Rule, rendered as nft text and JSON. Pure.

A rule is a sequence of matches and a verdict, first match wins, and what no rule accepts is dropped:

    ip daddr 203.0.113.100 tcp dport 20-21 accept
    ip saddr 100.64.0.0/10 udp dport 53,123 accept
    ip protocol icmp accept
    accept                              (everything)
"""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from edgesim import nftexpr as nft

Protocol = Literal["tcp", "udp", "icmp"]
Verdict = Literal["accept", "drop"]
PROTOCOLS: tuple[str, ...] = ("tcp", "udp", "icmp")
GRAMMAR_HINT = (
    "write matches then a verdict, e.g. `ip daddr 203.0.113.100 tcp dport 20-21 accept`; matches: "
    "ip saddr NET, ip daddr NET, ip protocol tcp|udp|icmp, tcp|udp sport|dport PORTS (80, 20-21, 80,443)"
)


class RuleError(ValueError):
    """A rule that does not parse: what is wrong with it."""


class PortRange(BaseModel):
    """An inclusive range of ports; a single port has low == high."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    low: int
    high: int

    def __str__(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


class Rule(BaseModel):
    """One parsed firewall rule."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    saddr: IPv4Network | None = None
    daddr: IPv4Network | None = None
    protocol: Protocol | None = None
    sport: tuple[PortRange, ...] = ()
    dport: tuple[PortRange, ...] = ()
    verdict: Verdict

    def text(self) -> str:
        """The canonical spelling: the same rule always reads the same (how `rule rm` finds it)."""
        return " ".join([*self._matches(), self.verdict])

    def nft_matches(self) -> str:
        """The rule's matches as nft expressions (empty for a rule that matches everything)."""
        return " ".join(self._matches())

    def nft_expr(self) -> list[dict[str, Any]]:
        """The rule's matches as nftables JSON expressions, in the order of nft_matches."""
        found = []
        for field, net in (("saddr", self.saddr), ("daddr", self.daddr)):
            if net is not None:
                found.append(nft.match(nft.payload("ip", field), nft.address(net)))
        if self.protocol and not (self.sport or self.dport):
            found.append(nft.match(nft.payload("ip", "protocol"), self.protocol))
        for field, ports in (("sport", self.sport), ("dport", self.dport)):
            if ports:
                found.append(nft.match(nft.payload(str(self.protocol), field), _ports_json(ports)))
        return found

    def _matches(self) -> list[str]:
        parts = []
        if self.saddr is not None:
            parts.append(f"ip saddr {_net(self.saddr)}")
        if self.daddr is not None:
            parts.append(f"ip daddr {_net(self.daddr)}")
        if self.protocol and not (self.sport or self.dport):
            parts.append(f"ip protocol {self.protocol}")
        if self.sport:
            parts.append(f"{self.protocol} sport {_ports(self.sport)}")
        if self.dport:
            parts.append(f"{self.protocol} dport {_ports(self.dport)}")
        return parts


def _net(net: IPv4Network) -> str:
    return str(net.network_address) if net.prefixlen == 32 else str(net)


def _ports(ports: tuple[PortRange, ...]) -> str:
    if len(ports) == 1:
        return str(ports[0])
    return "{ " + ", ".join(str(p) for p in ports) + " }"


def _port_json(port: PortRange) -> object:
    return port.low if port.low == port.high else {"range": [port.low, port.high]}


def _ports_json(ports: tuple[PortRange, ...]) -> object:
    if len(ports) == 1:
        return _port_json(ports[0])
    return {"set": [_port_json(p) for p in ports]}


def parse_rule(text: str) -> Rule:
    """Parse one rule; RuleError says what is wrong with it."""
    _check_sets(text)
    words = text.replace("{", " ").replace("}", " ").replace(", ", ",").split()
    if not words:
        raise RuleError("the rule is empty")
    verdict = words.pop()
    if verdict not in ("accept", "drop"):
        raise RuleError(f"a rule ends with accept or drop, not {verdict!r}")
    fields: dict[str, object] = {"verdict": verdict}
    while words:
        word = words.pop(0)
        if word == "ip":
            key = _take(words, "ip", ("saddr", "daddr", "protocol"))
            value = _take(words, f"ip {key}")
            if key == "protocol":
                _set_protocol(fields, value)
            else:
                _set(fields, key, _network(value))
        elif word in ("tcp", "udp"):
            _set_protocol(fields, word)
            key = _take(words, word, ("sport", "dport"))
            _set(fields, key, _port_list(_take(words, f"{word} {key}")))
        else:
            raise RuleError(f"unexpected {word!r}")
    return Rule.model_validate(fields)


def _check_sets(text: str) -> None:
    """Braces only as nft writes them: a `{ … }` port set right after sport or dport, balanced, not nested."""
    depth = 0
    for index, char in enumerate(text):
        if char == "{":
            if depth:
                raise RuleError("a '{' inside a set: sets do not nest")
            before = text[:index].split()
            if not before or before[-1] not in ("sport", "dport"):
                raise RuleError("a '{ … }' set of ports may only follow sport or dport")
            depth = 1
        elif char == "}":
            if not depth:
                raise RuleError("a '}' without its '{'")
            depth = 0
    if depth:
        raise RuleError("a '{' without its '}'")


def _take(words: list[str], after: str, allowed: tuple[str, ...] = ()) -> str:
    if not words:
        raise RuleError(f"'{after}' needs a value")
    word = words.pop(0)
    if allowed and word not in allowed:
        raise RuleError(f"'{after}' is followed by {' or '.join(allowed)}, not {word!r}")
    return word


def _set(fields: dict[str, object], key: str, value: object) -> None:
    if key in fields:
        raise RuleError(f"'{key}' is given twice")
    fields[key] = value


def _set_protocol(fields: dict[str, object], protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise RuleError(f"unknown protocol {protocol!r} (tcp, udp or icmp)")
    if fields.setdefault("protocol", protocol) != protocol:
        raise RuleError(f"a rule matches one protocol, not both {fields['protocol']} and {protocol}")


def _network(text: str) -> IPv4Network:
    try:
        return IPv4Network(text)
    except ValueError:
        raise RuleError(f"{text!r} is not an IPv4 address or network (host bits must be zero)") from None


def _port_list(text: str) -> tuple[PortRange, ...]:
    ranges = []
    for item in text.split(","):
        low, _, high = item.partition("-")
        try:
            port_range = PortRange(low=int(low), high=int(high or low))
        except ValueError:
            raise RuleError(f"{item!r} is not a port or a port range") from None
        if not 1 <= port_range.low <= port_range.high <= 65535:
            raise RuleError(f"{item!r} is not a port range within 1-65535")
        ranges.append(port_range)
    return tuple(ranges)
