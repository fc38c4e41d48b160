/* SPDX-License-Identifier: MIT */
/*
 * bench_daemon.h — a bitmixd that a benchmark starts for itself: one model, a configuration the
 * benchmark writes, a private socket in a temporary folder; stopped and cleaned up afterwards.
 */
#ifndef BITMIX_BENCH_DAEMON_H
#define BITMIX_BENCH_DAEMON_H

#include <stdint.h>
#include <sys/types.h>

struct bench_daemon {
	char dir[64];
	char socket[100];
	pid_t pid;
};

/*
 * Start BITMIXD serving MODEL (a .bmx path) as NAME, with 2 workers and log_level warning, on a
 * private socket; EXTRA_YAML (may be NULL) is appended to the configuration (top-level blocks
 * such as governor: or sensors:). Returns once a client can connect.
 */
int bench_daemon_start_yaml(struct bench_daemon *d, const char *bitmixd, const char *name,
			    const char *model, const char *extra_yaml);
/* Start BITMIXD serving MODEL as "fmnist" with the given ipc: doorbell and spin_us. */
int bench_daemon_start(struct bench_daemon *d, const char *bitmixd, const char *model,
		       const char *doorbell, unsigned spin_us);
void bench_daemon_stop(struct bench_daemon *d);

uint64_t bench_now_ns(void);

#endif
