/* SPDX-License-Identifier: GPL-2.0 */
/* Internet checksums from the kernel's bpf_csum_diff, shared by every program. */
#ifndef EDGESIM_COMMON_CSUM_H
#define EDGESIM_COMMON_CSUM_H

#include <linux/types.h>
#include <linux/ip.h>

/* Fold a 32-bit one's-complement sum (as bpf_csum_diff returns it) into a 16-bit checksum. */
static __always_inline __u16 fold_csum(__u64 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/* Set the checksum of an IPv4 header without options (in the packet or on the stack). */
static __always_inline void ipv4_set_csum(struct iphdr *ip)
{
	ip->check = 0;
	ip->check = fold_csum(bpf_csum_diff(0, 0, (__be32 *)ip, sizeof(*ip), 0));
}

#endif
