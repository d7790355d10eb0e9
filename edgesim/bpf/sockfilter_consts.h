/* SPDX-License-Identifier: GPL-2.0 */
/* Constants of the DNS socket filter (SO_ATTACH_BPF): map sizes and slots of its global counters. */
#ifndef EDGESIM_SOCKFILTER_CONSTS_H
#define EDGESIM_SOCKFILTER_CONSTS_H

/* Sources tracked at once; the LRU map forgets the least recently seen one past this. */
#ifndef SF_MAX_SOURCES
#define SF_MAX_SOURCES 65536
#endif

/* Slots of sf_totals (edgesim/dns/filtermaps.py names them). */
#define SF_TOTAL_SOURCES 0 /* sources ever inserted into sf_sources (an LRU eviction does not lower it) */
#define SF_TOTAL_PASSED 1
#define SF_TOTAL_DROPPED 2
#define SF_TOTAL_UNPARSED 3 /* datagrams whose IPv4 source could not be read: passed, as the kernel would */
#define SF_TOTALS 4

/* A socket filter's verdict is how many bytes to keep: 0 drops the datagram. */
#define SF_DROP 0

#endif
