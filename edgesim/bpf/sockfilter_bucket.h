/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The per-source token bucket of the DNS socket filter, as GCRA (one atomic add on the source's
 * theoretical arrival time, race-free across the CPUs that deliver datagrams to the socket).
 */
#ifndef EDGESIM_SOCKFILTER_BUCKET_H
#define EDGESIM_SOCKFILTER_BUCKET_H

#include "sockfilter_maps.h"

static __always_inline void sf_total_add(__u32 slot)
{
	__u64 *total = sf_totals.lookup(&slot);

	if (total)
		__sync_fetch_and_add(total, 1);
}

/* The source's entry, inserted with a full bucket when it is new; NULL when the map refuses. */
static __always_inline struct sf_source *sf_source_of(__be32 saddr, __u64 now)
{
	struct sf_source *src = sf_sources.lookup(&saddr);
	struct sf_source fresh = {.tat = now};

	if (src)
		return src;
	/* NOEXIST: when two CPUs race on a new source, one insert wins and both then use its entry. */
	if (sf_sources.insert(&saddr, &fresh) == 0)
		sf_total_add(SF_TOTAL_SOURCES);
	return sf_sources.lookup(&saddr);
}

/* 1 if a datagram arriving at `now` fits the source's bucket, 0 if the source is over its rate. */
static __always_inline int sf_conforms(struct sf_source *src, const struct sf_config *cfg, __u64 now)
{
	__u64 before = __sync_fetch_and_add(&src->tat, cfg->interval_ns);

	if (before < now) {
		/* Idle long enough for the bucket to be full again: restart the schedule at now. */
		src->tat = now + cfg->interval_ns;
		return 1;
	}
	if (before - now > cfg->tolerance_ns) {
		/* Over: give the reservation back, so a flooding source is held at its rate, not below it. */
		__sync_fetch_and_add(&src->tat, -cfg->interval_ns);
		return 0;
	}
	return 1;
}

#endif
