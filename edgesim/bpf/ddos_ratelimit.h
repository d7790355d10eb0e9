/* SPDX-License-Identifier: GPL-2.0 */
/*
 * GCRA rate limiting (equivalent to a token bucket of `burst` tokens refilled at `rate`), race-free across
 * CPUs: every packet reserves its slot with one atomic add on the shared theoretical arrival time.
 */
#ifndef EDGESIM_DDOS_RATELIMIT_H
#define EDGESIM_DDOS_RATELIMIT_H

#include "ddos_maps.h"

/* 1 if a packet arriving at `now` conforms to the rate, 0 if it is over. */
static __always_inline int gcra_conforms(__u64 *tat, __u64 now, __u64 interval, __u64 tolerance)
{
	__u64 before = __sync_fetch_and_add(tat, interval);

	if (before < now) {
		/*
		 * Idle long enough for the bucket to be full: restart the schedule at now. A packet racing
		 * with this store is at worst counted against the fresh schedule, never lost.
		 */
		*tat = now + interval;
		return 1;
	}
	if (before - now > tolerance) {
		/* Over the rate: give the reservation back, so a flood is not punished beyond the rate. */
		__sync_fetch_and_add(tat, -interval);
		return 0;
	}
	return 1;
}

/* Per-source limit of one kind (RATE_SYN / RATE_UDP / RATE_ICMP); the rule's slot when over, else 0. */
static __always_inline __u32 source_over_limit(__be32 saddr, __u32 kind, __u64 now)
{
	struct rate_cfg *cfg = rate_limits.lookup(&kind);
	struct rate_key key = {.saddr = saddr, .kind = kind};
	__u64 *tat;

	if (!cfg || !cfg->enabled)
		return 0;
	tat = rate_state.lookup(&key);
	if (!tat) {
		__u64 first = now + cfg->interval_ns;

		/* NOEXIST: when two CPUs race on a new source, one insert wins and the other looks it up. */
		if (rate_state.insert(&key, &first) == 0)
			return 0;
		tat = rate_state.lookup(&key);
		if (!tat)
			return 0;
	}
	return gcra_conforms(tat, now, cfg->interval_ns, cfg->tolerance_ns) ? 0 : cfg->slot;
}

/* Per-VIP cap; the rule's slot when the VIP is over its rate, else 0. */
static __always_inline __u32 vip_over_cap(__be32 daddr, __u64 now)
{
	struct vip_cap *cap = vip_caps.lookup(&daddr);

	if (!cap)
		return 0;
	return gcra_conforms(&cap->tat, now, cap->interval_ns, cap->tolerance_ns) ? 0 : cap->slot;
}

#endif
