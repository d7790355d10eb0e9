/* SPDX-License-Identifier: GPL-2.0 */
/* The L4 load balancer's maps, in the same bcc module as the DoS program's (it counts in their `stats`). */
#ifndef EDGESIM_LB_MAPS_H
#define EDGESIM_LB_MAPS_H

#include "lb_consts.h"
#include "lb_structs.h"

/* Two tables of RING_SIZE buckets; lb_config.active says which one is live. */
BPF_ARRAY(lb_ring, struct lb_bucket, 2 * RING_SIZE);

/* Every edge of the PoP by index (the index the buckets hold). */
BPF_ARRAY(lb_edges, struct lb_edge, MAX_EDGES);

/* Backplane addresses of the edges, to accept encapsulated packets only from them (value: index + 1). */
BPF_HASH(lb_peers, __be32, __u32, MAX_EDGES);

/* The LB's switches (one entry). */
BPF_ARRAY(lb_config, struct lb_config, 1);

/* The VIP:ports it balances (TCP). */
BPF_HASH(lb_vips, struct lb_vip_key, __u32, 64);

/* Hand-over from the DoS program to the LB within one packet's processing. */
BPF_PERCPU_ARRAY(lb_handover, struct lb_scratch, 1);

#endif
