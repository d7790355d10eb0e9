/* SPDX-License-Identifier: GPL-2.0 */
/* Counting a verdict in the `stats` map, by slot: the XDP chain's own verdicts and one slot per rule. */
#ifndef EDGESIM_DDOS_STATS_H
#define EDGESIM_DDOS_STATS_H

#include <uapi/linux/bpf.h>

#include "common/counters.h"
#include "ddos_maps.h"

static __always_inline void count(__u32 slot, __u64 bytes)
{
	struct counter *counter = stats.lookup(&slot);

	if (counter)
		counter_add(counter, bytes);
}

static __always_inline int drop(__u32 slot, __u64 bytes)
{
	count(slot, bytes);
	return XDP_DROP;
}

#endif
