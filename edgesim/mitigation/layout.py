"""The DoS program's map layout in Python: the constants of ddos_consts.h, and descriptions of the
ddos_structs.h keys and values that Python writes.

tests/unit/test_mitigation_layout.py checks every constant against its #define and every description
against its C struct; tests/bpf/test_map_types.py checks the descriptions against bcc's types.
"""

from __future__ import annotations

from typing import NamedTuple

MAX_SLOTS = 132096
SLOT_PASS = 0
SLOT_MALFORMED = 1
SLOT_NOT_IPV4 = 2
SLOT_COOKIE_SENT = 3
SLOT_COOKIE_ACK_OK = 4
SLOT_COOKIE_ACK_BAD = 5
SLOT_COOKIE_FLOW = 6
SLOT_CONTROL = 12
FIRST_RULE_SLOT = 16
MAX_RULES = MAX_SLOTS - FIRST_RULE_SLOT
MAX_PREFIXES = 131072
SRC_GENERATIONS = 2
SRC_LENGTHS = 33
SRC_DROP = 0
SRC_ALLOW = 1
RATE_SYN = 0
RATE_UDP = 1
RATE_ICMP = 2
RATE_KINDS = 3
SIDE_SRC = 0
SIDE_DST = 1
CHAIN_NEXT = 0
BGP_PORT = 179
BFD_CONTROL_PORT = 3784
BFD_ECHO_PORT = 3785
GTSM_TTL = 255
MAX_CONTROL_PEERS = 64

# The program's own counters, by slot: what each verdict means.
VERDICT_SLOTS = {
    SLOT_PASS: "passed",
    SLOT_MALFORMED: "malformed (dropped)",
    SLOT_NOT_IPV4: "not IPv4 (passed)",
    SLOT_COOKIE_SENT: "SYN answered with a cookie",
    SLOT_COOKIE_ACK_OK: "ACK with valid cookie (passed)",
    SLOT_COOKIE_ACK_BAD: "no valid cookie (dropped)",
    SLOT_COOKIE_FLOW: "cookie-proven flow (passed)",
    SLOT_CONTROL: "lab control traffic: BGP, BFD (passed)",
}

IPPROTO = {"icmp": 1, "tcp": 6, "udp": 17}


# What Python writes into the rule maps, field by field (bcc's own types carry them into the maps, see
# edgesim/bpf/tables.py). Fields a description leaves out are padding, or the program's own state.


class SrcKey(NamedTuple):
    """struct src_key without its padding: a source prefix in one of the two generations."""

    gen: int
    prefixlen: int
    addr: int  # a __be32 (tables.be32): the prefix's network address


class SrcRule(NamedTuple):
    """struct src_rule: what the longest prefix covering a source decides."""

    slot: int
    verdict: int  # SRC_ALLOW or SRC_DROP


class SrcLengths(NamedTuple):
    """struct src_lengths without its padding: the prefix lengths in use, longest first."""

    count: int
    len: tuple[int, ...]  # SRC_LENGTHS entries, the first `count` in use


class ControlKey(NamedTuple):
    """struct control_key: a control session's router and edge addresses."""

    saddr: int  # a __be32: the router's address on the link
    daddr: int  # a __be32: the edge's


class PortKey(NamedTuple):
    """struct port_key."""

    proto: int  # IPPROTO_*
    side: int  # SIDE_*
    port: int  # host byte order


class RateCfg(NamedTuple):
    """struct rate_cfg: one packet per interval, `burst` at once (GCRA)."""

    interval_ns: int
    tolerance_ns: int  # (burst - 1) * interval_ns
    slot: int
    enabled: int  # 0: this kind is not limited


class CookieKey(NamedTuple):
    """struct cookie_key without its padding."""

    vip: int  # a __be32
    port: int


class VipCap(NamedTuple):
    """struct vip_cap without its padding and `tat`, the program's running schedule (written as 0)."""

    interval_ns: int
    tolerance_ns: int
    slot: int


class Config(NamedTuple):
    """struct config: the malformed rule's switches, each its slot or 0 when off."""

    ip_options_slot: int
    fragments_slot: int


RATE_OFF = RateCfg(0, 0, 0, 0)
MALFORMED_OFF = Config(0, 0)
