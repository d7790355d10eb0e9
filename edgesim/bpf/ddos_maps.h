/* SPDX-License-Identifier: GPL-2.0 */
/* The DoS program's maps. Python fills the rule maps at run time (no reload); counters are per CPU. */
#ifndef EDGESIM_DDOS_MAPS_H
#define EDGESIM_DDOS_MAPS_H

#include "common/counters.h"
#include "ddos_consts.h"
#include "ddos_structs.h"

/* Packets and bytes per counter slot (verdict slots, then one per rule); summed over CPUs by the reader. */
BPF_PERCPU_ARRAY(stats, struct counter, MAX_SLOTS);

/*
 * The lab's control sessions on this edge's uplink (router address -> edge address; value unused): their
 * BGP and BFD packets with TTL 255 pass before any rule, so no user rule can cut the routing.
 */
BPF_HASH(control_peers, struct control_key, __u32, MAX_CONTROL_PEERS);

/*
 * Source-prefix rules, allow_src and drop_src together: one exact-match entry per prefix, keyed by its
 * length and network address, so a lookup costs one hash probe per prefix length in use (src_lengths),
 * longest first, whatever the number of rules. The writer (edgesim/mitigation/maps.py) resolves the
 * allowlist's precedence into the entries: a drop prefix inside an allowed one holds the allow verdict,
 * so the first entry found decides. Two generations: the writer brings the one not in force to the new
 * rule set, switches src_active, waits for programs still running on the old one, then updates that too.
 */
BPF_F_TABLE("hash", struct src_key, struct src_rule, src_rules, SRC_GENERATIONS * MAX_PREFIXES,
	    BPF_F_NO_PREALLOC);

/* Per generation: the prefix lengths its entries use, longest first. */
BPF_ARRAY(src_lengths, struct src_lengths, SRC_GENERATIONS);

/* The generation in force (one entry: 0 or 1). */
BPF_ARRAY(src_active, __u32, 1);

/* Protocol + source or destination port to drop, e.g. UDP from port 53 (value: the rule's slot). */
BPF_HASH(port_rules, struct port_key, __u32, 1024);

/* Per-source rate limits, indexed by RATE_SYN / RATE_UDP / RATE_ICMP. */
BPF_ARRAY(rate_limits, struct rate_cfg, RATE_KINDS);

/*
 * Per-source, per-kind theoretical arrival time of the next allowed packet; LRU so spoofed sources
 * cannot fill it up for good.
 */
BPF_TABLE("lru_hash", struct rate_key, __u64, rate_state, 65536);

/* VIP:port pairs whose SYNs are answered with SYN cookies from XDP (value: the rule's slot). */
BPF_HASH(cookie_vips, struct cookie_key, __u32, 64);

/*
 * Flows whose client returned a valid cookie: their later packets pass (value: last seen, ns). Only
 * clients that completed a handshake get an entry, so spoofed SYNs never create state.
 */
BPF_TABLE("lru_hash", struct flow_key, __u64, cookie_flows, 262144);

/* Per-destination packet-rate caps, keyed by VIP (network byte order). */
BPF_HASH(vip_caps, __be32, struct vip_cap, 64);

/* Switches of the malformed-packet rule (one entry). */
BPF_ARRAY(config, struct config, 1);

/* The rest of the edge's XDP chain: the program at CHAIN_NEXT runs after a pass verdict. */
BPF_PROG_ARRAY(chain, CHAIN_SIZE);

#endif
