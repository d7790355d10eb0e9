/* The edge's XDP programs, compiled as one bcc module so that they share their maps:
 *
 * xdp_ddos — volumetric DoS mitigation, the first program of the chain on the edge's uplink.
 *   Order: frame and header sanity (malformed, IP options, fragments) → allowlist (skips all drops) →
 *   source-prefix drops → protocol/port drops → per-source rate limits (SYN, UDP) → SYN cookies for
 *   protected VIP:ports → per-VIP cap → pass to the next program of the chain (the L4 load balancer),
 *   or to the stack when there is none. Every verdict is counted in `stats`, per rule.
 * xdp_lb — the L4 load balancer, at chain[CHAIN_NEXT]: sends a balanced VIP's packets to the edge that
 *   owns their flow (Maglev table, Unimog-style daisy chain to the previous owner), IP-in-IP over the
 *   backplane, or lets them through here.
 * xdp_backplane — on the backplane interface: checks and strips the IP-in-IP header, then runs the same
 *   DoS pipeline and LB on the inner packet, as if it had arrived from the router.
 *
 * A protected VIP's mid-flow packet that this edge does not know (no cookie-proven flow, no valid cookie)
 * is not dropped by the DoS stage when the LB balances that VIP: the LB drops it only if the flow belongs
 * here; otherwise the owner edge, which holds the connection, applies the same checks. */
#include <uapi/linux/bpf.h>

#include "consts.h"
#include "structs.h"
#include "maps.h"
#include "parsing.h"
#include "ratelimit.h"
#include "syncookie.h"
#include "lbflow.h"

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

static __always_inline struct lb_scratch *handover(void)
{
    u32 zero = 0;
    return lb_handover.lookup(&zero);
}

/* A packet the DoS stage deferred to the LB, which found that it belongs here: the cookie check's drop. */
static __always_inline int drop_unverified(struct lb_scratch *sc, u64 bytes)
{
    count(sc->drop_slot, bytes);
    return drop(SLOT_COOKIE_ACK_BAD, bytes);
}

static __always_inline int pass(struct xdp_md *ctx, u64 bytes)
{
    count(SLOT_PASS, bytes);
    chain.call(ctx, CHAIN_NEXT);
    /* No program behind this one (or the tail call failed): the stack gets the packet, unless the cookie
     * check was only deferred to an LB that is not there. */
    struct lb_scratch *sc = handover();
    if (sc && sc->unverified)
        return drop_unverified(sc, bytes);
    return XDP_PASS;
}

/* Whether the LB is on and balances this TCP VIP:port (its owner may then be another edge). */
static __always_inline int balanced(u32 vip, u16 port)
{
    u32 zero = 0;
    struct lb_config *cfg = lb_config.lookup(&zero);
    if (!cfg || !cfg->enabled)
        return 0;
    struct lb_vip_key key = {.vip = vip, .port = port, .proto = IPPROTO_TCP};
    return lb_vips.lookup(&key) != NULL;
}

/* SYN cookie handling for TCP to a protected VIP:port: returns -1 when the packet is not for one. */
static __always_inline int protect_handshake(struct xdp_md *ctx, struct packet *pkt, struct tcphdr *th,
                                              u64 bytes, struct lb_scratch *sc)
{
    struct cookie_key ck = {.vip = pkt->ip->daddr, .port = pkt->dport};
    u32 *rule = cookie_vips.lookup(&ck);
    if (!rule)
        return -1;
    if (th->syn && !th->ack) {
        if (pkt->ip->ihl != 5 || pkt->ip_len != sizeof(struct iphdr) + th->doff * 4)
            return drop(*rule, bytes); /* SYN with options or payload: not answered, not passed */
        /* A SYN starts a new connection: forget an old one on the same 4-tuple (a reused source port),
         * so that its handshake ACK is checked for a cookie instead of passing as an established flow. */
        struct flow_key old = {
            .saddr = pkt->ip->saddr, .daddr = pkt->ip->daddr, .sport = pkt->sport, .dport = pkt->dport};
        cookie_flows.delete(&old);
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
        sc->new_flow = 1;
        return -1;
    }
    if (balanced(pkt->ip->daddr, pkt->dport)) {
        /* Maybe a connection another edge holds (the router's ECMP moved it here): the LB decides. */
        sc->unverified = 1;
        sc->drop_slot = *rule;
        return -1;
    }
    count(*rule, bytes);
    return drop(SLOT_COOKIE_ACK_BAD, bytes);
}

/* The DoS pipeline for a packet that came in directly (hop HOP_DIRECT) or over the backplane. */
static __always_inline int ddos(struct xdp_md *ctx, u32 hop)
{
    struct lb_scratch *sc = handover();
    if (!sc)
        return XDP_ABORTED;
    sc->hop = hop;
    sc->new_flow = 0;
    sc->unverified = 0;
    sc->drop_slot = 0;
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
        int verdict = protect_handshake(ctx, &pkt, th, bytes, sc);
        if (verdict >= 0)
            return verdict;
    }

    over = vip_over_cap(pkt.ip->daddr, now);
    if (over)
        return drop(over, bytes);
    return pass(ctx, bytes);
}

int xdp_ddos(struct xdp_md *ctx)
{
    return ddos(ctx, HOP_DIRECT);
}

/* Where a balanced flow's packet goes: an edge index, or self. */
static __always_inline u32 choose(struct lb_config *cfg, struct lb_scratch *sc, struct iphdr *ip,
                                  struct tcphdr *th)
{
    if (sc->hop >= HOP_SECOND)
        return cfg->self;
    u32 hash = flow_hash(ip->saddr, ip->daddr, ((u32)th->source << 16) | th->dest);
    u32 index = (cfg->active ? RING_SIZE : 0) + hash % RING_SIZE;
    struct lb_bucket *bucket = lb_ring.lookup(&index);
    if (!bucket)
        return cfg->self;
    /* A connection being opened (SYN, or the ACK of a SYN cookie) goes to the bucket's owner. */
    if (sc->new_flow || (th->syn && !th->ack))
        return bucket->first;
    /* A mid-flow packet with no socket here: to the owner, and from the owner on to the previous owner,
     * which holds the connections opened before the bucket moved. A first hop whose own table names
     * another owner (the tables of two edges briefly disagree) passes it on to that owner instead. */
    if (bucket->first != cfg->self)
        return bucket->first;
    return bucket->second;
}

/* Encapsulate in IP-in-IP from edge `me` to edge `dst` and send it out of the backplane interface. Once
 * the head moved the packet is no longer what the caller parsed: always returns the final verdict. */
static __always_inline int forward(struct xdp_md *ctx, struct lb_config *cfg, struct lb_edge *me,
                                   struct lb_edge *dst, u32 hop, u64 bytes)
{
    if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr)))
        return XDP_ABORTED;
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *outer = data + sizeof(*eth);
    struct iphdr *inner = (void *)(outer + 1);
    if ((void *)(inner + 1) > data_end)
        return XDP_ABORTED;
    __builtin_memcpy(eth->h_dest, dst->mac, ETH_ALEN);
    __builtin_memcpy(eth->h_source, me->mac, ETH_ALEN);
    eth->h_proto = bpf_htons(ETH_P_IP);
    u8 ttl = hop == HOP_DIRECT ? ENCAP_TTL_FIRST : ENCAP_TTL_SECOND;
    write_outer_ip(outer, me->addr, dst->addr, bpf_ntohs(inner->tot_len), ttl);
    count(hop == HOP_DIRECT ? SLOT_LB_FORWARDED : SLOT_LB_CHAINED, bytes);
    return bpf_redirect(cfg->ifindex, 0);
}

int xdp_lb(struct xdp_md *ctx)
{
    struct packet pkt = {.data = (void *)(long)ctx->data, .data_end = (void *)(long)ctx->data_end};
    u64 bytes = pkt.data_end - pkt.data;
    struct lb_scratch *sc = handover();
    if (!sc)
        return XDP_ABORTED;
    u16 proto;
    struct tcphdr *th = NULL;
    /* The DoS stage checked these headers already; parsed again because the verifier must see it. */
    if (parse_eth(&pkt, &proto) < 0 || proto != ETH_P_IP || parse_ipv4(&pkt) < 0)
        return sc->unverified ? drop_unverified(sc, bytes) : XDP_PASS;
    if (pkt.ip->protocol != IPPROTO_TCP || is_later_fragment(pkt.ip) || parse_tcp(&pkt, &th) < 0)
        return sc->unverified ? drop_unverified(sc, bytes) : XDP_PASS;
    u32 zero = 0;
    struct lb_config *cfg = lb_config.lookup(&zero);
    if (!cfg || !balanced(pkt.ip->daddr, pkt.dport))
        return sc->unverified ? drop_unverified(sc, bytes) : XDP_PASS;
    int here = has_socket(ctx, pkt.ip, th);
    /* A handshake's ACK (or the first data after it, same ACK number) whose 4-tuple the DoS stage
     * already knew from an older connection (source ports get reused) is still a new connection: it goes
     * to the bucket's owner, never down the daisy chain to a drained edge. */
    if (!here && !sc->new_flow && th->ack && !th->syn && !th->rst &&
        bpf_tcp_raw_check_syncookie_ipv4(pkt.ip, th) == 0)
        sc->new_flow = 1;
    if (!here) {
        u32 target = choose(cfg, sc, pkt.ip, th);
        u32 self = cfg->self;
        struct lb_edge *dst = lb_edges.lookup(&target);
        struct lb_edge *me = lb_edges.lookup(&self);
        /* An edge missing from the table (being removed right now) cannot take it: keep it here. */
        if (target != self && dst && me && dst->present && me->present)
            return forward(ctx, cfg, me, dst, sc->hop, bytes);
    }
    if (sc->unverified && !here)
        return drop_unverified(sc, bytes);
    count(SLOT_LB_LOCAL, bytes);
    return XDP_PASS;
}

/* Encapsulated packets from other edges: accepted only when well-formed, from a known edge, to this edge,
 * with a hop budget left; everything else on the backplane that is not IP-in-IP (ARP, health checks)
 * goes to the stack. */
int xdp_backplane(struct xdp_md *ctx)
{
    struct packet pkt = {.data = (void *)(long)ctx->data, .data_end = (void *)(long)ctx->data_end};
    u64 bytes = pkt.data_end - pkt.data;
    u16 proto;
    if (parse_eth(&pkt, &proto) < 0)
        return drop(SLOT_MALFORMED, bytes);
    if (proto != ETH_P_IP)
        return XDP_PASS;
    if (parse_ipv4(&pkt) < 0)
        return drop(SLOT_MALFORMED, bytes);
    struct iphdr *outer = pkt.ip;
    if (outer->protocol != IPPROTO_IPIP)
        return XDP_PASS;
    u32 zero = 0;
    struct lb_config *cfg = lb_config.lookup(&zero);
    if (!cfg || !cfg->enabled)
        return drop(SLOT_LB_BAD_ENCAP, bytes);
    u32 self = cfg->self;
    struct lb_edge *me = lb_edges.lookup(&self);
    u32 saddr = outer->saddr;
    if (!me || outer->daddr != me->addr || !lb_peers.lookup(&saddr))
        return drop(SLOT_LB_BAD_ENCAP, bytes);
    if (outer->ihl != 5 || is_fragment(outer))
        return drop(SLOT_LB_BAD_ENCAP, bytes);
    if (outer->ttl != ENCAP_TTL_FIRST && outer->ttl != ENCAP_TTL_SECOND)
        return drop(SLOT_LB_BAD_ENCAP, bytes);
    struct iphdr *inner = (void *)(outer + 1);
    if ((void *)(inner + 1) > pkt.data_end || inner->version != 4 || inner->ihl < 5)
        return drop(SLOT_LB_BAD_ENCAP, bytes);
    if (bpf_ntohs(inner->tot_len) + sizeof(struct iphdr) != pkt.ip_len)
        return drop(SLOT_LB_BAD_ENCAP, bytes);
    u32 hop = outer->ttl == ENCAP_TTL_FIRST ? HOP_FIRST : HOP_SECOND;
    struct ethhdr eth;
    __builtin_memcpy(&eth, pkt.eth, sizeof(eth));
    if (bpf_xdp_adjust_head(ctx, (int)sizeof(struct iphdr)))
        return XDP_ABORTED;
    void *data = (void *)(long)ctx->data;
    if (data + sizeof(eth) > (void *)(long)ctx->data_end)
        return XDP_ABORTED;
    __builtin_memcpy(data, &eth, sizeof(eth));
    count(SLOT_LB_RECEIVED, bytes);
    return ddos(ctx, hop);
}
