// SPDX-License-Identifier: GPL-2.0
/*
 * The smallest XDP program: lets every frame through to the kernel stack.
 * It proves that bcc can compile and the kernel can attach XDP (edgesim.hostsetup.prove_bcc), and it is
 * the program to put on a veth peer that receives XDP_TX/XDP_REDIRECT frames, which the kernel only
 * delivers when the peer has an XDP program of its own.
 */
#include <uapi/linux/bpf.h>

int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
