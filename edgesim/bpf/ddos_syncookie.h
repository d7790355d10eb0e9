/* SPDX-License-Identifier: GPL-2.0 */
/*
 * SYN cookies from XDP (the kernel's bpf_tcp_raw_*_syncookie_ipv4 helpers, as in its xdp_synproxy
 * selftest): a SYN to a protected VIP:port is answered with a SYN-ACK whose sequence number is the cookie,
 * from the packet itself (XDP_TX), so a spoofed SYN never creates state. The client's ACK is checked
 * here and passed to the stack, where nftables' synproxy completes the connection to the local server.
 */
#ifndef EDGESIM_DDOS_SYNCOOKIE_H
#define EDGESIM_DDOS_SYNCOOKIE_H

#include <uapi/linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>

#include "common/csum.h"
#include "common/parsing.h"
#include "ddos_maps.h"
#include "ddos_stats.h"
#include "lb_handover.h"

#define ETH_IP_LEN (sizeof(struct ethhdr) + sizeof(struct iphdr))

/* The IPv4 pseudo header of the TCP checksum. */
struct pseudo_header {
	__be32 saddr;
	__be32 daddr;
	__u8 zero;
	__u8 proto;
	__be16 len;
};

static __always_inline void swap_mac(struct ethhdr *eth)
{
	__u8 tmp[ETH_ALEN];

	__builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
}

/*
 * Turn the SYN in the frame into the SYN-ACK carrying the cookie. The caller checked: IPv4 without
 * options, TCP, SYN without ACK and without payload. Returns XDP_TX, or a drop/abort verdict.
 */
static __always_inline int answer_syn(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	/*
	 * Make room for a full 60-byte TCP header, so that the helper may read any header length the SYN
	 * declares and the verifier can prove it stays inside the packet.
	 */
	int grow = (int)(ETH_IP_LEN + TCP_MAX_HEADER) - (int)(data_end - data);

	if (bpf_xdp_adjust_tail(ctx, grow))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct tcphdr *th = data + ETH_IP_LEN;

	if ((void *)th + TCP_MAX_HEADER > data_end)
		return XDP_ABORTED;
	__u32 th_len = th->doff * 4;

	if (th_len < sizeof(*th) || th_len > TCP_MAX_HEADER)
		return XDP_DROP;
	__s64 value = bpf_tcp_raw_gen_syncookie_ipv4(ip, th, th_len);

	if (value < 0)
		return XDP_DROP;
	__u32 cookie = (__u32)value;
	__u16 mss = (value >> 32) & 0xffff;
	__u32 client_seq = bpf_ntohl(th->seq);

	swap_mac(eth);
	__be32 addr = ip->saddr;

	ip->saddr = ip->daddr;
	ip->daddr = addr;
	ip->tos = 0;
	ip->tot_len = bpf_htons(sizeof(*ip) + SYNACK_TCP_LEN);
	ip->id = 0;
	ip->frag_off = bpf_htons(IP_DF);
	ip->ttl = 64;
	ipv4_set_csum(ip);

	__be16 port = th->source;

	th->source = th->dest;
	th->dest = port;
	th->seq = bpf_htonl(cookie);
	th->ack_seq = bpf_htonl(client_seq + 1);
	/* Flags and data offset share a 16-bit word: doff 6, SYN and ACK, everything else clear. */
	*((__u16 *)th + 6) = bpf_htons((SYNACK_TCP_LEN / 4) << 12 | 0x12);
	th->window = bpf_htons(65535);
	th->urg_ptr = 0;
	th->check = 0;
	__u8 *opt = (__u8 *)(th + 1);

	opt[0] = 2; /* MSS */
	opt[1] = 4;
	opt[2] = mss >> 8;
	opt[3] = mss & 0xff;
	struct pseudo_header ph = {
		.saddr = ip->saddr,
		.daddr = ip->daddr,
		.proto = IPPROTO_TCP,
		.len = bpf_htons(SYNACK_TCP_LEN),
	};
	th->check = fold_csum(sum_words(&ph, sizeof(ph) / 2) + sum_words(th, SYNACK_TCP_LEN / 2));

	int shrink = (int)(ETH_IP_LEN + SYNACK_TCP_LEN) - (int)(data_end - data);

	if (bpf_xdp_adjust_tail(ctx, shrink))
		return XDP_ABORTED;
	return XDP_TX;
}

/* SYN cookie handling for TCP to a protected VIP:port: -1 when the packet is not for one, else a verdict. */
static __always_inline int protect_handshake(struct xdp_md *ctx, struct ddos_packet *pkt, __u64 bytes,
					     struct lb_scratch *sc)
{
	struct iphdr *ip = pkt->ip;
	struct tcphdr *th = pkt->th;
	struct cookie_key ck = {.vip = ip->daddr, .port = pkt->dport};
	struct flow_key fk = {.saddr = ip->saddr, .daddr = ip->daddr, .sport = pkt->sport, .dport = pkt->dport};
	__u32 *rule = cookie_vips.lookup(&ck);

	if (!rule)
		return -1;
	if (th->syn && !th->ack) {
		/* A SYN with options or payload: not answered, not passed. */
		if (ip->ihl != 5 || bpf_ntohs(ip->tot_len) != sizeof(struct iphdr) + th->doff * 4)
			return drop(*rule, bytes);
		/*
		 * A SYN starts a new connection: forget an old one on the same 4-tuple (a reused source port),
		 * so that its handshake ACK is checked for a cookie instead of passing as an established flow.
		 */
		cookie_flows.delete(&fk);
		count(*rule, bytes);
		count(SLOT_COOKIE_SENT, bytes);
		return answer_syn(ctx);
	}
	__u64 now = bpf_ktime_get_ns();
	__u64 *seen = cookie_flows.lookup(&fk);

	if (seen) {
		*seen = now;
		count(SLOT_COOKIE_FLOW, bytes);
		return -1;
	}
	if (th->ack && !th->syn && !th->rst && bpf_tcp_raw_check_syncookie_ipv4(ip, th) == 0) {
		cookie_flows.update(&fk, &now);
		count(SLOT_COOKIE_ACK_OK, bytes);
		sc->new_flow = 1;
		return -1;
	}
	if (balanced(ip->daddr, pkt->dport)) {
		/* Maybe a connection another edge holds (the router's ECMP moved it here): the LB decides. */
		sc->unverified = 1;
		sc->drop_slot = *rule;
		return -1;
	}
	count(*rule, bytes);
	return drop(SLOT_COOKIE_ACK_BAD, bytes);
}

#endif
