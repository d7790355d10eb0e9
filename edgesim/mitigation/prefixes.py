"""Source-prefix rules (allow_src, drop_src) as the DoS program's exact-match entries, one per prefix.

The program probes one entry per prefix length in use, longest first, and the first entry it finds decides
(ddos_sources.h): its cost follows the number of distinct lengths, not the number of rules. The rules'
meaning is that of the two LPM tries this replaced: a source inside an allowed prefix skips every drop
(counted on the longest such allow), else the longest dropped prefix covering it drops it. `resolve` keeps
that meaning with longest-first lookup by giving a drop prefix that lies inside an allowed one the allow's
verdict: the longest entry covering a source is then always the right answer (an allow covering the source
is either longer than that entry, and found first, or contains it). `decide` is the program's lookup in
Python, for tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv4Address, IPv4Network

from edgesim.mitigation import layout


def _mask(length: int) -> int:
    return (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF


def resolve(
    allow: Mapping[IPv4Network, int], drop: Mapping[IPv4Network, int]
) -> dict[IPv4Network, layout.SrcRule]:
    """The entries for allow and drop prefixes (prefix → its rule's slot): one per prefix, allow resolved."""
    out = {net: layout.SrcRule(slot, layout.SRC_ALLOW) for net, slot in allow.items()}
    allowed = {(net.prefixlen, int(net.network_address)): slot for net, slot in allow.items()}
    allow_lengths = sorted({net.prefixlen for net in allow}, reverse=True)
    for net, slot in drop.items():
        if net in out:
            continue  # the same prefix allowed: the allow wins, as the allowlist is looked up first
        address = int(net.network_address)
        covering = next(
            (
                allowed[(length, address & _mask(length))]
                for length in allow_lengths
                if length <= net.prefixlen and (length, address & _mask(length)) in allowed
            ),
            None,
        )
        out[net] = (
            layout.SrcRule(covering, layout.SRC_ALLOW)
            if covering is not None
            else layout.SrcRule(slot, layout.SRC_DROP)
        )
    return out


def lengths(entries: Mapping[IPv4Network, object]) -> tuple[int, ...]:
    """The prefix lengths the entries use, longest first: the ones the program probes."""
    return tuple(sorted({net.prefixlen for net in entries}, reverse=True))


def lengths_leaf(entries: Mapping[IPv4Network, object]) -> layout.SrcLengths:
    """struct src_lengths for the entries."""
    used = lengths(entries)
    return layout.SrcLengths(len(used), used + (0,) * (layout.SRC_LENGTHS - len(used)))


def decide(entries: Mapping[IPv4Network, layout.SrcRule], source: IPv4Address) -> layout.SrcRule | None:
    """What the program decides for a source: the entry of the longest prefix covering it, or None."""
    for length in lengths(entries):
        found = entries.get(IPv4Network((int(source) & _mask(length), length)))
        if found is not None:
            return found
    return None
