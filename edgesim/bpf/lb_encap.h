/* SPDX-License-Identifier: GPL-2.0 */
/* IP-in-IP (RFC 2003) over the backplane: sending a packet to another edge, and receiving one. */
#ifndef EDGESIM_LB_ENCAP_H
#define EDGESIM_LB_ENCAP_H

#include <uapi/linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>

#include "common/csum.h"
#include "common/parsing.h"
#include "ddos_stats.h"
#include "lb_maps.h"

/* Fill the outer IPv4 header of an IP-in-IP packet around an inner packet of inner_len bytes. */
static __always_inline void write_outer_ip(struct iphdr *outer, __be32 saddr, __be32 daddr, __u16 inner_len,
					   __u8 ttl)
{
	outer->version = 4;
	outer->ihl = 5;
	outer->tos = 0;
	outer->tot_len = bpf_htons(inner_len + sizeof(struct iphdr));
	outer->id = 0;
	outer->frag_off = bpf_htons(IP_DF); /* the backplane's MTU leaves room for the outer header */
	outer->ttl = ttl;
	outer->protocol = IPPROTO_IPIP;
	outer->saddr = saddr;
	outer->daddr = daddr;
	ipv4_set_csum(outer);
}

/*
 * Encapsulate from edge `me` to edge `dst` and send it out of the backplane interface. Once the head
 * moved the packet is no longer what the caller parsed: always returns the final verdict.
 */
static __always_inline int forward(struct xdp_md *ctx, struct lb_config *cfg, struct lb_edge *me,
				   struct lb_edge *dst, __u32 hop, __u64 bytes)
{
	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr)))
		return XDP_ABORTED;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *outer = data + sizeof(*eth);
	struct iphdr *inner = (void *)(outer + 1);

	if ((void *)(inner + 1) > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(eth->h_dest, dst->mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, me->mac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);
	__u8 ttl = hop == HOP_DIRECT ? ENCAP_TTL_FIRST : ENCAP_TTL_SECOND;

	write_outer_ip(outer, me->addr, dst->addr, bpf_ntohs(inner->tot_len), ttl);
	count(hop == HOP_DIRECT ? SLOT_LB_FORWARDED : SLOT_LB_CHAINED, bytes);
	return bpf_redirect(cfg->ifindex, 0);
}

/*
 * An encapsulated packet from another edge: accepted only when well-formed, from a known edge, to this
 * edge, with a hop budget left; then the outer header is stripped and *hop says which hop it is. Returns
 * -1 when the packet was accepted and decapsulated, else the verdict: everything on the backplane that
 * is not IP-in-IP (ARP, health checks) goes to the stack.
 */
static __always_inline int decapsulate(struct xdp_md *ctx, __u32 *hop)
{
	struct cursor c = {.pos = (void *)(long)ctx->data, .end = (void *)(long)ctx->data_end};
	__u64 bytes = c.end - c.pos;
	struct ethhdr *eth;
	struct iphdr *outer;
	__u32 zero = 0;

	if (parse_ethhdr(&c, &eth) < 0)
		return drop(SLOT_MALFORMED, bytes);
	/* Every verdict is counted: the backplane's own traffic too, so that none goes unseen. */
	if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		count(SLOT_LB_BACKPLANE_OWN, bytes);
		return XDP_PASS;
	}
	if (parse_iphdr(&c, &outer) < 0 || check_ipv4_length(&c, outer) < 0)
		return drop(SLOT_MALFORMED, bytes);
	if (outer->protocol != IPPROTO_IPIP) {
		count(SLOT_LB_BACKPLANE_OWN, bytes);
		return XDP_PASS;
	}

	struct lb_config *cfg = lb_config.lookup(&zero);

	if (!cfg || !cfg->enabled)
		return drop(SLOT_LB_BAD_ENCAP, bytes);
	__u32 self = cfg->self;
	struct lb_edge *me = lb_edges.lookup(&self);
	__be32 saddr = outer->saddr;

	if (!me || outer->daddr != me->addr || !lb_peers.lookup(&saddr))
		return drop(SLOT_LB_BAD_ENCAP, bytes);
	if (outer->ihl != 5 || is_fragment(outer))
		return drop(SLOT_LB_BAD_ENCAP, bytes);
	if (outer->ttl != ENCAP_TTL_FIRST && outer->ttl != ENCAP_TTL_SECOND)
		return drop(SLOT_LB_BAD_ENCAP, bytes);
	struct iphdr *inner = (void *)(outer + 1);

	if ((void *)(inner + 1) > c.end || inner->version != 4 || inner->ihl < 5)
		return drop(SLOT_LB_BAD_ENCAP, bytes);
	if (bpf_ntohs(inner->tot_len) + sizeof(struct iphdr) != bpf_ntohs(outer->tot_len))
		return drop(SLOT_LB_BAD_ENCAP, bytes);
	*hop = outer->ttl == ENCAP_TTL_FIRST ? HOP_FIRST : HOP_SECOND;

	struct ethhdr copy;

	__builtin_memcpy(&copy, eth, sizeof(copy));
	if (bpf_xdp_adjust_head(ctx, (int)sizeof(struct iphdr)))
		return XDP_ABORTED;
	void *data = (void *)(long)ctx->data;

	if (data + sizeof(copy) > (void *)(long)ctx->data_end)
		return XDP_ABORTED;
	__builtin_memcpy(data, &copy, sizeof(copy));
	count(SLOT_LB_RECEIVED, bytes);
	return -1;
}

#endif
