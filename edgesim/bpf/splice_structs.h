/* SPDX-License-Identifier: GPL-2.0 */
/* Values of the splice's maps, keyed by socket cookie; edgesim/proxy/splice.py mirrors them through bcc. */
#ifndef EDGESIM_SPLICE_STRUCTS_H
#define EDGESIM_SPLICE_STRUCTS_H

#include <linux/types.h>

/*
 * What the proxy asks of one side (written by user space only, each update a whole new value):
 * - peer: the cookie of the socket its data goes to once spliced;
 * - handover_at: with `requested`, switch to splice at the first segment that finds exactly this many bytes
 *   passed to the proxy so far (then the proxy has read and forwarded all of them: the order holds);
 * - allowed: redirect while the bytes redirected stay within this (the peer's progress plus a budget), since
 *   a redirect frees the receive window at once and nothing else would hold a fast sender back.
 */
struct splice_link {
	__u64 peer;
	__u64 handover_at;
	__u64 allowed;
	__u32 requested;
	__u32 pad;
};

/* What happened to one side (written by the program only; the proxy creates it zeroed and reads it). */
struct splice_side {
	__u64 passed;     /* bytes left to the proxy (copy mode) */
	__u64 redirected; /* bytes moved to the peer */
	__u64 segments;   /* segments moved to the peer */
	__u32 mode;       /* SPLICE_MODE_* */
	__u32 pauses;     /* times the budget ran out */
};

#endif
