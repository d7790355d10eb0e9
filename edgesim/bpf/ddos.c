/* Volumetric DoS mitigation: the first program of every edge's XDP chain, on the edge's uplink.
 *
 * Order: frame and header sanity (malformed, IP options, fragments) → allowlist (skips all drops) →
 * source-prefix drops → protocol/port drops → per-source rate limits (SYN, UDP) → SYN cookies for
 * protected VIP:ports → per-VIP cap → pass to the next program of the chain (the L4 load balancer),
 * or to the stack when there is none. Every verdict is counted in `stats`, per rule. */
#include <uapi/linux/bpf.h>

#include "consts.h"
#include "structs.h"
#include "maps.h"
#include "parsing.h"
#include "ratelimit.h"
#include "syncookie.h"

static __always_inline void count(u32 slot, u64 bytes)
{
    struct counter *c = stats.lookup(&slot);
    if (c) {
        c->packets += 1;
        c->bytes += bytes;
    }
}

static __always_inline int drop(u32 slot, u64 bytes)
{
    count(slot, bytes);
    return XDP_DROP;
}

/* Per-source limit of one kind (RATE_SYN / RATE_UDP); returns the rule's slot when over, else 0. */
static __always_inline u32 source_over_limit(u32 saddr, u32 kind, u64 now)
{
    struct rate_cfg *cfg = rate_limits.lookup(&kind);
    if (!cfg || !cfg->enabled)
        return 0;
    struct rate_key key = {.saddr = saddr, .kind = kind};
    u64 *tat = rate_state.lookup(&key);
    if (!tat) {
        u64 first = now + cfg->interval_ns;
        /* NOEXIST: when two CPUs race on a new source, one insert wins and the other looks it up. */
        if (rate_state.insert(&key, &first) == 0)
            return 0;
        tat = rate_state.lookup(&key);
        if (!tat)
            return 0;
    }
    return gcra_conforms(tat, now, cfg->interval_ns, cfg->tolerance_ns) ? 0 : cfg->slot;
}

/* Per-VIP cap; returns the rule's slot when the VIP is over its rate, else 0. */
static __always_inline u32 vip_over_cap(u32 daddr, u64 now)
{
    struct vip_cap *cap = vip_caps.lookup(&daddr);
    if (!cap)
        return 0;
    return gcra_conforms(&cap->tat, now, cap->interval_ns, cap->tolerance_ns) ? 0 : cap->slot;
}

static __always_inline int pass(struct xdp_md *ctx, u64 bytes)
{
    count(SLOT_PASS, bytes);
    chain.call(ctx, CHAIN_NEXT);
    /* No program behind this one (or the tail call failed): the stack gets the packet. */
    return XDP_PASS;
}

/* SYN cookie handling for TCP to a protected VIP:port: returns -1 when the packet is not for one. */
static __always_inline int protect_handshake(struct xdp_md *ctx, struct packet *pkt, struct tcphdr *th,
                                              u64 bytes)
{
    struct cookie_key ck = {.vip = pkt->ip->daddr, .port = pkt->dport};
    u32 *rule = cookie_vips.lookup(&ck);
    if (!rule)
        return -1;
    if (th->syn && !th->ack) {
        if (pkt->ip->ihl != 5 || pkt->ip_len != sizeof(struct iphdr) + th->doff * 4)
            return drop(*rule, bytes); /* SYN with options or payload: not answered, not passed */
        count(*rule, bytes);
        count(SLOT_COOKIE_SENT, bytes);
        return answer_syn(ctx);
    }
    struct flow_key fk = {
        .saddr = pkt->ip->saddr, .daddr = pkt->ip->daddr, .sport = pkt->sport, .dport = pkt->dport};
    u64 now = bpf_ktime_get_ns();
    u64 *seen = cookie_flows.lookup(&fk);
    if (seen) {
        *seen = now;
        count(SLOT_COOKIE_FLOW, bytes);
        return -1;
    }
    if (th->ack && !th->syn && !th->rst && bpf_tcp_raw_check_syncookie_ipv4(pkt->ip, th) == 0) {
        cookie_flows.update(&fk, &now);
        count(SLOT_COOKIE_ACK_OK, bytes);
        return -1;
    }
    count(*rule, bytes);
    return drop(SLOT_COOKIE_ACK_BAD, bytes);
}

int xdp_ddos(struct xdp_md *ctx)
{
    struct packet pkt = {.data = (void *)(long)ctx->data, .data_end = (void *)(long)ctx->data_end};
    u64 bytes = pkt.data_end - pkt.data;
    u16 proto;
    if (parse_eth(&pkt, &proto) < 0)
        return drop(SLOT_MALFORMED, bytes);
    if (proto != ETH_P_IP) {
        count(SLOT_NOT_IPV4, bytes);
        return XDP_PASS;
    }
    if (parse_ipv4(&pkt) < 0)
        return drop(SLOT_MALFORMED, bytes);

    u32 zero = 0;
    struct config *cfg = config.lookup(&zero);
    if (cfg && cfg->ip_options_slot && pkt.ip->ihl > 5)
        return drop(cfg->ip_options_slot, bytes);
    if (cfg && cfg->fragments_slot && is_fragment(pkt.ip))
        return drop(cfg->fragments_slot, bytes);

    struct lpm_v4_key src = {.prefixlen = 32, .addr = pkt.ip->saddr};
    u32 *allowed = allow_src.lookup(&src);
    if (allowed) {
        count(*allowed, bytes);
        return pass(ctx, bytes);
    }
    u32 *blocked = drop_src.lookup(&src);
    if (blocked)
        return drop(*blocked, bytes);

    /* Later fragments carry no transport header: only the rules above apply to them. */
    struct tcphdr *th = NULL;
    u8 l4 = pkt.ip->protocol;
    if (!is_later_fragment(pkt.ip)) {
        if (l4 == IPPROTO_TCP) {
            if (parse_tcp(&pkt, &th) < 0)
                return drop(SLOT_MALFORMED, bytes);
        } else if (l4 == IPPROTO_UDP) {
            if (parse_udp(&pkt) < 0)
                return drop(SLOT_MALFORMED, bytes);
        } else if (l4 == IPPROTO_ICMP) {
            if (parse_icmp(&pkt) < 0)
                return drop(SLOT_MALFORMED, bytes);
        }
    }

    if (pkt.sport || pkt.dport) {
        struct port_key pk = {.proto = l4, .side = SIDE_SRC, .port = pkt.sport};
        u32 *rule = port_rules.lookup(&pk);
        if (rule)
            return drop(*rule, bytes);
        pk.side = SIDE_DST;
        pk.port = pkt.dport;
        rule = port_rules.lookup(&pk);
        if (rule)
            return drop(*rule, bytes);
    }

    u64 now = bpf_ktime_get_ns();
    u32 over = 0;
    if (th && th->syn && !th->ack)
        over = source_over_limit(pkt.ip->saddr, RATE_SYN, now);
    else if (l4 == IPPROTO_UDP)
        over = source_over_limit(pkt.ip->saddr, RATE_UDP, now);
    else if (l4 == IPPROTO_ICMP)
        over = source_over_limit(pkt.ip->saddr, RATE_ICMP, now);
    if (over)
        return drop(over, bytes);

    if (th) {
        int verdict = protect_handshake(ctx, &pkt, th, bytes);
        if (verdict >= 0)
            return verdict;
    }

    over = vip_over_cap(pkt.ip->daddr, now);
    if (over)
        return drop(over, bytes);
    return pass(ctx, bytes);
}
