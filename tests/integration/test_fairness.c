/* SPDX-License-Identifier: MIT */
/*
 * test_fairness.c — one client floods bitmixd with large batches; another client's 1-sample
 * request is served after about one large batch per worker, not after the flood (deficit
 * round-robin over sessions); and when the flooding client dies, its queued requests are
 * dropped at once (issue 21, defect 2).
 * Usage: test_fairness BITMIXD MODEL.bmx
 *
 * The assertions count requests (the daemon's STATUS counters), never time: under FIFO the
 * small request waits for the whole flood (about 60 batches), here for a handful.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "bitmix.h"
#include "daemon_harness.h"

#define FLOOD_REQUESTS 64
#define FLOOD_BATCH 256
#define IN_FLOATS (28 * 28)
#define OUT_FLOATS 10
/* Far above the handful DRR lets through, far below the ~60 a FIFO would. */
#define MAX_BATCHES_AHEAD 16

/*
 * The flooding client, in a child: FLOOD_REQUESTS requests of FLOOD_BATCH samples, then one
 * byte on READY_FD. REFILL: keep FLOOD_REQUESTS outstanding until the parent closes HOLD_FD,
 * else wait to be killed.
 */
static void flood_child(const char *socket, int ready_fd, int hold_fd, bool refill)
{
	struct bitmix_completion done[FLOOD_REQUESTS];
	struct bitmix_model *m;
	struct bitmix *bm;
	float *in, *out;
	char c = 1;

	if (bitmix_connect(socket, &bm) < 0 || bitmix_open_model(bm, "fmnist", &m) < 0)
		_exit(10);
	in = bitmix_tensor_alloc(bm, FLOOD_BATCH * IN_FLOATS * sizeof(float));
	out = bitmix_tensor_alloc(bm, FLOOD_BATCH * OUT_FLOATS * sizeof(float));
	if (!in || !out)
		_exit(11);
	memset(in, 0, FLOOD_BATCH * IN_FLOATS * sizeof(float));
	for (int i = 0; i < FLOOD_REQUESTS; i++)
		if (bitmix_prep_infer(m, in, out, FLOOD_BATCH, (uint64_t)i) < 0)
			_exit(12);
	if (bitmix_submit(bm) != FLOOD_REQUESTS || write(ready_fd, &c, 1) != 1)
		_exit(13);
	if (!refill)
		for (;;)
			pause();
	for (;;) {
		int n = bitmix_reap(bm, done, FLOOD_REQUESTS, 100000000);

		for (int i = 0; i < n; i++) {
			if (done[i].status != 0)
				_exit(14);
			if (bitmix_prep_infer(m, in, out, FLOOD_BATCH, done[i].user_data) < 0)
				_exit(15);
		}
		if (n > 0)
			bitmix_submit(bm);
		if (read(hold_fd, &c, 1) == 0)
			break; /* the parent closed it (the descriptor is non-blocking) */
	}
	bitmix_close(bm);
	_exit(0);
}

static pid_t start_flood(const char *socket, bool refill, int *hold)
{
	int ready[2], hold_pipe[2];
	pid_t pid;
	char c;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe2(hold_pipe, O_NONBLOCK), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(ready[0]);
		close(hold_pipe[1]);
		flood_child(socket, ready[1], hold_pipe[0], refill);
	}
	close(ready[1]);
	close(hold_pipe[0]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	*hold = hold_pipe[1];
	return pid;
}

/* A 1-sample request from a second client; the requests completed meanwhile, its own included. */
static uint64_t small_request(struct bitmix *bm, struct bitmix_model *m,
			      struct bitmix_status *after)
{
	struct bitmix_status before;
	float *in = bitmix_tensor_alloc(bm, IN_FLOATS * sizeof(float));
	float *out = bitmix_tensor_alloc(bm, OUT_FLOATS * sizeof(float));

	assert_non_null(in);
	assert_non_null(out);
	memset(in, 0, IN_FLOATS * sizeof(float));
	assert_int_equal(bitmix_get_status(bm, &before), 0);
	assert_int_equal(bitmix_infer(m, in, out, 1, NULL), 0);
	assert_int_equal(bitmix_get_status(bm, after), 0);
	bitmix_tensor_free(bm, in);
	bitmix_tensor_free(bm, out);
	return after->requests_completed - before.requests_completed;
}

/* While one client keeps 64 batches of 256 queued, another's 1 sample is not behind them. */
static void test_small_request_not_behind_flood(void **state)
{
	struct daemon_harness *h = *state;
	struct bitmix_status st;
	struct bitmix_model *m;
	struct bitmix *bm;
	uint64_t ahead;
	int hold, status;
	pid_t pid;

	assert_int_equal(bitmix_connect(h->socket, &bm), 0);
	assert_int_equal(bitmix_open_model(bm, "fmnist", &m), 0);
	pid = start_flood(h->socket, true, &hold);
	ahead = small_request(bm, m, &st) - 1;
	printf("flood batches completed while the small request waited: %llu (%u workers)\n",
	       (unsigned long long)ahead, st.workers);
	assert_true(ahead <= MAX_BATCHES_AHEAD);
	close(hold);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	bitmix_close(bm);
}

/* The flooding client dies: its queue is dropped, the other client does not wait for it. */
static void test_dead_client_queue_dropped(void **state)
{
	struct daemon_harness *h = *state;
	struct bitmix_status st0, st;
	struct bitmix_model *m;
	struct bitmix *bm;
	uint64_t ran;
	int hold;
	pid_t pid;

	assert_int_equal(bitmix_connect(h->socket, &bm), 0);
	assert_int_equal(bitmix_open_model(bm, "fmnist", &m), 0);
	pid = start_flood(h->socket, false, &hold);
	assert_int_equal(bitmix_get_status(bm, &st0), 0);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	close(hold);
	ran = small_request(bm, m, &st) - 1;
	printf("after the kill: %llu flood batches ran, %llu dropped\n", (unsigned long long)ran,
	       (unsigned long long)st.dropped_on_close);
	assert_true(ran <= MAX_BATCHES_AHEAD);
	assert_true(st.dropped_on_close > st0.dropped_on_close);
	bitmix_close(bm);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_request_not_behind_flood),
		cmocka_unit_test(test_dead_client_queue_dropped),
	};

	if (harness_args(argc, argv, false) < 0)
		return 2;
	return cmocka_run_group_tests_name("fairness", tests, harness_group_setup,
					   harness_group_teardown);
}
