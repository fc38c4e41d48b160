/* SPDX-License-Identifier: MIT */
/*
 * soak_stats.h — the soak's counters, in one shared anonymous page that the soak and its forked
 * clients add to (atomics, relaxed: each is one number on its own).
 */
#ifndef BITMIX_TEST_SOAK_STATS_H
#define BITMIX_TEST_SOAK_STATS_H

#include <stdint.h>

struct soak_stats {
	int stop;		   /* set by the soak: clients finish their request and exit */
	uint64_t requests;	   /* completed inference requests */
	uint64_t checked;	   /* samples compared bit for bit with the reference */
	uint64_t wrong;		   /* of them different */
	uint64_t unverified;	   /* samples whose generation was replaced before we read it */
	uint64_t refused_unloaded; /* requests refused because a reload unloaded their model */
	uint64_t errors;	   /* any other failure a client saw */
	uint64_t connections, connect_failed;
	/* The soak's own (one writer). */
	uint64_t killed, governor_switches, bits_set, reloads_good, reloads_bad;
	int daemon_died;
};

#endif
