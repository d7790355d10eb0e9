/* Constants shared by the XDP programs and, by the same names, by edgesim/mitigation/layout.py. */
#ifndef EDGESIM_CONSTS_H
#define EDGESIM_CONSTS_H

/* Counter slots: one per rule. The first slots are the program's own verdicts, user rules follow. */
#define MAX_SLOTS 132096  /* room for 131,072 rules, each with its own counters */
#define SLOT_PASS 0            /* passed to the rest of the chain */
#define SLOT_MALFORMED 1       /* truncated or inconsistent headers: dropped, never passed half-parsed */
#define SLOT_NOT_IPV4 2        /* ARP and other non-IPv4 frames: passed untouched */
#define SLOT_COOKIE_SENT 3     /* SYN to a protected VIP answered with a SYN cookie (XDP_TX) */
#define SLOT_COOKIE_ACK_OK 4   /* ACK carrying a valid cookie: the flow is remembered and passed */
#define SLOT_COOKIE_ACK_BAD 5  /* non-SYN packet of an unknown flow without a valid cookie: dropped */
#define SLOT_COOKIE_FLOW 6     /* packet of a flow that completed the cookie handshake: passed */
#define SLOT_LB_LOCAL 7        /* L4 LB: packet to a balanced VIP handled by this edge */
#define SLOT_LB_FORWARDED 8    /* L4 LB: sent to the owner edge over the backplane (first hop) */
#define SLOT_LB_CHAINED 9      /* L4 LB: sent on to the bucket's previous owner (daisy chain, second hop) */
#define SLOT_LB_RECEIVED 10    /* L4 LB: encapsulated packet from another edge, decapsulated */
#define SLOT_LB_BAD_ENCAP 11   /* L4 LB: malformed or unexpected IP-in-IP on the backplane: dropped */
#define FIRST_RULE_SLOT 16

/* Source-prefix rule tables (allow and drop) hold up to this many prefixes each. */
#define MAX_PREFIXES 131072

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

/* A SYN-ACK carries one TCP option, the MSS: 20 + 4 bytes of TCP header. */
#define SYNACK_TCP_LEN 24
#define TCP_MAX_HEADER 60

/* L4 load balancer: two lookup tables of RING_SIZE buckets (a prime, as Maglev wants); the agent fills
 * the inactive one and then flips `active`, so a packet never sees half a table. */
#define RING_SIZE 65537
#define MAX_EDGES 64
/* Where a packet comes from: the router, or another edge over the backplane as the bucket's first or
 * second (daisy-chained) hop. A second hop is never forwarded again, so a packet crosses the backplane at
 * most twice whatever the tables say. */
#define HOP_DIRECT 0
#define HOP_FIRST 1
#define HOP_SECOND 2
/* The outer IPv4 header's TTL carries the hops a forwarded packet may still take. */
#define ENCAP_TTL_FIRST 2
#define ENCAP_TTL_SECOND 1

#endif
