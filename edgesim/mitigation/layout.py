"""The DoS program's map layout in Python: constants and ctypes structs mirroring consts.h and structs.h.

tests/unit/test_mitigation_layout.py checks that every constant here matches its #define.
"""

from __future__ import annotations

import ctypes

MAX_SLOTS = 132096
SLOT_PASS = 0
SLOT_MALFORMED = 1
SLOT_NOT_IPV4 = 2
SLOT_COOKIE_SENT = 3
SLOT_COOKIE_ACK_OK = 4
SLOT_COOKIE_ACK_BAD = 5
SLOT_COOKIE_FLOW = 6
FIRST_RULE_SLOT = 16
MAX_RULES = MAX_SLOTS - FIRST_RULE_SLOT
MAX_PREFIXES = 131072
RATE_SYN = 0
RATE_UDP = 1
RATE_ICMP = 2
RATE_KINDS = 3
SIDE_SRC = 0
SIDE_DST = 1
CHAIN_NEXT = 0

# The program's own counters, by slot: what each verdict means.
VERDICT_SLOTS = {
    SLOT_PASS: "passed",
    SLOT_MALFORMED: "malformed (dropped)",
    SLOT_NOT_IPV4: "not IPv4 (passed)",
    SLOT_COOKIE_SENT: "SYN answered with a cookie",
    SLOT_COOKIE_ACK_OK: "ACK with valid cookie (passed)",
    SLOT_COOKIE_ACK_BAD: "no valid cookie (dropped)",
    SLOT_COOKIE_FLOW: "cookie-proven flow (passed)",
}

IPPROTO = {"icmp": 1, "tcp": 6, "udp": 17}


class Counter(ctypes.Structure):
    """struct counter."""

    _fields_ = [("packets", ctypes.c_uint64), ("bytes", ctypes.c_uint64)]


class LpmKey(ctypes.Structure):
    """struct lpm_v4_key: prefix length, then the address in network byte order."""

    _fields_ = [("prefixlen", ctypes.c_uint32), ("addr", ctypes.c_uint32)]


class PortKey(ctypes.Structure):
    """struct port_key."""

    _fields_ = [("proto", ctypes.c_uint8), ("side", ctypes.c_uint8), ("port", ctypes.c_uint16)]


class RateCfg(ctypes.Structure):
    """struct rate_cfg."""

    _fields_ = [
        ("interval_ns", ctypes.c_uint64),
        ("tolerance_ns", ctypes.c_uint64),
        ("slot", ctypes.c_uint32),
        ("enabled", ctypes.c_uint32),
    ]


class CookieKey(ctypes.Structure):
    """struct cookie_key."""

    _fields_ = [("vip", ctypes.c_uint32), ("port", ctypes.c_uint16), ("pad", ctypes.c_uint16)]


class VipCap(ctypes.Structure):
    """struct vip_cap."""

    _fields_ = [
        ("interval_ns", ctypes.c_uint64),
        ("tolerance_ns", ctypes.c_uint64),
        ("tat", ctypes.c_uint64),
        ("slot", ctypes.c_uint32),
        ("pad", ctypes.c_uint32),
    ]


class Config(ctypes.Structure):
    """struct config."""

    _fields_ = [("ip_options_slot", ctypes.c_uint32), ("fragments_slot", ctypes.c_uint32)]
