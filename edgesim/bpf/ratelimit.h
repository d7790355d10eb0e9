/* GCRA rate limiting (equivalent to a token bucket of `burst` tokens refilled at `rate`), race-free across
 * CPUs: every packet reserves its slot with one atomic add on the shared theoretical arrival time.
 * (Map lookups stay in the .c file: bcc rewrites map calls only in the main source, not in headers.) */
#ifndef EDGESIM_RATELIMIT_H
#define EDGESIM_RATELIMIT_H

/* 1 if a packet arriving at `now` conforms to the rate, 0 if it is over. */
static __always_inline int gcra_conforms(u64 *tat, u64 now, u64 interval, u64 tolerance)
{
    u64 before = __sync_fetch_and_add(tat, interval);
    if (before < now) {
        /* Idle long enough for the bucket to be full: restart the schedule at now. A packet racing
         * with this store is at worst counted against the fresh schedule, never lost. */
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

#endif
