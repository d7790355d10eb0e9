/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Bounds-checked header parsing, shared by every program. A cursor walks the linear part of the packet;
 * each parser returns 0 with the header and the cursor moved past it, or -1 when the header does not fit
 * the packet or is not what it claims. A caller never reads past what a parser checked (the verifier
 * insists, and so do we).
 */
#ifndef EDGESIM_COMMON_PARSING_H
#define EDGESIM_COMMON_PARSING_H

#include <linux/types.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/icmp.h>

#define IP_DF 0x4000		/* don't fragment */
#define IP_MF 0x2000		/* more fragments */
#define IP_OFFSET 0x1fff	/* fragment offset */

/* A cursor over the linear part of a packet: pos is where the next header starts, end is data_end. */
struct cursor {
	void *pos;
	void *end;
};

/* The 4-byte GRE header of RFC 2784 with every optional field absent: flags and version all zero. */
struct gre_base {
	__be16 flags;
	__be16 protocol;
};

/* An Ethernet header, whatever it carries (the caller looks at h_proto). */
static __always_inline int parse_ethhdr(struct cursor *c, struct ethhdr **eth)
{
	struct ethhdr *hdr = c->pos;

	if ((void *)(hdr + 1) > c->end)
		return -1;
	*eth = hdr;
	c->pos = hdr + 1;
	return 0;
}

/* An IPv4 header: version 4, IHL of at least 5, the whole header (options included) in the packet. */
static __always_inline int parse_iphdr(struct cursor *c, struct iphdr **ip)
{
	struct iphdr *hdr = c->pos;
	__u32 hlen;

	if ((void *)(hdr + 1) > c->end)
		return -1;
	if (hdr->version != 4 || hdr->ihl < 5)
		return -1;
	hlen = hdr->ihl * 4;
	if ((void *)hdr + hlen > c->end)
		return -1;
	*ip = hdr;
	c->pos = (void *)hdr + hlen;
	return 0;
}

/*
 * A 16-bit length field in host order, bounded for the verifier. Kernels before 6.4 or so (Debian 12's 6.1)
 * do not track the bounds of a byte swap, so `ip + ntohs(len)` reads there as a packet pointer plus an
 * unbounded scalar and the program is refused ("math between pkt pointer and register with unbounded min
 * value"). The empty asm hides the swap's range from the compiler, which would otherwise drop the mask.
 */
static __always_inline __u32 be16_length(__be16 field)
{
	__u32 value = bpf_ntohs(field);

	asm volatile("" : "+r"(value));
	return value & 0xffff;
}

/*
 * The IPv4 total length covers the header and ends within the frame. Only for a packet that is linear
 * as a whole (XDP): the linear part of a GSO or GRO skb ends before its payload does.
 */
static __always_inline int check_ipv4_length(const struct cursor *c, const struct iphdr *ip)
{
	__u32 total = be16_length(ip->tot_len);

	if (total < ip->ihl * 4 || (void *)ip + total > c->end)
		return -1;
	return 0;
}

/* Where an IPv4 packet ends by its total length (checked first by check_ipv4_length). */
static __always_inline void *ipv4_end(const struct iphdr *ip)
{
	return (void *)ip + be16_length(ip->tot_len);
}

static __always_inline int is_fragment(const struct iphdr *ip)
{
	return (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) != 0;
}

static __always_inline int is_later_fragment(const struct iphdr *ip)
{
	return (ip->frag_off & bpf_htons(IP_OFFSET)) != 0;
}

/* `size` bytes at the cursor, inside both the packet and ip's total length; NULL when they are not. */
static __always_inline void *ipv4_payload(const struct cursor *c, const struct iphdr *ip, __u32 size)
{
	void *hdr = c->pos;

	if (hdr + size > c->end || hdr + size > ipv4_end(ip))
		return NULL;
	return hdr;
}

/* A TCP header in the payload of ip, with a data offset that covers it and options that fit ip. */
static __always_inline int parse_tcphdr(struct cursor *c, const struct iphdr *ip, struct tcphdr **th)
{
	struct tcphdr *hdr = ipv4_payload(c, ip, sizeof(struct tcphdr));

	if (!hdr || hdr->doff < 5 || (void *)hdr + hdr->doff * 4 > ipv4_end(ip))
		return -1;
	*th = hdr;
	c->pos = (void *)hdr + hdr->doff * 4;
	return 0;
}

/* A UDP header in the payload of ip, with a length field that covers it and ends within ip. */
static __always_inline int parse_udphdr(struct cursor *c, const struct iphdr *ip, struct udphdr **uh)
{
	struct udphdr *hdr = ipv4_payload(c, ip, sizeof(struct udphdr));

	if (!hdr || be16_length(hdr->len) < sizeof(*hdr) || (void *)hdr + be16_length(hdr->len) > ipv4_end(ip))
		return -1;
	*uh = hdr;
	c->pos = hdr + 1;
	return 0;
}

/* The 8-byte ICMP header in the payload of ip. */
static __always_inline int parse_icmphdr(struct cursor *c, const struct iphdr *ip, struct icmphdr **ih)
{
	struct icmphdr *hdr = ipv4_payload(c, ip, sizeof(struct icmphdr));

	if (!hdr)
		return -1;
	*ih = hdr;
	c->pos = hdr + 1;
	return 0;
}

/* A plain RFC 2784 GRE header (no checksum, key or sequence number, version 0) carrying IPv4. */
static __always_inline int parse_grehdr(struct cursor *c, struct gre_base **gre)
{
	struct gre_base *hdr = c->pos;

	if ((void *)(hdr + 1) > c->end)
		return -1;
	if (hdr->flags != 0 || hdr->protocol != bpf_htons(ETH_P_IP))
		return -1;
	*gre = hdr;
	c->pos = hdr + 1;
	return 0;
}

#endif
