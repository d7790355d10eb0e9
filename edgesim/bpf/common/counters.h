/* SPDX-License-Identifier: GPL-2.0 */
/* The value of every program's counter maps: packets and bytes, per CPU (readers sum the CPUs). */
#ifndef EDGESIM_COMMON_COUNTERS_H
#define EDGESIM_COMMON_COUNTERS_H

#include <linux/types.h>

struct counter {
	__u64 packets;
	__u64 bytes;
};

/* Count one packet of `bytes` bytes; no atomics needed: each CPU has its own copy of the value. */
static __always_inline void counter_add(struct counter *counter, __u64 bytes)
{
	counter->packets += 1;
	counter->bytes += bytes;
}

#endif
