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

#endif
