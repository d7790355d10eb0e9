/* SPDX-License-Identifier: GPL-2.0 */
/* Internet checksums, summed here word by word and shared by every program (XDP and TC). */
#ifndef EDGESIM_COMMON_CSUM_H
#define EDGESIM_COMMON_CSUM_H

#include <linux/types.h>
#include <linux/ip.h>

/*
 * The one's-complement sum of n 16-bit words at p, n a constant (the loop is unrolled, and the caller has
 * checked that the words are inside the packet). Summed here, not by bpf_csum_diff: on Debian's 6.1 the
 * checksums made from its result came out one short in about 40% of packets (SYN-ACKs 0x0100 off, GRE
 * outer headers dropped by the next hop for a bad IP checksum), while on 6.18 they were all right.
 */
static __always_inline __u64 sum_words(const void *p, const int n)
{
	const __u16 *word = p;
	__u64 sum = 0;

#pragma unroll
	for (int i = 0; i < n; i++)
		sum += word[i];
	return sum;
}

/* Fold a one's-complement sum of up to 2^32 words into a 16-bit checksum. */
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
	ip->check = fold_csum(sum_words(ip, sizeof(*ip) / 2));
}

#endif
