/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The L4 load balancer, behind the DoS program at chain[CHAIN_NEXT]: a balanced VIP's packet goes to the
 * edge that owns its flow (Maglev table, Unimog-style daisy chain to the previous owner), IP-in-IP over
 * the backplane, or through to the stack here.
 */
#ifndef EDGESIM_LB_BALANCE_H
#define EDGESIM_LB_BALANCE_H

#include <uapi/linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>

#include "common/hash.h"
#include "common/parsing.h"
#include "ddos_stats.h"
#include "lb_encap.h"
#include "lb_handover.h"
#include "lb_maps.h"

/*
 * Whether this namespace holds the flow's connection: an established socket, or a request socket (the
 * handshake's SYN was answered here and its ACK is on the way). A listener does not count, nor a
 * connection in TIME_WAIT. Without the request socket, the ACK of a SYN the owner answered itself would
 * find "no socket here" and go down the daisy chain to the bucket's previous owner, which resets it.
 */
static __always_inline int has_socket(struct xdp_md *ctx, struct iphdr *ip, struct tcphdr *th)
{
	struct bpf_sock_tuple tuple = {};

	tuple.ipv4.saddr = ip->saddr;
	tuple.ipv4.daddr = ip->daddr;
	tuple.ipv4.sport = th->source;
	tuple.ipv4.dport = th->dest;
	/* skc: request and TIME_WAIT sockets are returned as themselves, not as their listener or nothing. */
	struct bpf_sock *sk = bpf_skc_lookup_tcp(ctx, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);

	if (!sk)
		return 0;
	int here = sk->state != BPF_TCP_LISTEN && sk->state != BPF_TCP_TIME_WAIT;

	bpf_sk_release(sk);
	return here;
}

/* Where a balanced flow's packet goes: an edge index, or self. */
static __always_inline __u32 choose(struct lb_config *cfg, struct lb_scratch *sc, struct iphdr *ip,
				    struct tcphdr *th)
{
	if (sc->hop >= HOP_SECOND)
		return cfg->self;
	__u32 hash = hash_4tuple(ip->saddr, ip->daddr, th->source, th->dest, FLOW_HASH_SEED);
	__u32 index = (cfg->active ? RING_SIZE : 0) + hash % RING_SIZE;
	struct lb_bucket *bucket = lb_ring.lookup(&index);

	if (!bucket)
		return cfg->self;
	/* A connection being opened (SYN, or the ACK of a SYN cookie) goes to the bucket's owner. */
	if (sc->new_flow || (th->syn && !th->ack))
		return bucket->first;
	/*
	 * A mid-flow packet with no socket here: to the owner, and from the owner on to the previous owner,
	 * which holds the connections opened before the bucket moved. A first hop whose own table names
	 * another owner (the tables of two edges briefly disagree) passes it on to that owner instead.
	 */
	if (bucket->first != cfg->self)
		return bucket->first;
	return bucket->second;
}

/* The LB's verdict for a packet the DoS stage passed (sc: what that stage learnt of it). */
static __always_inline int balance(struct xdp_md *ctx, struct lb_scratch *sc)
{
	struct cursor c = {.pos = (void *)(long)ctx->data, .end = (void *)(long)ctx->data_end};
	__u64 bytes = c.end - c.pos;
	struct ethhdr *eth;
	struct iphdr *ip;
	struct tcphdr *th;
	__u32 zero = 0;

	/* The DoS stage checked these headers already; parsed again because the verifier must see it. */
	if (parse_ethhdr(&c, &eth) < 0 || eth->h_proto != bpf_htons(ETH_P_IP) || parse_iphdr(&c, &ip) < 0 ||
	    check_ipv4_length(&c, ip) < 0)
		return sc->unverified ? drop_unverified(sc, bytes) : XDP_PASS;
	if (ip->protocol != IPPROTO_TCP || is_later_fragment(ip) || parse_tcphdr(&c, ip, &th) < 0)
		return sc->unverified ? drop_unverified(sc, bytes) : XDP_PASS;

	struct lb_config *cfg = lb_config.lookup(&zero);

	if (!cfg || !balanced(ip->daddr, bpf_ntohs(th->dest)))
		return sc->unverified ? drop_unverified(sc, bytes) : XDP_PASS;
	int here = has_socket(ctx, ip, th);

	/*
	 * A handshake's ACK (or the first data after it, same ACK number) whose 4-tuple the DoS stage
	 * already knew from an older connection (source ports get reused) is still a new connection: it goes
	 * to the bucket's owner, never down the daisy chain to a drained edge.
	 */
	if (!here && !sc->new_flow && th->ack && !th->syn && !th->rst &&
	    bpf_tcp_raw_check_syncookie_ipv4(ip, th) == 0)
		sc->new_flow = 1;
	if (!here) {
		__u32 target = choose(cfg, sc, ip, th);
		__u32 self = cfg->self;
		struct lb_edge *dst = lb_edges.lookup(&target);
		struct lb_edge *me = lb_edges.lookup(&self);

		/* An edge missing from the table (being removed right now) cannot take it: keep it here. */
		if (target != self && dst && me && dst->present && me->present)
			return forward(ctx, cfg, me, dst, sc->hop, bytes);
	}
	if (sc->unverified && !here)
		return drop_unverified(sc, bytes);
	count(SLOT_LB_LOCAL, bytes);
	return XDP_PASS;
}

#endif
