/* SPDX-License-Identifier: MIT */
/*
 * bmx_util.h — the few helpers every part of bitmix shares: the monotonic clock and scope-bound
 * cleanup (_cleanup_, as systemd writes it). Header-only; no part of bitmix needs more.
 */
#ifndef BMX_UTIL_H
#define BMX_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* CLOCK_MONOTONIC in nanoseconds: every time-stamp, deadline and interval in bitmix. */
static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Run F(&var) when var goes out of scope: _cleanup_(freep) char *s = strdup(...); */
#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p)
{
	free(*(void **)p);
}

/* Closes a descriptor that is still >= 0; take it with take_fd() to keep it. */
static inline void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

static inline int take_fd(int *fd)
{
	int r = *fd;

	*fd = -1;
	return r;
}

#endif
