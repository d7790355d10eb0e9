/* SPDX-License-Identifier: GPL-2.0 */
/* Keys and values of the L4 load balancer's maps (edgesim/lb/maps.py writes them with bcc's types). */
#ifndef EDGESIM_LB_STRUCTS_H
#define EDGESIM_LB_STRUCTS_H

#include <linux/types.h>

/*
 * A bucket: the edge that owns new flows of this bucket, and the edge that owned it before the last table
 * change (equal when nothing moved); indexes into lb_edges.
 */
struct lb_bucket {
	__u8 first;
	__u8 second;
};

/* An edge on the backplane: its address and MAC there (network byte order). */
struct lb_edge {
	__be32 addr;
	__u8 mac[6];
	__u8 present;
	__u8 pad;
};

/* The LB's switches: on/off, which of the two tables is live, this edge's index, the backplane ifindex. */
struct lb_config {
	__u32 enabled;
	__u32 active;
	__u32 self;
	__u32 ifindex;
};

/* A balanced VIP:port; port in host byte order. */
struct lb_vip_key {
	__be32 vip;
	__u16 port;
	__u16 proto;
};

/*
 * What the DoS program learnt about the packet, for the LB after the tail call (per CPU: XDP runs a
 * packet to completion on one CPU, and every entry point rewrites it first).
 */
struct lb_scratch {
	__u32 hop;		/* HOP_* */
	__u32 new_flow;		/* an ACK with a valid SYN cookie: a connection being opened now */
	__u32 unverified;	/* a protected VIP's mid-flow packet unknown here: drop unless another edge owns it */
	__u32 drop_slot;	/* the SYN-cookie rule to count when it is dropped */
};

#endif
