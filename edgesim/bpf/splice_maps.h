/* SPDX-License-Identifier: GPL-2.0 */
/* Maps of the TCP proxy's splice: the sockets, what the proxy asks of each, what happened to each. */
#ifndef EDGESIM_SPLICE_MAPS_H
#define EDGESIM_SPLICE_MAPS_H

#include "splice_consts.h"
#include "splice_structs.h"

/* Cookie -> the socket: the stream verdict program is attached to this map, so every socket in it runs it. */
BPF_SOCKHASH(splice_sockets, __u64, SPLICE_MAX_SOCKETS);

/* Cookie -> what the proxy asks. Not preallocated: an update is a new element freed after the readers are
 * done (RCU), so the program never reads a value half overwritten. */
BPF_F_TABLE("hash", __u64, struct splice_link, splice_links, SPLICE_MAX_SOCKETS, BPF_F_NO_PREALLOC);

/* Cookie -> the side's counters and mode; one writer: the program, on the socket's own receive path. */
BPF_HASH(splice_sides, __u64, struct splice_side, SPLICE_MAX_SOCKETS);

/* SPLICE_* totals, per CPU (readers sum the CPUs). */
BPF_PERCPU_ARRAY(splice_totals, __u64, SPLICE_TOTALS);

#endif
