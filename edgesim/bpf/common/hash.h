/* SPDX-License-Identifier: GPL-2.0 */
/* Flow hashing with the kernel's own Jenkins hash (linux/jhash.h, from the headers bcc compiles with). */
#ifndef EDGESIM_COMMON_HASH_H
#define EDGESIM_COMMON_HASH_H

#include <linux/types.h>
#include <linux/jhash.h>

/* An IPv4 4-tuple in three words (addresses and ports as on the wire), hashed with a caller's seed. */
static __always_inline __u32 hash_4tuple(__be32 saddr, __be32 daddr, __be16 sport, __be16 dport, __u32 seed)
{
	return jhash_3words(saddr, daddr, ((__u32)sport << 16) | dport, seed);
}

#endif
