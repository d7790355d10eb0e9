/* SPDX-License-Identifier: GPL-2.0 */
/* Maps of the DNS socket filter; the DNS service fills sf_config and reads the counters. */
#ifndef EDGESIM_SOCKFILTER_MAPS_H
#define EDGESIM_SOCKFILTER_MAPS_H

#include "sockfilter_consts.h"
#include "sockfilter_structs.h"

/* The per-source limit in force (one slot), written by the service when the limit is set. */
BPF_ARRAY(sf_config, struct sf_config, 1);

/* Source address (network order) -> its bucket and counters; least recently seen sources go first. */
BPF_TABLE("lru_hash", __be32, struct sf_source, sf_sources, SF_MAX_SOURCES);

/* Lab-wide counters of this socket (SF_TOTAL_*), shared by every CPU: updated with atomic adds. */
BPF_ARRAY(sf_totals, __u64, SF_TOTALS);

#endif
