/* SPDX-License-Identifier: GPL-2.0 */
/* Keys and values of the GRE programs' maps (edgesim/tenants/gre.py describes them, field by field). */
#ifndef EDGESIM_GRE_STRUCTS_H
#define EDGESIM_GRE_STRUCTS_H

#include <linux/types.h>

/* Key of the tenant prefix trie: a prefix length in bits, then the IPv4 address in network order. */
struct prefix_key {
	__u32 prefixlen;
	__be32 addr;
};

/* What a tenant prefix leads to: the tenant, and the tunnel remote (outer destination) for its traffic. */
struct tenant_route {
	__u32 tenant;
	__be32 remote;
};

/* Counter key: the tenant (0 when the packet matched none) and what the program did with it (VERDICT_*). */
struct counter_key {
	__u32 tenant;
	__u32 verdict;
};

#endif
