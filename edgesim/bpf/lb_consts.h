/* SPDX-License-Identifier: GPL-2.0 */
/* Constants of the L4 load balancer; edgesim/lb/layout.py mirrors them by the same names. */
#ifndef EDGESIM_LB_CONSTS_H
#define EDGESIM_LB_CONSTS_H

/* The LB's counters, in the DoS program's `stats` map (below its FIRST_RULE_SLOT). */
#define SLOT_LB_LOCAL 7		/* packet to a balanced VIP handled by this edge */
#define SLOT_LB_FORWARDED 8	/* sent to the owner edge over the backplane (first hop) */
#define SLOT_LB_CHAINED 9	/* sent on to the bucket's previous owner (daisy chain, second hop) */
#define SLOT_LB_RECEIVED 10	/* encapsulated packet from another edge, decapsulated */
#define SLOT_LB_BAD_ENCAP 11	/* malformed or unexpected IP-in-IP on the backplane: dropped */
#define SLOT_LB_BACKPLANE_OWN 13	/* the backplane's own traffic (health checks, ARP): to the stack */

/*
 * Two lookup tables of RING_SIZE buckets (a prime, as Maglev wants); the agent fills the inactive one and
 * then flips `active`, so a packet never sees half a table.
 */
#define RING_SIZE 65537
#define MAX_EDGES 64

/*
 * Where a packet comes from: the router, or another edge over the backplane as the bucket's first or
 * second (daisy-chained) hop. A second hop is never forwarded again, so a packet crosses the backplane at
 * most twice whatever the tables say.
 */
#define HOP_DIRECT 0
#define HOP_FIRST 1
#define HOP_SECOND 2

/* The outer IPv4 header's TTL carries the hops a forwarded packet may still take. */
#define ENCAP_TTL_FIRST 2
#define ENCAP_TTL_SECOND 1

/* Every edge must hash a flow to the same bucket: a fixed seed, no per-boot randomness. */
#define FLOW_HASH_SEED 0x5eed4ed6

#endif
