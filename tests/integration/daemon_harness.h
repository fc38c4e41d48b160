/* SPDX-License-Identifier: MIT */
/*
 * daemon_harness.h — start a real bitmixd on a private socket for a test, and stop it.
 *
 * Each harness gets a fresh temporary folder with its own config and socket, so tests can run
 * side by side. The daemon's log goes to a file in that folder, which tests read back. The
 * set-up the integration tests share (command line, bitmixctl runs, a child as nobody, the
 * daemon's descriptors) lives here too; the helpers marked so make cmocka assertions.
 */
#ifndef BITMIX_TEST_DAEMON_HARNESS_H
#define BITMIX_TEST_DAEMON_HARNESS_H

#include <stdbool.h>
#include <pthread.h>
#include <stddef.h>
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

/*
 * Wait until MODEL's cost table is complete: until then a thread at idle priority measures it,
 * which a test of the daemon's own CPU time or of its cheapest point must not see (cmocka).
 */
void harness_wait_cost_complete(const struct daemon_harness *h, const char *model);

/* The daemon's user+system CPU time so far, in clock ticks, or -errno. */
long harness_cpu_ticks(const struct daemon_harness *h);

/* Rewrite the config file (for reload tests). */
int harness_write_config(struct daemon_harness *h, const char *model_path, const char *extra_yaml);

/* SIGTERM and wait; returns the exit status (or 128 + signal). */
int harness_stop(struct daemon_harness *h);

/* Stop the daemon, assert it exited 0 (a sanitizer report fails it), remove its folder (cmocka). */
void harness_finish(struct daemon_harness *h);

/* Does the daemon's log contain NEEDLE? Waits up to TIMEOUT_MS for it to appear. */
bool harness_log_contains(const struct daemon_harness *h, const char *needle, int timeout_ms);

/*
 * The programs and model a test runs, from its command line: BITMIXD MODEL.bmx, then BITMIXCTL
 * when WITH_BITMIXCTL. Prints the usage and returns -EINVAL when the count is wrong.
 */
extern const char *harness_bitmixd, *harness_model, *harness_bitmixctl;
int harness_args(int argc, char **argv, bool with_bitmixctl);

/*
 * cmocka group setup and teardown for tests that share one daemon: *state becomes a started
 * struct daemon_harness serving HARNESS_MODEL with HARNESS_YAML (NULL: nothing extra) in its
 * config; teardown stops it (its exit status must be 0: a sanitizer report fails it) and
 * removes its folder.
 */
extern const char *harness_yaml;
int harness_group_setup(void **state);
int harness_group_teardown(void **state);

/*
 * A fast simulated machine for the governor tests: tau = R x C = 0.6 s, idle at 32.5 C, 92 C
 * with two CPUs busy. A sensors: block to start a config with.
 */
#define HARNESS_HOT_MACHINE_YAML                                         \
	"sensors:\n"                                                     \
	"  source: simulator\n"                                          \
	"  period_ms: 50\n"                                              \
	"  simulator: {ambient_c: 25, thermal_resistance_c_per_w: 1.5, " \
	"heat_capacity_j_per_c: 0.4,\n"                                  \
	"              idle_power_w: 5, power_per_cpu_w: 20}\n"

/*
 * Load that heats the simulator: two threads, each a client of "fmnist" at SOCKET running
 * batches of 8 until stopped; REQUESTS counts the batches done. Start and stop assert (cmocka).
 */
struct harness_load {
	const char *socket;
	volatile int stop;
	int requests;
	pthread_t threads[2];
};
void harness_load_start(struct harness_load *l, const char *socket);
void harness_load_stop(struct harness_load *l);

/* A memfd of SIZE bytes with SEALS added (0: none), for regions (cmocka). */
int harness_memfd(size_t size, unsigned seals);

/* Run CMD with sh; its standard output in OUT. Returns its exit status, 128 + signal, or -errno. */
int harness_run(const char *cmd, char *out, size_t size);

/* Run HARNESS_BITMIXCTL --socket (the daemon's) ARGS, output and errors in OUT; as harness_run. */
int harness_ctl(const struct daemon_harness *h, char *out, size_t size, const char *args);

/*
 * Run BODY(ARG) in a child as nobody (uid and gid 65534, no supplementary groups) and assert
 * that it returned 0; its return is the child's exit status, so each step can fail with a
 * number of its own (10 means the ids could not be changed). Skips the test unless root (cmocka).
 */
void harness_run_as_nobody(int (*body)(void *arg), void *arg);

/* The fewest descriptors the daemon holds over 300 ms (the readiness probe may still be
 * closing); asserts there are some (cmocka). */
int harness_fd_baseline(const struct daemon_harness *h);

/* Wait up to 3 s for the daemon to hold N descriptors again (closing is asynchronous), and
 * assert that it does (cmocka). */
void harness_assert_fds(const struct daemon_harness *h, int n);

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
