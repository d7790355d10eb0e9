// SPDX-License-Identifier: GPL-2.0
// Bounds-checked packet parsing for the GRE programs: each helper returns -1 when the packet is too short or
// not what it claims, so the caller never reads past data_end (the verifier insists, and so do we).
#pragma once

#include <linux/if_ether.h>
#include <linux/ip.h>

#include "gre_structs.h"

// A cursor over the linear part of the packet, from the Ethernet header on.
struct cursor {
	void *pos;
	void *end;
};

// The Ethernet header, if the frame carries IPv4; -1 otherwise.
static __always_inline int parse_eth_ipv4(struct cursor *c, struct ethhdr **eth)
{
	struct ethhdr *hdr = c->pos;

	if ((void *)(hdr + 1) > c->end)
		return -1;
	if (hdr->h_proto != bpf_htons(ETH_P_IP))
		return -1;
	*eth = hdr;
	c->pos = hdr + 1;
	return 0;
}

// An IPv4 header without options (GRE outer headers and the packets we tunnel have none); -1 otherwise.
static __always_inline int parse_ipv4(struct cursor *c, struct iphdr **ip)
{
	struct iphdr *hdr = c->pos;

	if ((void *)(hdr + 1) > c->end)
		return -1;
	if (hdr->version != 4 || hdr->ihl != 5)
		return -1;
	*ip = hdr;
	c->pos = hdr + 1;
	return 0;
}

// A plain RFC 2784 GRE header (no checksum, key or sequence number, version 0) carrying IPv4; -1 otherwise.
static __always_inline int parse_gre_ipv4(struct cursor *c, struct gre_base **gre)
{
	struct gre_base *hdr = c->pos;

	if ((void *)(hdr + 1) > c->end)
		return -1;
	if (hdr->flags != 0 || hdr->protocol != bpf_htons(ETH_P_IP))
		return -1;
	*gre = hdr;
	c->pos = hdr + 1;
	return 0;
}
