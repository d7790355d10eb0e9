/* Bounds-checked header parsing for XDP. Every helper returns -1 when a header does not fit the packet
 * or is inconsistent, so a caller never reads past what it checked. */
#ifndef EDGESIM_PARSING_H
#define EDGESIM_PARSING_H

#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/icmp.h>

#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF

struct packet {
    void *data;
    void *data_end;
    struct ethhdr *eth;
    struct iphdr *ip;
    void *l4;          /* start of the transport header, or NULL for non-first fragments */
    u32 ip_len;        /* the IPv4 total length */
    u16 sport;         /* host byte order; 0 when the protocol has no ports */
    u16 dport;
};

static __always_inline int parse_eth(struct packet *pkt, u16 *proto)
{
    struct ethhdr *eth = pkt->data;
    if ((void *)(eth + 1) > pkt->data_end)
        return -1;
    pkt->eth = eth;
    *proto = bpf_ntohs(eth->h_proto);
    return 0;
}

/* IPv4 header: version 4, IHL ≥ 5 and within the packet, total length covering the header and not
 * longer than the frame. */
static __always_inline int parse_ipv4(struct packet *pkt)
{
    struct iphdr *ip = (void *)(pkt->eth + 1);
    if ((void *)(ip + 1) > pkt->data_end)
        return -1;
    if (ip->version != 4 || ip->ihl < 5)
        return -1;
    u32 hlen = ip->ihl * 4;
    if ((void *)ip + hlen > pkt->data_end)
        return -1;
    u32 total = bpf_ntohs(ip->tot_len);
    if (total < hlen || (void *)ip + total > pkt->data_end)
        return -1;
    pkt->ip = ip;
    pkt->ip_len = total;
    pkt->l4 = (void *)ip + hlen;
    return 0;
}

static __always_inline int is_fragment(struct iphdr *ip)
{
    return (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) != 0;
}

static __always_inline int is_later_fragment(struct iphdr *ip)
{
    return (ip->frag_off & bpf_htons(IP_OFFSET)) != 0;
}

/* TCP header: fixed part within the IP payload and a data offset of at least 5 words that fits too. */
static __always_inline int parse_tcp(struct packet *pkt, struct tcphdr **out)
{
    struct tcphdr *th = pkt->l4;
    void *ip_end = (void *)pkt->ip + pkt->ip_len;
    if ((void *)(th + 1) > pkt->data_end || (void *)(th + 1) > ip_end)
        return -1;
    u32 hlen = th->doff * 4;
    if (hlen < sizeof(*th) || (void *)th + hlen > ip_end)
        return -1;
    pkt->sport = bpf_ntohs(th->source);
    pkt->dport = bpf_ntohs(th->dest);
    *out = th;
    return 0;
}

/* UDP header within the IP payload, with a length field that agrees with it. */
static __always_inline int parse_udp(struct packet *pkt)
{
    struct udphdr *uh = pkt->l4;
    void *ip_end = (void *)pkt->ip + pkt->ip_len;
    if ((void *)(uh + 1) > pkt->data_end || (void *)(uh + 1) > ip_end)
        return -1;
    u32 len = bpf_ntohs(uh->len);
    if (len < sizeof(*uh) || (void *)uh + len > ip_end)
        return -1;
    pkt->sport = bpf_ntohs(uh->source);
    pkt->dport = bpf_ntohs(uh->dest);
    return 0;
}

/* ICMP: the 8-byte header must be there. */
static __always_inline int parse_icmp(struct packet *pkt)
{
    struct icmphdr *ih = pkt->l4;
    if ((void *)(ih + 1) > pkt->data_end || (void *)(ih + 1) > (void *)pkt->ip + pkt->ip_len)
        return -1;
    return 0;
}

/* Fold a 32-bit one's-complement sum (from bpf_csum_diff) into a 16-bit checksum. */
static __always_inline u16 fold_csum(u64 sum)
{
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return ~sum;
}

#endif
