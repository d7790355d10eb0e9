/* SPDX-License-Identifier: GPL-2.0 */
/* Encapsulation and decapsulation of the GRE programs, for a TC hook (see gre.c for the parameters). */
#ifndef EDGESIM_GRE_TUNNEL_H
#define EDGESIM_GRE_TUNNEL_H

#include <uapi/linux/bpf.h>
#include <uapi/linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>

#include "common/counters.h"
#include "common/csum.h"
#include "common/parsing.h"
#include "gre_consts.h"
#include "gre_maps.h"

static __always_inline void count(struct __sk_buff *skb, __u32 tenant, __u32 verdict)
{
	struct counter_key key = {.tenant = tenant, .verdict = verdict};
	struct counter zero = {};
	struct counter *value = counters.lookup_or_try_init(&key, &zero);

	if (value)
		counter_add(value, skb->len);
}

/*
 * An IPv4 packet without options at the cursor (the packets we tunnel and GRE's outer headers have none).
 * The total length is not checked against the frame: the linear part of a GSO or GRO skb is shorter.
 */
static __always_inline int parse_plain_ipv4(struct cursor *c, struct iphdr **ip)
{
	struct ethhdr *eth;

	if (parse_ethhdr(c, &eth) < 0 || eth->h_proto != bpf_htons(ETH_P_IP))
		return -1;
	if (parse_iphdr(c, ip) < 0 || (*ip)->ihl != 5)
		return -1;
	return 0;
}

/*
 * An IPv4 header's total length agrees with the packet: it covers the header, and the packet holds it all.
 * Checked against skb->len, not the linear part (see parse_plain_ipv4). Found by fuzzing: without it, GRE
 * whose lengths lie was unwrapped into a packet cut short.
 */
static __always_inline int length_fits(const struct __sk_buff *skb, const struct iphdr *ip, __u32 offset)
{
	__u32 total = bpf_ntohs(ip->tot_len);

	return total >= sizeof(struct iphdr) && skb->len >= offset && total <= skb->len - offset;
}

static __always_inline int encapsulate(struct __sk_buff *skb)
{
	struct cursor c = {.pos = (void *)(long)skb->data, .end = (void *)(long)skb->data_end};
	struct iphdr *inner;

	if (parse_plain_ipv4(&c, &inner) < 0) {
		count(skb, 0, VERDICT_NOT_TUNNELED);
		return TC_ACT_OK;
	}

	struct prefix_key key = {.prefixlen = 32, .addr = ENCAP_BY_SOURCE ? inner->saddr : inner->daddr};
	struct tenant_route *route = prefixes.lookup(&key);

	if (!route) {
		/*
		 * Marked by a tenant namespace but with no tunnel to go to (its prefix is being removed): sent
		 * back unwrapped, the edge would only route it into the namespace again.
		 */
		if (TENANT_MARK_BASE && (skb->mark & ~0xffffU) == TENANT_MARK_BASE) {
			count(skb, 0, VERDICT_WRONG_TENANT);
			return TC_ACT_SHOT;
		}
		count(skb, 0, VERDICT_NOT_TUNNELED);
		return TC_ACT_OK;
	}
	__u32 tenant = route->tenant;

	/* Never wrap what is not a whole IPv4 packet: the other end would unwrap it half-parsed. */
	if (!length_fits(skb, inner, sizeof(struct ethhdr))) {
		count(skb, tenant, VERDICT_MALFORMED);
		return TC_ACT_SHOT;
	}

	/*
	 * Defence in depth: the tenant namespace marks what it accepted; a packet for another tenant's prefix
	 * can only be here by mistake, and must not be delivered to that tenant's site.
	 */
	if (TENANT_MARK_BASE && skb->mark != TENANT_MARK_BASE + tenant) {
		count(skb, tenant, VERDICT_WRONG_TENANT);
		return TC_ACT_SHOT;
	}

	struct iphdr outer = {
		.version = 4,
		.ihl = 5,
		.tos = inner->tos,
		.ttl = 64,
		.protocol = IPPROTO_GRE,
		/* Keep the inner DF, so path MTU discovery works through the tunnel like through a router. */
		.frag_off = inner->frag_off & bpf_htons(IP_DF),
		.saddr = bpf_htonl(GRE_LOCAL),
		.daddr = route->remote,
	};
	/* A GSO packet is longer than one IP packet may be; segmentation rewrites the length of each segment. */
	__u32 length = skb->len - sizeof(struct ethhdr) + GRE_OVERHEAD;

	outer.tot_len = bpf_htons(length > 0xffff ? 0xffff : length);
	ipv4_set_csum(&outer);
	struct gre_base gre = {.flags = 0, .protocol = bpf_htons(ETH_P_IP)};

	/*
	 * FIXED_GSO: the route MTU in front of this program already left room for the 24 bytes, so the
	 * segment size the sender chose stays right, and each segment leaves as one full-sized GRE packet.
	 */
	__u64 flags = BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_GRE | BPF_F_ADJ_ROOM_FIXED_GSO;

	if (bpf_skb_adjust_room(skb, GRE_OVERHEAD, BPF_ADJ_ROOM_MAC, flags)) {
		count(skb, tenant, VERDICT_ERROR);
		return TC_ACT_SHOT;
	}
	if (bpf_skb_store_bytes(skb, sizeof(struct ethhdr), &outer, sizeof(outer), 0) ||
	    bpf_skb_store_bytes(skb, sizeof(struct ethhdr) + sizeof(outer), &gre, sizeof(gre), 0)) {
		count(skb, tenant, VERDICT_ERROR);
		return TC_ACT_SHOT;
	}
	count(skb, tenant, VERDICT_ENCAPSULATED);
	return TC_ACT_OK;
}

/* The VERDICT_TO_* refusing a decapsulated packet to this inner destination, or -1 when it may go. */
static __always_inline int refused_destination(__be32 daddr)
{
	struct prefix_key key = {.prefixlen = 32, .addr = daddr};
	__u32 *verdict = refused.lookup(&key);

	if (verdict)
		return *verdict;
	/* A tenant prefix added after the ranges were filled in is refused all the same. */
	if (prefixes.lookup(&key))
		return VERDICT_TO_TENANT;
	return -1;
}

static __always_inline int decapsulate(struct __sk_buff *skb)
{
	struct cursor c = {.pos = (void *)(long)skb->data, .end = (void *)(long)skb->data_end};
	struct iphdr *outer;
	struct iphdr *inner;
	struct gre_base *gre;

	if (parse_plain_ipv4(&c, &outer) < 0 || outer->protocol != IPPROTO_GRE ||
	    outer->daddr != bpf_htonl(GRE_LOCAL)) {
		count(skb, 0, VERDICT_NOT_TUNNELED);
		return TC_ACT_OK;
	}
	__u32 *tenant = remotes.lookup(&outer->saddr);

	if (!tenant) {
		count(skb, 0, VERDICT_UNKNOWN_REMOTE);
		return TC_ACT_SHOT;
	}
	/* A fragment of a GRE packet cannot be unwrapped on its own (and this tunnel never sends any). */
	if (is_fragment(outer) || parse_grehdr(&c, &gre) < 0 || parse_iphdr(&c, &inner) < 0 || inner->ihl != 5 ||
	    !length_fits(skb, outer, sizeof(struct ethhdr)) ||
	    bpf_ntohs(inner->tot_len) + GRE_OVERHEAD != bpf_ntohs(outer->tot_len)) {
		count(skb, *tenant, VERDICT_MALFORMED);
		return TC_ACT_SHOT;
	}
	if (DECAP_CHECK_SOURCE) {
		struct prefix_key key = {.prefixlen = 32, .addr = inner->saddr};
		struct tenant_route *route = prefixes.lookup(&key);

		if (!route || route->tenant != *tenant) {
			count(skb, *tenant, VERDICT_SPOOFED);
			return TC_ACT_SHOT;
		}
	}
	__u32 owner = *tenant;
	__u32 ifindex = 0;

	if (DECAP_TO_CONTEXT) {
		int verdict = refused_destination(inner->daddr);

		if (verdict >= 0) {
			count(skb, owner, verdict);
			return TC_ACT_SHOT;
		}
		__u32 *context = contexts.lookup(&owner);

		if (!context) {
			count(skb, owner, VERDICT_NO_CONTEXT);
			return TC_ACT_SHOT;
		}
		ifindex = *context;
	}

	/* FIXED_GSO: the segments keep the size they were sent with (see encapsulate). */
	if (bpf_skb_adjust_room(skb, -(int)GRE_OVERHEAD, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_FIXED_GSO)) {
		count(skb, owner, VERDICT_ERROR);
		return TC_ACT_SHOT;
	}
	count(skb, owner, VERDICT_DECAPSULATED);
	/*
	 * Into the tenant's namespace (ingress of the veth's peer): the edge's own tables, which reach the
	 * management network and the backplane, never route what a tenant's site sent.
	 */
	if (DECAP_TO_CONTEXT)
		return bpf_redirect_peer(ifindex, 0);
	return TC_ACT_OK;
}

#endif
