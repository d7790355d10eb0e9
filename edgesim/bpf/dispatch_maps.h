/* SPDX-License-Identifier: GPL-2.0 */
/* Maps of the socket dispatcher; the edge's dispatch agent fills them from the lab's bindings table. */
#ifndef EDGESIM_DISPATCH_MAPS_H
#define EDGESIM_DISPATCH_MAPS_H

#include "dispatch_consts.h"
#include "dispatch_structs.h"

/* (protocol, port or 0, destination prefix) -> label; longest match on the address. */
BPF_F_TABLE("lpm_trie", struct binding_key, struct binding, bindings, DISPATCH_MAX_BINDINGS,
	    BPF_F_NO_PREALLOC);

/* Label id -> the socket registered under it (a listening TCP or a UDP socket). */
BPF_TABLE("sockmap", __u32, __u32, sockets, DISPATCH_MAX_LABELS);

/* Label id -> its counters, per CPU (readers sum the CPUs). */
BPF_PERCPU_ARRAY(label_stats, struct label_stats, DISPATCH_MAX_LABELS);

/* DISPATCH_* totals, per CPU. */
BPF_PERCPU_ARRAY(dispatch_totals, __u64, DISPATCH_TOTALS);

#endif
