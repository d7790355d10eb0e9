// SPDX-License-Identifier: GPL-2.0
/*
 * The DNS service's socket filter (SO_ATTACH_BPF on its one UDP socket): a token bucket per source
 * address, so that a flood that got past XDP is dropped before it fills the socket's receive buffer,
 * and one source over its rate cannot starve the others. Counts per source and for the socket.
 *
 * Parameters (-D): SF_MAX_SOURCES, the LRU map's size (default 65536).
 */
#include <uapi/linux/bpf.h>
#include <linux/ip.h>

#include "sockfilter_bucket.h"

int dns_filter(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct sf_config *cfg = sf_config.lookup(&zero);
	struct sf_source *src;
	__be32 saddr;
	__u64 now;

	/* The socket sees the datagram from its UDP header on: the source is read relative to the IP header. */
	if (bpf_skb_load_bytes_relative(skb, __builtin_offsetof(struct iphdr, saddr), &saddr, sizeof(saddr),
					BPF_HDR_START_NET) < 0) {
		sf_total_add(SF_TOTAL_UNPARSED);
		return skb->len;
	}
	now = bpf_ktime_get_ns();
	src = sf_source_of(saddr, now);
	if (!src || !cfg) {
		sf_total_add(SF_TOTAL_PASSED);
		return skb->len;
	}
	if (cfg->enabled && !sf_conforms(src, cfg, now)) {
		__sync_fetch_and_add(&src->dropped, 1);
		sf_total_add(SF_TOTAL_DROPPED);
		return SF_DROP;
	}
	__sync_fetch_and_add(&src->passed, 1);
	sf_total_add(SF_TOTAL_PASSED);
	return skb->len;
}
