// SPDX-License-Identifier: GPL-2.0
/* The cheapest possible XDP program: drop everything. The benchmarks' floor for per-packet cost. */
#include <uapi/linux/bpf.h>

int xdp_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}
