"""What the source-prefix rules mean, written the plain way: the reference the unit and BPF tests check the
program's lookup against (tests/unit/test_mitigation_prefixes.py, tests/bpf/test_ddos_sources.py)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from edgesim.mitigation import layout


def reference(
    allow: dict[IPv4Network, int], drop: dict[IPv4Network, int], source: IPv4Address
) -> layout.SrcRule | None:
    """The rules' meaning, as the two LPM tries had it: any allow covering the source wins (its longest),
    else the longest drop covering it."""
    for table, verdict in ((allow, layout.SRC_ALLOW), (drop, layout.SRC_DROP)):
        covering = [net for net in table if source in net]
        if covering:
            return layout.SrcRule(table[max(covering, key=lambda n: n.prefixlen)], verdict)
    return None
