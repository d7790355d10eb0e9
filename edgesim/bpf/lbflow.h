/* Pure helpers of the L4 load balancer (no maps): the flow hash, the local-socket test and the IP-in-IP
 * header. The map-using decisions live in ddos.c, where bcc rewrites map calls. */
#ifndef EDGESIM_LBFLOW_H
#define EDGESIM_LBFLOW_H

#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>

#include "parsing.h"

/* Every edge must hash a flow to the same bucket: a fixed seed, no per-boot randomness. */
#define FLOW_HASH_SEED 0x5eed4ed6

static __always_inline u32 flow_rol(u32 word, u32 shift)
{
    return (word << shift) | (word >> ((-shift) & 31));
}

/* jhash_3words of the kernel's linux/jhash.h: the 5-tuple (TCP only) in three words. */
static __always_inline u32 flow_hash(u32 saddr, u32 daddr, u32 ports)
{
    u32 a = saddr + 0xdeadbeef + (3 << 2) + FLOW_HASH_SEED;
    u32 b = daddr + 0xdeadbeef + (3 << 2) + FLOW_HASH_SEED;
    u32 c = ports + 0xdeadbeef + (3 << 2) + FLOW_HASH_SEED;
    c ^= b; c -= flow_rol(b, 14);
    a ^= c; a -= flow_rol(c, 11);
    b ^= a; b -= flow_rol(a, 25);
    c ^= b; c -= flow_rol(b, 16);
    a ^= c; a -= flow_rol(c, 4);
    b ^= a; b -= flow_rol(a, 14);
    c ^= b; c -= flow_rol(b, 24);
    return c;
}

/* Whether this namespace holds a connected socket for the packet's flow (a listener does not count): the
 * edge holding the socket is where an established connection must go, whatever the table says now. */
static __always_inline int has_socket(struct xdp_md *ctx, struct iphdr *ip, struct tcphdr *th)
{
    struct bpf_sock_tuple tuple = {};
    tuple.ipv4.saddr = ip->saddr;
    tuple.ipv4.daddr = ip->daddr;
    tuple.ipv4.sport = th->source;
    tuple.ipv4.dport = th->dest;
    struct bpf_sock *sk = bpf_sk_lookup_tcp(ctx, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
    if (!sk)
        return 0;
    int connected = sk->state != BPF_TCP_LISTEN;
    bpf_sk_release(sk);
    return connected;
}

/* Fill the outer IPv4 header of an IP-in-IP packet (RFC 2003) around an inner packet of inner_len bytes. */
static __always_inline void write_outer_ip(struct iphdr *outer, u32 saddr, u32 daddr, u16 inner_len, u8 ttl)
{
    outer->version = 4;
    outer->ihl = 5;
    outer->tos = 0;
    outer->tot_len = bpf_htons(inner_len + sizeof(struct iphdr));
    outer->id = 0;
    outer->frag_off = bpf_htons(0x4000); /* don't fragment: the backplane's MTU leaves room for it */
    outer->ttl = ttl;
    outer->protocol = IPPROTO_IPIP;
    outer->saddr = saddr;
    outer->daddr = daddr;
    outer->check = 0;
    outer->check = fold_csum(bpf_csum_diff(0, 0, (void *)outer, sizeof(*outer), 0));
}

#endif
