/* SPDX-License-Identifier: GPL-2.0 */
/* Constants of the TCP proxy's splice (BPF_PROG_TYPE_SK_SKB stream verdict): sizes, modes, counter slots. */
#ifndef EDGESIM_SPLICE_CONSTS_H
#define EDGESIM_SPLICE_CONSTS_H

/* Sockets spliced at once (two per proxied connection); the proxy copies in user space beyond that. */
#ifndef SPLICE_MAX_SOCKETS
#define SPLICE_MAX_SOCKETS 8192
#endif

/* A side's mode: its data goes to its own receive queue (the proxy reads and copies it), or to its peer. */
#define SPLICE_MODE_COPY 0
#define SPLICE_MODE_SPLICE 1

/* Slots of splice_totals (each counts bytes, except where it says segments or events). */
#define SPLICE_PASSED_BYTES 0     /* left in the socket's own queue for the proxy to copy */
#define SPLICE_REDIRECTED_BYTES 1 /* moved to the peer socket's send side by the kernel */
#define SPLICE_REDIRECTED_SEGS 2  /* segments (skbs) moved so */
#define SPLICE_HANDOVERS 3        /* events: a side went from copy to splice */
#define SPLICE_PAUSES 4           /* events: a side went back to copy, its peer's budget spent */
#define SPLICE_REDIRECT_FAILED 5  /* segments the kernel could not redirect (the peer socket is gone) */
#define SPLICE_UNKNOWN_SOCKET 6   /* segments of a socket the proxy had not described: left to it */
#define SPLICE_EMPTY_DROPPED 7    /* segments without data (a lone FIN): dropped, their flag is TCP's */
#define SPLICE_TOTALS 8

#endif
