// SPDX-License-Identifier: GPL-2.0
/*
 * GRE (RFC 2784) without the kernel's GRE driver: TC programs that wrap IPv4 in outer IPv4 + GRE on egress
 * and unwrap it on ingress. The packets on the wire are ordinary GRE, protocol 0x0800, no optional fields.
 *
 * Parameters (-D, set by edgesim/tenants/gre.py):
 *   GRE_LOCAL           this node's tunnel endpoint, IPv4 as a host-order number (outer source, decap target)
 *   ENCAP_BY_SOURCE     0: choose the tunnel by inner destination (edge, towards the customer);
 *                       1: by inner source (customer site router, back towards the edges)
 *   DECAP_CHECK_SOURCE  1: decapsulate only when the inner source is a prefix of the remote's own tenant
 *   TENANT_MARK_BASE    non-zero: only encapsulate packets whose mark is TENANT_MARK_BASE + their tenant
 *                       (a multiple of 0x10000: the low 16 bits are the tenant)
 *   DECAP_TO_CONTEXT    1 (edge): never route a decapsulated packet here; refuse inner destinations in
 *                       `refused`, then hand it to the tenant's namespace (`contexts`) with
 *                       bpf_redirect_peer, so that it is routed by the tenant's table and firewall only
 */
#include <uapi/linux/bpf.h>

#include "gre_tunnel.h"

int gre_encap(struct __sk_buff *skb)
{
	return encapsulate(skb);
}

int gre_decap(struct __sk_buff *skb)
{
	return decapsulate(skb);
}
