/* SPDX-License-Identifier: GPL-2.0 */
/* Constants of the DoS program; edgesim/mitigation/layout.py mirrors them by the same names. */
#ifndef EDGESIM_DDOS_CONSTS_H
#define EDGESIM_DDOS_CONSTS_H

/*
 * Counter slots of the `stats` map: one per rule. The first slots are the XDP chain's own verdicts (the
 * load balancer's are in lb_consts.h), user rules follow from FIRST_RULE_SLOT.
 */
#define MAX_SLOTS 132096	/* room for 131,072 rules, each with its own counters */
#define SLOT_PASS 0		/* passed to the rest of the chain */
#define SLOT_MALFORMED 1	/* truncated or inconsistent headers: dropped, never passed half-parsed */
#define SLOT_NOT_IPV4 2		/* ARP and other non-IPv4 frames: passed untouched */
#define SLOT_COOKIE_SENT 3	/* SYN to a protected VIP answered with a SYN cookie (XDP_TX) */
#define SLOT_COOKIE_ACK_OK 4	/* ACK carrying a valid cookie: the flow is remembered and passed */
#define SLOT_COOKIE_ACK_BAD 5	/* non-SYN packet of an unknown flow without a valid cookie: dropped */
#define SLOT_COOKIE_FLOW 6	/* packet of a flow that completed the cookie handshake: passed */
#define SLOT_CONTROL 12		/* the lab's own control traffic (BGP, BFD with the router): passed first */
#define FIRST_RULE_SLOT 16

/*
 * Source-prefix rules (allow and drop together) hold up to this many prefixes. They are kept twice, in two
 * generations: the writer fills the one not in force, then switches (see src_rules in ddos_maps.h).
 */
#define MAX_PREFIXES 131072
#define SRC_GENERATIONS 2
#define SRC_LENGTHS 33		/* prefix lengths /0 to /32 */

/* What a source-prefix entry decides. */
#define SRC_DROP 0
#define SRC_ALLOW 1

/* Per-source rate limits, by packet kind. */
#define RATE_SYN 0
#define RATE_UDP 1
#define RATE_ICMP 2
#define RATE_KINDS 3

/* Port rules match the source or the destination port. */
#define SIDE_SRC 0
#define SIDE_DST 1

/* The prog-array slot of the program that runs after this one (the L4 load balancer). */
#define CHAIN_NEXT 0
#define CHAIN_SIZE 4

/*
 * The lab's control traffic on the uplink: BGP (TCP 179) and single-hop BFD (UDP 3784 control, 3785 echo)
 * between the router and the edge, both sent with TTL 255 (GTSM, RFC 5082; RFC 5881 for BFD). A packet the
 * router forwarded, whatever source it claims, arrives with a smaller TTL and meets every rule.
 */
#define BGP_PORT 179
#define BFD_CONTROL_PORT 3784
#define BFD_ECHO_PORT 3785
#define GTSM_TTL 255
#define MAX_CONTROL_PEERS 64

/* A SYN-ACK carries one TCP option, the MSS: 20 + 4 bytes of TCP header. */
#define SYNACK_TCP_LEN 24
#define TCP_MAX_HEADER 60

#endif
