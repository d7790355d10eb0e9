"""The load balancer's map layout in Python: constants and ctypes structs mirroring consts.h and structs.h."""

from __future__ import annotations

import ctypes

RING_SIZE = 65537
MAX_EDGES = 64
SLOT_LB_LOCAL = 7
SLOT_LB_FORWARDED = 8
SLOT_LB_CHAINED = 9
SLOT_LB_RECEIVED = 10
SLOT_LB_BAD_ENCAP = 11
HOP_DIRECT = 0
HOP_FIRST = 1
HOP_SECOND = 2
ENCAP_TTL_FIRST = 2
ENCAP_TTL_SECOND = 1
IPPROTO_TCP = 6

# The LB's counters, by slot (in the DoS program's `stats` map).
COUNTER_SLOTS = {
    SLOT_LB_LOCAL: "local",
    SLOT_LB_FORWARDED: "forwarded",
    SLOT_LB_CHAINED: "chained",
    SLOT_LB_RECEIVED: "received",
    SLOT_LB_BAD_ENCAP: "bad_encap",
}


class Bucket(ctypes.Structure):
    """struct lb_bucket."""

    _fields_ = [("first", ctypes.c_uint8), ("second", ctypes.c_uint8)]


class Edge(ctypes.Structure):
    """struct lb_edge."""

    _fields_ = [
        ("addr", ctypes.c_uint32),
        ("mac", ctypes.c_uint8 * 6),
        ("present", ctypes.c_uint8),
        ("pad", ctypes.c_uint8),
    ]


class Config(ctypes.Structure):
    """struct lb_config."""

    _fields_ = [
        ("enabled", ctypes.c_uint32),
        ("active", ctypes.c_uint32),
        ("self", ctypes.c_uint32),
        ("ifindex", ctypes.c_uint32),
    ]


class VipKey(ctypes.Structure):
    """struct lb_vip_key."""

    _fields_ = [("vip", ctypes.c_uint32), ("port", ctypes.c_uint16), ("proto", ctypes.c_uint16)]
