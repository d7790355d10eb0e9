/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Where the DoS stage and the LB meet: the per-packet hand-over and the question the DoS stage asks the
 * LB (is this VIP:port balanced, so that another edge may own the flow?).
 */
#ifndef EDGESIM_LB_HANDOVER_H
#define EDGESIM_LB_HANDOVER_H

#include <linux/in.h>

#include "ddos_consts.h"
#include "ddos_stats.h"
#include "lb_maps.h"

static __always_inline struct lb_scratch *handover(void)
{
	__u32 zero = 0;

	return lb_handover.lookup(&zero);
}

/* Whether the LB is on and balances this TCP VIP:port (its owner may then be another edge). */
static __always_inline int balanced(__be32 vip, __u16 port)
{
	__u32 zero = 0;
	struct lb_config *cfg = lb_config.lookup(&zero);
	struct lb_vip_key key = {.vip = vip, .port = port, .proto = IPPROTO_TCP};

	if (!cfg || !cfg->enabled)
		return 0;
	return lb_vips.lookup(&key) != NULL;
}

/* A packet the DoS stage deferred to the LB, which found that it belongs here: the cookie check's drop. */
static __always_inline int drop_unverified(struct lb_scratch *sc, __u64 bytes)
{
	count(sc->drop_slot, bytes);
	return drop(SLOT_COOKIE_ACK_BAD, bytes);
}

#endif
