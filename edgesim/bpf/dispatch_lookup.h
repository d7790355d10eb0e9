/* SPDX-License-Identifier: GPL-2.0 */
/* Which binding a destination falls under: the most specific prefix, then a specific port over all ports. */
#ifndef EDGESIM_DISPATCH_LOOKUP_H
#define EDGESIM_DISPATCH_LOOKUP_H

#include "dispatch_maps.h"

static __always_inline struct binding *binding_for(__u8 protocol, __u16 port, __be32 addr)
{
	struct binding_key key = {
		.prefixlen = DISPATCH_KEY_FIXED_BITS + 32,
		.protocol = protocol,
		.port = bpf_htons(port),
		.addr = addr,
	};
	struct binding *specific = bindings.lookup(&key);
	struct binding *any;

	key.port = DISPATCH_PORT_ANY;
	any = bindings.lookup(&key);
	if (!specific)
		return any;
	if (!any || specific->prefix_len >= any->prefix_len)
		return specific;
	return any;
}

static __always_inline void total_add(__u32 slot)
{
	__u64 *total = dispatch_totals.lookup(&slot);

	if (total)
		*total += 1;
}

#endif
