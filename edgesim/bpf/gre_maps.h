/* SPDX-License-Identifier: GPL-2.0 */
/* Maps of the GRE programs; the edge agent (or the customer role) fills them from the tenant config. */
#ifndef EDGESIM_GRE_MAPS_H
#define EDGESIM_GRE_MAPS_H

#include "common/counters.h"
#include "gre_structs.h"

/*
 * Tenant prefixes (longest match) -> tenant and tunnel remote; looked up by inner destination on an edge,
 * by inner source on a customer site router.
 */
BPF_F_TABLE("lpm_trie", struct prefix_key, struct tenant_route, prefixes, 1024, BPF_F_NO_PREALLOC);

/* Tunnel remotes (outer source address, network order) whose GRE this node decapsulates -> their tenant. */
BPF_HASH(remotes, __be32, __u32, 1024);

/*
 * Edge only: inner destinations decapsulated traffic is refused (longest match) -> the VERDICT_TO_* that
 * counts it. Filled from the plan: infrastructure, anycast services, tenant prefixes.
 */
BPF_F_TABLE("lpm_trie", struct prefix_key, __u32, refused, 64, BPF_F_NO_PREALLOC);

/*
 * Edge only: tenant -> ifindex of its veth on this edge (t-<tenant>). A decapsulated packet is handed to
 * the veth's peer, the tenant's namespace, where the tenant's routing table and firewall decide.
 */
BPF_HASH(contexts, __u32, __u32, 1024);

/* Packets and bytes per tenant and verdict, per CPU; read from Python by summing the CPUs. */
BPF_PERCPU_HASH(counters, struct counter_key, struct counter, 4096);

#endif
