/* SPDX-License-Identifier: GPL-2.0 */
/* Keys and values of the socket dispatcher's maps; edgesim/dispatch/maps.py mirrors them through bcc. */
#ifndef EDGESIM_DISPATCH_STRUCTS_H
#define EDGESIM_DISPATCH_STRUCTS_H

#include <linux/types.h>

/* A binding: protocol, port (0: every port) and destination prefix; prefixlen counts the fixed 32 bits too. */
struct binding_key {
	__u32 prefixlen;
	__u8 protocol;
	__u8 pad;
	__be16 port;
	__be32 addr;
};

/* What a binding leads to: a label, and the binding's own prefix length (most specific wins). */
struct binding {
	__u32 label;
	__u32 prefix_len;
};

/* Per label, per CPU: lookups that matched one of its bindings, of those the ones that found no socket
 * registered under it, and the ones dropped (no socket, or the socket refused the packet). */
struct label_stats {
	__u64 lookups;
	__u64 misses;
	__u64 drops;
};

#endif
