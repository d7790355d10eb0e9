/* SPDX-License-Identifier: GPL-2.0 */
/* Constants of the GRE programs. */
#ifndef EDGESIM_GRE_CONSTS_H
#define EDGESIM_GRE_CONSTS_H

#include <linux/ip.h>

#include "common/parsing.h"

/* Outer IPv4 + GRE: what encapsulation adds in front of the inner IPv4 header. */
#define GRE_OVERHEAD (sizeof(struct iphdr) + sizeof(struct gre_base))

/* Verdicts, the second half of a counter key (edgesim/tenants/gre.py names them for Python). */
enum gre_verdict {
	VERDICT_ENCAPSULATED = 0,	/* wrapped in GRE towards the tenant's tunnel remote */
	VERDICT_DECAPSULATED = 1,	/* GRE from a known remote, unwrapped and passed on */
	VERDICT_NOT_TUNNELED = 2,	/* not for a tunnel: left alone (ARP, traffic of this node, ...) */
	VERDICT_UNKNOWN_REMOTE = 3,	/* GRE to our endpoint from a remote we have no tunnel with: dropped */
	VERDICT_SPOOFED = 4,		/* inner source outside the remote's tenant prefixes: dropped */
	VERDICT_MALFORMED = 5,		/* GRE to our endpoint, truncated, fragmented or not plain IPv4: dropped */
	VERDICT_WRONG_TENANT = 6,	/* marked for another tenant than its destination's, or for no tunnel: dropped */
	VERDICT_ERROR = 7,		/* the kernel refused to resize the packet: dropped */
	/*
	 * Decapsulated on an edge, the inner packet is the tenant's traffic towards the internet; these are
	 * where it may never go (the `refused` map says which range is which), each dropped and counted.
	 */
	VERDICT_TO_INFRASTRUCTURE = 8,	/* inner destination in the lab's links, management or backplane */
	VERDICT_TO_ANYCAST = 9,		/* inner destination a VIP or the GRE endpoint: an edge's own service */
	VERDICT_TO_TENANT = 10,		/* inner destination a tenant prefix (another tenant's, or its own) */
	VERDICT_NO_CONTEXT = 11,	/* the tenant has no namespace on this edge to route it in: dropped */
};

#endif
