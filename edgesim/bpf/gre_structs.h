// SPDX-License-Identifier: GPL-2.0
// Structures shared by the GRE programs and their maps (the Python side mirrors the map keys and values).
#pragma once

#include <linux/types.h>

// The 4-byte GRE header of RFC 2784 with every optional field absent: flags and version all zero.
struct gre_base {
	__be16 flags;
	__be16 protocol;
};

// Outer IPv4 + GRE: what encapsulation adds in front of the inner IPv4 header.
#define GRE_OVERHEAD (sizeof(struct iphdr) + sizeof(struct gre_base))

// Key of the tenant prefix trie: a prefix length in bits, then the IPv4 address in network order.
struct prefix_key {
	__u32 prefixlen;
	__be32 addr;
};

// What a tenant prefix leads to: the tenant, and the tunnel remote (outer destination) for its traffic.
struct tenant_route {
	__u32 tenant;
	__be32 remote;
};

// Counter key: the tenant (0 when the packet matched none) and what the program did with the packet.
struct counter_key {
	__u32 tenant;
	__u32 verdict;
};

// Packets and bytes (the frame length as the program saw it), per CPU.
struct counter {
	__u64 packets;
	__u64 bytes;
};

// Verdicts, the second half of a counter key (edgesim/tenants/gre.py names them for Python).
enum gre_verdict {
	VERDICT_ENCAPSULATED = 0,	// wrapped in GRE towards the tenant's tunnel remote
	VERDICT_DECAPSULATED = 1,	// GRE from a known remote, unwrapped and passed on
	VERDICT_NOT_TUNNELED = 2,	// not for a tunnel: left alone (ARP, traffic of this node, ...)
	VERDICT_UNKNOWN_REMOTE = 3,	// GRE to our endpoint from a remote we have no tunnel with: dropped
	VERDICT_SPOOFED = 4,		// inner source outside the remote's tenant prefixes: dropped
	VERDICT_MALFORMED = 5,		// GRE to our endpoint that is truncated, fragmented or not plain IPv4: dropped
	VERDICT_WRONG_TENANT = 6,	// marked for another tenant than its destination's, or for no tunnel: dropped
	VERDICT_ERROR = 7,		// the kernel refused to resize the packet: dropped
};
