/* SPDX-License-Identifier: GPL-2.0 */
/* Keys and values of the DNS socket filter's maps; edgesim/dns/filtermaps.py mirrors them through bcc. */
#ifndef EDGESIM_SOCKFILTER_STRUCTS_H
#define EDGESIM_SOCKFILTER_STRUCTS_H

#include <linux/types.h>

/*
 * The limit every source gets, set from Python at run time (no reattach): a token bucket of `burst`
 * tokens refilled at `rate`, kept as GCRA's interval (1/rate) and tolerance ((burst - 1)/rate).
 * enabled = 0 counts every source but drops nothing.
 */
struct sf_config {
	__u64 interval_ns;
	__u64 tolerance_ns;
	__u32 enabled;
	__u32 pad;
};

/* One source: its bucket (theoretical arrival time) and what the filter did with its datagrams. */
struct sf_source {
	__u64 tat;
	__u64 passed;
	__u64 dropped;
};

#endif
