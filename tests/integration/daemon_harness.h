/* SPDX-License-Identifier: MIT */
/*
 * daemon_harness.h — start a real bitmixd on a private socket for a test, and stop it.
 *
 * Each harness gets a fresh temporary folder with its own config and socket, so tests can run
 * side by side. The daemon's log goes to a file in that folder, which tests read back.
 */
#ifndef BITMIX_TEST_DAEMON_HARNESS_H
#define BITMIX_TEST_DAEMON_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>

struct daemon_harness {
	char dir[64];
	char config[128];
	char socket[100]; /* fits sun_path */
	char log[128];
	pid_t pid;
};

/*
 * Write a config serving MODEL_PATH as "fmnist" (plus EXTRA_YAML, verbatim) and start bitmixd.
 * $BITMIX_TEST_DOORBELL and $BITMIX_TEST_SPIN_US, if set, become its ipc: block.
 */
int harness_start(struct daemon_harness *h, const char *bitmixd, const char *model_path,
		  const char *extra_yaml);

/* The same with the daemon's RLIMIT_NOFILE (soft and hard) set to NOFILE. */
int harness_start_limited(struct daemon_harness *h, const char *bitmixd, const char *model_path,
			  const char *extra_yaml, unsigned nofile);

/* The daemon's user+system CPU time so far, in clock ticks, or -errno. */
long harness_cpu_ticks(const struct daemon_harness *h);

/* Rewrite the config file (for reload tests). */
int harness_write_config(struct daemon_harness *h, const char *model_path, const char *extra_yaml);

/* SIGTERM and wait; returns the exit status (or 128 + signal). */
int harness_stop(struct daemon_harness *h);

/* Does the daemon's log contain NEEDLE? Waits up to TIMEOUT_MS for it to appear. */
bool harness_log_contains(const struct daemon_harness *h, const char *needle, int timeout_ms);

/*
 * cmocka group setup and teardown for tests that share one daemon: *state becomes a started
 * struct daemon_harness serving HARNESS_MODEL; teardown stops it (its exit status must be 0:
 * a sanitizer report fails it) and removes its folder.
 */
extern const char *harness_bitmixd, *harness_model;
int harness_group_setup(void **state);
int harness_group_teardown(void **state);

/* How many descriptors the daemon holds now (from /proc), or -errno. */
int harness_fd_count(const struct daemon_harness *h);

/* The daemon's resident set (VmRSS from /proc/PID/status) in KiB, or -errno. */
long harness_rss_kib(const struct daemon_harness *h);

/* Exit 77 (meson's skip), saying why, when $BITMIX_TEST_DOORBELL asks for futex doorbells and
 * this kernel's io_uring has no futex operations. */
void harness_skip_without_doorbell(void);

/* Remove the temporary folder. */
void harness_cleanup(struct daemon_harness *h);

#endif
