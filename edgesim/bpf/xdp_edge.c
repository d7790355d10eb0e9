// SPDX-License-Identifier: GPL-2.0
/*
 * The edge's XDP chain, one bcc module so that its programs share their maps:
 *
 * xdp_ddos - volumetric DoS mitigation, the first program of the chain on the edge's uplink
 *   (ddos_pipeline.h).
 * xdp_lb - the L4 load balancer, at chain[CHAIN_NEXT] (lb_balance.h).
 * xdp_backplane - on the backplane interface: checks and strips the IP-in-IP header (lb_encap.h), then
 *   runs the same DoS pipeline and LB on the inner packet, as if it had arrived from the router.
 *
 * A protected VIP's mid-flow packet that this edge does not know (no cookie-proven flow, no valid cookie)
 * is not dropped by the DoS stage when the LB balances that VIP: the LB drops it only if the flow belongs
 * here; otherwise the owner edge, which holds the connection, applies the same checks.
 */
#include <uapi/linux/bpf.h>

#include "ddos_pipeline.h"
#include "lb_balance.h"
#include "lb_encap.h"
#include "lb_handover.h"

int xdp_ddos(struct xdp_md *ctx)
{
	return ddos(ctx, HOP_DIRECT);
}

int xdp_lb(struct xdp_md *ctx)
{
	struct lb_scratch *sc = handover();

	if (!sc)
		return XDP_ABORTED;
	return balance(ctx, sc);
}

int xdp_backplane(struct xdp_md *ctx)
{
	__u32 hop;
	int verdict = decapsulate(ctx, &hop);

	if (verdict >= 0)
		return verdict;
	return ddos(ctx, hop);
}
