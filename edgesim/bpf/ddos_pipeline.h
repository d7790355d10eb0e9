/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The DoS pipeline. Order: frame and header sanity (malformed, IP options, fragments) -> the lab's control
 * traffic (BGP, BFD with the router; never subject to a user rule) -> allowlist (skips all drops) -> source-prefix drops -> protocol/port drops -> per-source rate limits (SYN, UDP, ICMP) ->
 * SYN cookies for protected VIP:ports -> per-VIP cap -> pass to the next program of the chain (the L4
 * load balancer), or to the stack when there is none. Every verdict is counted in `stats`, per rule.
 */
#ifndef EDGESIM_DDOS_PIPELINE_H
#define EDGESIM_DDOS_PIPELINE_H

#include <uapi/linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>

#include "common/parsing.h"
#include "ddos_maps.h"
#include "ddos_ratelimit.h"
#include "ddos_sources.h"
#include "ddos_stats.h"
#include "ddos_syncookie.h"
#include "lb_handover.h"

static __always_inline int pass(struct xdp_md *ctx, __u64 bytes)
{
	struct lb_scratch *sc;

	count(SLOT_PASS, bytes);
	chain.call(ctx, CHAIN_NEXT);
	/*
	 * No program behind this one (or the tail call failed): the stack gets the packet, unless the cookie
	 * check was only deferred to an LB that is not there.
	 */
	sc = handover();
	if (sc && sc->unverified)
		return drop_unverified(sc, bytes);
	return XDP_PASS;
}

/* The transport header, for the protocols with rules; -1 when it is truncated or inconsistent. */
static __always_inline int parse_transport(struct cursor *c, struct ddos_packet *pkt)
{
	struct udphdr *uh;
	struct icmphdr *ih;

	switch (pkt->ip->protocol) {
	case IPPROTO_TCP:
		if (parse_tcphdr(c, pkt->ip, &pkt->th) < 0)
			return -1;
		pkt->sport = bpf_ntohs(pkt->th->source);
		pkt->dport = bpf_ntohs(pkt->th->dest);
		return 0;
	case IPPROTO_UDP:
		if (parse_udphdr(c, pkt->ip, &uh) < 0)
			return -1;
		pkt->sport = bpf_ntohs(uh->source);
		pkt->dport = bpf_ntohs(uh->dest);
		return 0;
	case IPPROTO_ICMP:
		return parse_icmphdr(c, pkt->ip, &ih);
	}
	return 0;
}

/* The rule of port_rules that drops this packet by its source or destination port, or NULL. */
static __always_inline __u32 *port_rule(const struct ddos_packet *pkt)
{
	struct port_key key = {.proto = pkt->ip->protocol, .side = SIDE_SRC, .port = pkt->sport};
	__u32 *rule;

	if (!pkt->sport && !pkt->dport)
		return NULL;
	rule = port_rules.lookup(&key);
	if (rule)
		return rule;
	key.side = SIDE_DST;
	key.port = pkt->dport;
	return port_rules.lookup(&key);
}

/* The per-source rate limit this packet is over (its rule's slot), or 0. */
static __always_inline __u32 rate_over(const struct ddos_packet *pkt, __u64 now)
{
	struct tcphdr *th = pkt->th;
	__u8 l4 = pkt->ip->protocol;

	if (th && th->syn && !th->ack)
		return source_over_limit(pkt->ip->saddr, RATE_SYN, now);
	if (l4 == IPPROTO_UDP)
		return source_over_limit(pkt->ip->saddr, RATE_UDP, now);
	if (l4 == IPPROTO_ICMP)
		return source_over_limit(pkt->ip->saddr, RATE_ICMP, now);
	return 0;
}

/*
 * Whether a packet is the lab's own control traffic: BGP or BFD of a known session, sent by the directly
 * connected peer (TTL 255, which no forwarded packet keeps). Parses on a copy of the cursor: the pipeline
 * below parses the transport header again, in its own order.
 */
static __always_inline int control_traffic(const struct cursor *at, const struct iphdr *ip)
{
	struct control_key key = {.saddr = ip->saddr, .daddr = ip->daddr};
	struct cursor c = *at;
	struct tcphdr *th;
	struct udphdr *uh;

	if (ip->ttl != GTSM_TTL || is_fragment(ip) || !control_peers.lookup(&key))
		return 0;
	if (ip->protocol == IPPROTO_TCP)
		return parse_tcphdr(&c, ip, &th) == 0 &&
		       (th->dest == bpf_htons(BGP_PORT) || th->source == bpf_htons(BGP_PORT));
	if (ip->protocol == IPPROTO_UDP)
		return parse_udphdr(&c, ip, &uh) == 0 &&
		       (uh->dest == bpf_htons(BFD_CONTROL_PORT) || uh->dest == bpf_htons(BFD_ECHO_PORT));
	return 0;
}

/* The DoS pipeline for a packet that came in directly (hop HOP_DIRECT) or over the backplane. */
static __always_inline int ddos(struct xdp_md *ctx, __u32 hop)
{
	struct cursor c = {.pos = (void *)(long)ctx->data, .end = (void *)(long)ctx->data_end};
	__u64 bytes = c.end - c.pos;
	struct lb_scratch *sc = handover();
	struct ddos_packet pkt = {};
	struct ethhdr *eth;
	__u32 zero = 0;

	if (!sc)
		return XDP_ABORTED;
	sc->hop = hop;
	sc->new_flow = 0;
	sc->unverified = 0;
	sc->drop_slot = 0;
	if (parse_ethhdr(&c, &eth) < 0)
		return drop(SLOT_MALFORMED, bytes);
	if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		count(SLOT_NOT_IPV4, bytes);
		return XDP_PASS;
	}
	if (parse_iphdr(&c, &pkt.ip) < 0 || check_ipv4_length(&c, pkt.ip) < 0)
		return drop(SLOT_MALFORMED, bytes);

	struct config *cfg = config.lookup(&zero);

	if (cfg && cfg->ip_options_slot && pkt.ip->ihl > 5)
		return drop(cfg->ip_options_slot, bytes);
	if (cfg && cfg->fragments_slot && is_fragment(pkt.ip))
		return drop(cfg->fragments_slot, bytes);

	if (control_traffic(&c, pkt.ip)) {
		count(SLOT_CONTROL, bytes);
		return pass(ctx, bytes);
	}

	/* The longest source prefix decides; an allowed source skips every drop rule below. */
	struct src_rule *by_source = source_rule(pkt.ip->saddr);

	if (by_source) {
		if (by_source->verdict != SRC_ALLOW)
			return drop(by_source->slot, bytes);
		count(by_source->slot, bytes);
		return pass(ctx, bytes);
	}

	/* Later fragments carry no transport header: only the rules above apply to them. */
	if (!is_later_fragment(pkt.ip) && parse_transport(&c, &pkt) < 0)
		return drop(SLOT_MALFORMED, bytes);

	__u32 *rule = port_rule(&pkt);

	if (rule)
		return drop(*rule, bytes);

	__u64 now = bpf_ktime_get_ns();
	__u32 over = rate_over(&pkt, now);

	if (over)
		return drop(over, bytes);
	if (pkt.th) {
		int verdict = protect_handshake(ctx, &pkt, bytes, sc);

		if (verdict >= 0)
			return verdict;
	}
	over = vip_over_cap(pkt.ip->daddr, now);
	if (over)
		return drop(over, bytes);
	return pass(ctx, bytes);
}

#endif
