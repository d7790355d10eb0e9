/* SYN cookies from XDP (the kernel's bpf_tcp_raw_*_syncookie_ipv4 helpers, as in its xdp_synproxy
 * selftest): a SYN to a protected VIP:port is answered with a SYN-ACK whose sequence number is the cookie,
 * from the packet itself (XDP_TX), so a spoofed SYN never creates state. The client's ACK is checked
 * here and passed to the stack, where nftables' synproxy completes the connection to the local server. */
#ifndef EDGESIM_SYNCOOKIE_H
#define EDGESIM_SYNCOOKIE_H

#define ETH_IP_LEN (sizeof(struct ethhdr) + sizeof(struct iphdr))

struct pseudo_header {
    u32 saddr;
    u32 daddr;
    u8 zero;
    u8 proto;
    u16 len;
};

static __always_inline void swap_mac(struct ethhdr *eth)
{
    u8 tmp[ETH_ALEN];
    __builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
    __builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
    __builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
}

/* Turn the SYN in the frame into the SYN-ACK carrying the cookie. The caller checked: IPv4 without
 * options, TCP, SYN without ACK and without payload. Returns XDP_TX, or a drop/abort verdict. */
static __always_inline int answer_syn(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    /* Make room for a full 60-byte TCP header, so that the helper may read any header length the SYN
     * declares and the verifier can prove it stays inside the packet. */
    int grow = (int)(ETH_IP_LEN + TCP_MAX_HEADER) - (int)(data_end - data);
    if (bpf_xdp_adjust_tail(ctx, grow))
        return XDP_ABORTED;
    data = (void *)(long)ctx->data;
    data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = data + sizeof(*eth);
    struct tcphdr *th = data + ETH_IP_LEN;
    if ((void *)th + TCP_MAX_HEADER > data_end)
        return XDP_ABORTED;
    u32 th_len = th->doff * 4;
    if (th_len < sizeof(*th) || th_len > TCP_MAX_HEADER)
        return XDP_DROP;
    s64 value = bpf_tcp_raw_gen_syncookie_ipv4(ip, th, th_len);
    if (value < 0)
        return XDP_DROP;
    u32 cookie = (u32)value;
    u16 mss = (value >> 32) & 0xffff;
    u32 client_seq = bpf_ntohl(th->seq);

    swap_mac(eth);
    u32 addr = ip->saddr;
    ip->saddr = ip->daddr;
    ip->daddr = addr;
    ip->tos = 0;
    ip->tot_len = bpf_htons(sizeof(*ip) + SYNACK_TCP_LEN);
    ip->id = 0;
    ip->frag_off = bpf_htons(0x4000); /* don't fragment */
    ip->ttl = 64;
    ip->check = 0;
    ip->check = fold_csum(bpf_csum_diff(0, 0, (void *)ip, sizeof(*ip), 0));

    u16 port = th->source;
    th->source = th->dest;
    th->dest = port;
    th->seq = bpf_htonl(cookie);
    th->ack_seq = bpf_htonl(client_seq + 1);
    /* Flags and data offset share a 16-bit word: doff 6, SYN and ACK, everything else clear. */
    *((u16 *)th + 6) = bpf_htons((SYNACK_TCP_LEN / 4) << 12 | 0x12);
    th->window = bpf_htons(65535);
    th->urg_ptr = 0;
    th->check = 0;
    u8 *opt = (u8 *)(th + 1);
    opt[0] = 2; /* MSS */
    opt[1] = 4;
    opt[2] = mss >> 8;
    opt[3] = mss & 0xff;
    struct pseudo_header ph = {
        .saddr = ip->saddr,
        .daddr = ip->daddr,
        .proto = IPPROTO_TCP,
        .len = bpf_htons(SYNACK_TCP_LEN),
    };
    s64 sum = bpf_csum_diff(0, 0, (void *)&ph, sizeof(ph), 0);
    sum = bpf_csum_diff(0, 0, (void *)th, SYNACK_TCP_LEN, sum);
    th->check = fold_csum(sum);

    int shrink = (int)(ETH_IP_LEN + SYNACK_TCP_LEN) - (int)(data_end - data);
    if (bpf_xdp_adjust_tail(ctx, shrink))
        return XDP_ABORTED;
    return XDP_TX;
}

#endif
