/* SPDX-License-Identifier: GPL-2.0 */
/* Constants of the socket dispatcher (BPF_PROG_TYPE_SK_LOOKUP): sizes and counter slots. */
#ifndef EDGESIM_DISPATCH_CONSTS_H
#define EDGESIM_DISPATCH_CONSTS_H

/* Labels a dispatcher knows (the socket map's size); edgesim/dispatch/store.py hands out their ids. */
#ifndef DISPATCH_MAX_LABELS
#define DISPATCH_MAX_LABELS 64
#endif
/* Bindings (protocol, prefix, port or all ports) at once. */
#ifndef DISPATCH_MAX_BINDINGS
#define DISPATCH_MAX_BINDINGS 4096
#endif

/*
 * A binding's key covers protocol (8 bits), padding (8), port (16) and address (32): the protocol, the
 * padding and the port always match in full, the address up to the binding's prefix length.
 */
#define DISPATCH_KEY_FIXED_BITS 32
#define DISPATCH_PORT_ANY 0

/* Slots of dispatch_totals. */
#define DISPATCH_NO_BINDING 0 /* no binding matched: the kernel's own socket lookup decides */
#define DISPATCH_ASSIGNED 1   /* handed to a registered socket */
#define DISPATCH_TOTALS 2

#endif
