/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The source-prefix rules (allow_src, drop_src): the longest prefix covering a packet's source decides.
 * One exact-match probe per prefix length in use, longest first, so the cost follows the number of
 * distinct lengths (at most 33), not the number of rules; the writer has resolved the allowlist's
 * precedence into the entries (see src_rules in ddos_maps.h).
 */
#ifndef EDGESIM_DDOS_SOURCES_H
#define EDGESIM_DDOS_SOURCES_H

#include "ddos_maps.h"

/* The network mask of a prefix length, in network byte order (0 for /0). */
static __always_inline __be32 prefix_mask(__u32 len)
{
	if (!len)
		return 0;
	return bpf_htonl(~0U << ((32 - len) & 31));
}

/* The entry of the longest rule prefix that covers `saddr` in the generation in force, or NULL. */
static __always_inline struct src_rule *source_rule(__be32 saddr)
{
	struct src_lengths *lengths;
	struct src_key key = {};
	struct src_rule *rule;
	__u32 zero = 0, gen;
	__u32 *active;
	__u32 i;

	active = src_active.lookup(&zero);
	if (!active)
		return NULL;
	gen = *active & 1;
	lengths = src_lengths.lookup(&gen);
	if (!lengths)
		return NULL;
	key.gen = gen;
	for (i = 0; i < SRC_LENGTHS; i++) {
		if (i >= lengths->count)
			break;
		key.prefixlen = lengths->len[i];
		key.addr = saddr & prefix_mask(key.prefixlen);
		rule = src_rules.lookup(&key);
		if (rule)
			return rule;
	}
	return NULL;
}

#endif
