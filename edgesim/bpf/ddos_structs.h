/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Keys and values of the DoS program's maps (edgesim/mitigation/layout.py describes the ones Python
 * writes, field by field), and what the program parsed of a packet.
 */
#ifndef EDGESIM_DDOS_STRUCTS_H
#define EDGESIM_DDOS_STRUCTS_H

#include <linux/types.h>
#include <linux/ip.h>
#include <linux/tcp.h>

#include "ddos_consts.h"

/*
 * A source-prefix entry's key: one exact-match entry per prefix, in one of the two generations. `addr` is
 * the prefix's network address (host bits zero), in network byte order.
 */
struct src_key {
	__u8 gen;
	__u8 prefixlen;
	__u16 pad;
	__be32 addr;
};

/* What the longest source prefix covering a packet's source decides: SRC_ALLOW or SRC_DROP, counted in `slot`. */
struct src_rule {
	__u32 slot;
	__u32 verdict;
};

/* The prefix lengths a generation holds entries of, longest first: the only ones a lookup probes. */
struct src_lengths {
	__u32 count;
	__u8 len[SRC_LENGTHS];
	__u8 pad[3];
};

/* A control session's two ends: the router's address on the link, and this edge's (network byte order). */
struct control_key {
	__be32 saddr;
	__be32 daddr;
};

/* A protocol + port rule; port in host byte order. */
struct port_key {
	__u8 proto;
	__u8 side;
	__u16 port;
};

/* A rate (GCRA, the token bucket's equivalent): one packet per interval, `burst` at once. */
struct rate_cfg {
	__u64 interval_ns;
	__u64 tolerance_ns;	/* (burst - 1) * interval */
	__u32 slot;
	__u32 enabled;
};

/* A source and the kind of packet it is limited for (RATE_*). */
struct rate_key {
	__be32 saddr;
	__u32 kind;
};

/* A protected VIP:port answered with SYN cookies; port in host byte order. */
struct cookie_key {
	__be32 vip;
	__u16 port;
	__u16 pad;
};

/* A flow that proved itself with a valid cookie (client -> VIP direction); ports in host byte order. */
struct flow_key {
	__be32 saddr;
	__be32 daddr;
	__u16 sport;
	__u16 dport;
};

/* Per-VIP packet-rate cap; `tat` (theoretical arrival time) is shared by all CPUs, updated atomically. */
struct vip_cap {
	__u64 interval_ns;
	__u64 tolerance_ns;
	__u64 tat;
	__u32 slot;
	__u32 pad;
};

/*
 * Switches of the malformed-packet rule: slot of the rule that drops packets with IP options / fragments,
 * or 0 to let them through.
 */
struct config {
	__u32 ip_options_slot;
	__u32 fragments_slot;
};

/* What the DoS stage parsed of a packet. */
struct ddos_packet {
	struct iphdr *ip;
	struct tcphdr *th;	/* NULL unless TCP with its transport header (not a later fragment) */
	__u16 sport;		/* host byte order; 0 when the protocol has no ports */
	__u16 dport;
};

#endif
