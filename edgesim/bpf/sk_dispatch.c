// SPDX-License-Identifier: GPL-2.0
/*
 * Socket dispatch (BPF_PROG_TYPE_SK_LOOKUP, attached to an edge's network namespace): a packet that opens a
 * connection (or a UDP datagram) to an address and port matched by a binding goes to the socket registered
 * under the binding's label, whatever that socket is bound to; a binding whose label has no socket drops it;
 * no binding leaves the kernel's own lookup alone. The model is Cloudflare's tubular.
 */
#include <uapi/linux/bpf.h>
#include <linux/socket.h>

#include "dispatch_lookup.h"

int dispatch(struct bpf_sk_lookup *ctx)
{
	struct label_stats *stats;
	struct binding *found;
	struct bpf_sock *sk;
	__u32 label;
	long err;

	if (ctx->family != AF_INET)
		return SK_PASS;
	found = binding_for(ctx->protocol, ctx->local_port, ctx->local_ip4);
	if (!found) {
		total_add(DISPATCH_NO_BINDING);
		return SK_PASS;
	}
	label = found->label;
	stats = label_stats.lookup(&label);
	if (!stats)
		return SK_PASS;
	stats->lookups += 1;
	sk = (struct bpf_sock *)sockets.lookup(&label);
	if (!sk) {
		stats->misses += 1;
		stats->drops += 1;
		return SK_DROP;
	}
	err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	if (err) {
		stats->drops += 1;
		return SK_DROP;
	}
	total_add(DISPATCH_ASSIGNED);
	return SK_PASS;
}
