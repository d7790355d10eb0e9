"""The load balancer's constants in Python, mirroring lb_consts.h (tests/unit/test_lb_table.py checks them).

Its maps are written with bcc's own key and leaf types (edgesim/lb/maps.py): no struct is mirrored here.
"""

from __future__ import annotations

RING_SIZE = 65537
MAX_EDGES = 64
SLOT_LB_LOCAL = 7
SLOT_LB_FORWARDED = 8
SLOT_LB_CHAINED = 9
SLOT_LB_RECEIVED = 10
SLOT_LB_BAD_ENCAP = 11
SLOT_LB_BACKPLANE_OWN = 13
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
    SLOT_LB_BACKPLANE_OWN: "backplane_own",
}
