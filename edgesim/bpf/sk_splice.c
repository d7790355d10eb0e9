// SPDX-License-Identifier: GPL-2.0
/*
 * The TCP proxy's splice (BPF_PROG_TYPE_SK_SKB stream verdict, attached to splice_sockets): once a side is
 * handed over, every segment it receives goes straight to its peer socket's send side, and the proxy's
 * process no longer copies its bytes. Before the handover, and whenever the peer falls a budget behind,
 * segments stay in the socket's own queue for the proxy to read (which also closes the sender's window, the
 * only back pressure there is: a redirect frees the receive window at once).
 */
#include <uapi/linux/bpf.h>

#include "splice_maps.h"

/* bcc declares bpf_get_socket_cookie as returning a u32, which would cut the cookie: call it as it is. */
static __always_inline __u64 socket_cookie(struct __sk_buff *skb)
{
	__u64 (*get_cookie)(void *) = (void *)BPF_FUNC_get_socket_cookie;

	return get_cookie(skb);
}

static __always_inline void total_add(__u32 slot, __u64 value)
{
	__u64 *total = splice_totals.lookup(&slot);

	if (total)
		*total += value;
}

/* Whether this segment may go to the peer: after the handover, while the peer is within its budget. */
static __always_inline int may_redirect(struct splice_side *side, const struct splice_link *link, __u32 len)
{
	if (side->mode == SPLICE_MODE_COPY) {
		/* Only when the proxy has read and forwarded every byte passed so far, else the order breaks. */
		if (!link->requested || link->handover_at != side->passed)
			return 0;
		side->mode = SPLICE_MODE_SPLICE;
		total_add(SPLICE_HANDOVERS, 1);
	}
	if (side->redirected + len > link->allowed) {
		side->mode = SPLICE_MODE_COPY;
		side->pauses += 1;
		total_add(SPLICE_PAUSES, 1);
		return 0;
	}
	return 1;
}

int splice_verdict(struct __sk_buff *skb)
{
	__u64 cookie = socket_cookie(skb);
	struct splice_side *side = splice_sides.lookup(&cookie);
	struct splice_link *link = splice_links.lookup(&cookie);
	__u32 len = skb->len;
	__u64 peer;

	if (!side || !link) {
		total_add(SPLICE_UNKNOWN_SOCKET, 1);
		return SK_PASS;
	}
	/*
	 * A segment without data (a FIN on its own): TCP has taken its flag already. Queued behind other
	 * segments on the kernel's redirect path, an empty one reads as a failed send, which breaks the socket's
	 * pipe (EPIPE) and drops everything redirected to it after: let it go.
	 */
	if (!len) {
		total_add(SPLICE_EMPTY_DROPPED, 1);
		return SK_DROP;
	}
	if (!may_redirect(side, link, len)) {
		side->passed += len;
		total_add(SPLICE_PASSED_BYTES, len);
		return SK_PASS;
	}
	peer = link->peer;
	if (splice_sockets.sk_redirect_hash(skb, &peer, 0) != SK_PASS) {
		total_add(SPLICE_REDIRECT_FAILED, 1);
		return SK_DROP;
	}
	side->redirected += len;
	side->segments += 1;
	total_add(SPLICE_REDIRECTED_BYTES, len);
	total_add(SPLICE_REDIRECTED_SEGS, 1);
	return SK_PASS;
}
