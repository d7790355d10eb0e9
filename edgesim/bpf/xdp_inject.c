// SPDX-License-Identifier: GPL-2.0
/*
 * For benchmarks: sends every frame it runs on out of the device in `inject_to` (XDP_REDIRECT). Run by
 * BPF_PROG_TEST_RUN in live-frames mode it is a packet generator that hands a veth its frames the way a
 * NIC's driver gets them: bare buffers, with no socket buffer until the receiver builds one for the stack.
 */
#include <uapi/linux/bpf.h>

/* The device to send to (one entry, written by ifindex from the device's namespace). */
BPF_DEVMAP(inject_to, 1);

int xdp_inject(struct xdp_md *ctx)
{
	return inject_to.redirect_map(0, 0);
}
