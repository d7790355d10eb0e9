/* Keys and values of the XDP programs' maps; edgesim/mitigation/layout.py mirrors them with ctypes. */
#ifndef EDGESIM_STRUCTS_H
#define EDGESIM_STRUCTS_H

struct counter {
    u64 packets;
    u64 bytes;
};

/* LPM trie key: prefix length in bits, then the address in network byte order. */
struct lpm_v4_key {
    u32 prefixlen;
    u32 addr;
};

/* A protocol + port rule; port in host byte order. */
struct port_key {
    u8 proto;
    u8 side;
    u16 port;
};

/* A rate (GCRA, the token bucket's equivalent): one packet per interval, `burst` at once. */
struct rate_cfg {
    u64 interval_ns;
    u64 tolerance_ns; /* (burst - 1) * interval */
    u32 slot;
    u32 enabled;
};

struct rate_key {
    u32 saddr;
    u32 kind;
};

/* A protected VIP:port answered with SYN cookies; port in host byte order. */
struct cookie_key {
    u32 vip;
    u16 port;
    u16 pad;
};

/* A flow that proved itself with a valid cookie (client → VIP direction). */
struct flow_key {
    u32 saddr;
    u32 daddr;
    u16 sport;
    u16 dport;
};

/* Per-VIP packet-rate cap; `tat` (theoretical arrival time) is shared by all CPUs, updated atomically. */
struct vip_cap {
    u64 interval_ns;
    u64 tolerance_ns;
    u64 tat;
    u32 slot;
    u32 pad;
};

/* Switches of the malformed-packet rule: slot of the rule that drops packets with IP options / fragments,
 * or 0 to let them through. */
struct config {
    u32 ip_options_slot;
    u32 fragments_slot;
};

/* L4 LB bucket: the edge that owns new flows of this bucket, and the edge that owned it before the
 * last table change (equal when nothing moved); indexes into lb_edges. */
struct lb_bucket {
    u8 first;
    u8 second;
};

/* An edge on the backplane: its address and MAC there (network byte order). */
struct lb_edge {
    u32 addr;
    u8 mac[6];
    u8 present;
    u8 pad;
};

/* The LB's switches: on/off, which of the two tables is live, this edge's index, the backplane ifindex. */
struct lb_config {
    u32 enabled;
    u32 active;
    u32 self;
    u32 ifindex;
};

/* A balanced VIP:port; port in host byte order. */
struct lb_vip_key {
    u32 vip;
    u16 port;
    u16 proto;
};

/* What the DoS program learnt about the packet, for the LB after the tail call (per CPU: XDP runs a
 * packet to completion on one CPU, and every entry point rewrites it first). */
struct lb_scratch {
    u32 hop;         /* HOP_* */
    u32 new_flow;    /* an ACK with a valid SYN cookie: a connection being opened now */
    u32 unverified;  /* a protected VIP's mid-flow packet unknown here: drop unless another edge owns it */
    u32 drop_slot;   /* the SYN-cookie rule to count when it is dropped */
};

#endif
