/* SPDX-License-Identifier: MIT */
/*
 * test_ipc.c — libbitmix's asynchronous API, zero-copy regions, spin and sleep, and the limits,
 * against a live bitmixd. The suite runs this once per doorbell ($BITMIX_TEST_DOORBELL: futex,
 * eventfd), with the daemon spinning and not; every case must give the same results on each.
 * Usage: test_ipc BITMIXD MODEL.bmx
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "bitmix.h"
#include "daemon_harness.h"

#define IN_FLOATS (28 * 28)
#define OUT_FLOATS 10
#define OUT_STRIDE 16 /* tensors start 64-byte aligned */

struct conn {
	struct bitmix *bm;
	struct bitmix_model *m;
};

static void conn_open(struct conn *c, const char *socket)
{
	assert_int_equal(bitmix_connect(socket, &c->bm), 0);
	assert_int_equal(bitmix_open_model(c->bm, "fmnist", &c->m), 0);
}

static void fill(float *x, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (float)((i * 2654435761u + seed * 40503u) % 1000) / 1000.0f;
}

/* A sealed memfd of SIZE bytes, mapped at *addr. */
static int sealed_memfd(size_t size, void **addr)
{
	int fd = harness_memfd(size, F_SEAL_SHRINK | F_SEAL_GROW);

	*addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(*addr != MAP_FAILED);
	return fd;
}

/* The daemon logs and reports the doorbell it chose; a forced one is honoured. */
static void test_status_names_doorbell(void **state)
{
	struct daemon_harness *h = *state;
	const char *want = getenv("BITMIX_TEST_DOORBELL");
	struct bitmix_status st;
	char line[64];
	struct conn c;

	conn_open(&c, h->socket);
	assert_int_equal(bitmix_get_status(c.bm, &st), 0);
	assert_true(strcmp(st.doorbell, "futex") == 0 || strcmp(st.doorbell, "eventfd") == 0);
	if (want && strcmp(want, "auto") != 0)
		assert_string_equal(st.doorbell, want);
	snprintf(line, sizeof(line), "doorbell: %s", st.doorbell);
	assert_true(harness_log_contains(h, line, 1000));
	bitmix_close(c.bm);
}

/*
 * 48 inferences and 16 NOPs prepared, published with one submit, reaped in any order: every
 * user_data comes back exactly once, and each output equals the synchronous call's on its input.
 */
static void test_async_batch_matches_sync(void **state)
{
	enum { N_INFER = 48, N_NOP = 16 };
	struct daemon_harness *h = *state;
	struct bitmix_completion done[N_INFER + N_NOP];
	int seen[N_INFER + N_NOP] = { 0 };
	float *in, *out, *ref;
	struct conn c;
	int got = 0;

	conn_open(&c, h->socket);
	in = bitmix_tensor_alloc(c.bm, N_INFER * IN_FLOATS * sizeof(float));
	out = bitmix_tensor_alloc(c.bm, N_INFER * OUT_STRIDE * sizeof(float));
	ref = bitmix_tensor_alloc(c.bm, OUT_FLOATS * sizeof(float));
	assert_non_null(in);
	assert_non_null(out);
	assert_non_null(ref);
	fill(in, N_INFER * IN_FLOATS, 1);
	for (int i = 0; i < N_INFER; i++)
		assert_int_equal(bitmix_prep_infer(c.m, in + i * IN_FLOATS, out + i * OUT_STRIDE, 1,
						   (uint64_t)i),
				 0);
	for (int i = 0; i < N_NOP; i++)
		assert_int_equal(bitmix_prep_nop(c.bm, in, IN_FLOATS * 4, (uint64_t)(N_INFER + i)),
				 0);
	/* The synchronous call refuses to mix with outstanding requests. */
	assert_int_equal(bitmix_infer(c.m, in, ref, 1, NULL), -EBUSY);
	assert_int_equal(bitmix_submit(c.bm), N_INFER + N_NOP);
	assert_int_equal(bitmix_submit(c.bm), 0);
	while (got < N_INFER + N_NOP) {
		int n = bitmix_reap(c.bm, done + got, (unsigned)(N_INFER + N_NOP - got),
				    10ll * 1000000000);

		assert_true(n > 0);
		got += n;
	}
	for (int i = 0; i < got; i++) {
		assert_true(done[i].user_data < N_INFER + N_NOP);
		assert_int_equal(done[i].status, 0);
		seen[done[i].user_data]++;
	}
	for (int i = 0; i < N_INFER + N_NOP; i++)
		assert_int_equal(seen[i], 1);
	for (int i = 0; i < N_INFER; i += 7) {
		assert_int_equal(bitmix_infer(c.m, in + i * IN_FLOATS, ref, 1, NULL), 0);
		assert_memory_equal(ref, out + i * OUT_STRIDE, OUT_FLOATS * sizeof(float));
	}
	/* Nothing outstanding: polling and a short wait both find nothing. */
	assert_int_equal(bitmix_reap(c.bm, done, 1, 0), 0);
	assert_int_equal(bitmix_reap(c.bm, done, 1, 20 * 1000000), 0);
	bitmix_close(c.bm);
}

/* Both sides asleep between requests (no spinning), and both spinning: the same answers. */
static void test_spin_and_sleep(void **state)
{
	struct daemon_harness *h = *state;
	float *in, *out, first[OUT_FLOATS];
	struct conn c;

	conn_open(&c, h->socket);
	in = bitmix_tensor_alloc(c.bm, IN_FLOATS * sizeof(float));
	out = bitmix_tensor_alloc(c.bm, OUT_FLOATS * sizeof(float));
	fill(in, IN_FLOATS, 3);
	for (int mode = 0; mode < 2; mode++) {
		bitmix_set_spin(c.bm, mode ? 5000000 : 0);
		for (int i = 0; i < 50; i++) {
			assert_int_equal(bitmix_infer(c.m, in, out, 1, NULL), 0);
			if (mode == 0 && i == 0)
				memcpy(first, out, sizeof(first));
			assert_memory_equal(first, out, sizeof(first));
			if (i % 10 == 0)
				usleep(2000); /* long enough for the daemon to fall asleep */
		}
	}
	bitmix_close(c.bm);
}

/* Tensors in a registered memfd give the same results as tensors in the arena; no copy. */
static void test_region_zero_copy(void **state)
{
	const size_t size = 4 << 20;
	struct daemon_harness *h = *state;
	float *in, *out, *rin, *rout;
	struct bitmix_completion done;
	struct conn c;
	void *addr;
	int fd, region;

	conn_open(&c, h->socket);
	fd = sealed_memfd(size, &addr);
	region = bitmix_region_register(c.bm, fd, addr, size);
	assert_true(region >= 1);
	close(fd); /* the daemon has its own mapping */
	in = bitmix_tensor_alloc(c.bm, IN_FLOATS * sizeof(float));
	out = bitmix_tensor_alloc(c.bm, OUT_FLOATS * sizeof(float));
	rin = addr;
	rout = (float *)((uint8_t *)addr + size - 64);
	fill(in, IN_FLOATS, 5);
	memcpy(rin, in, IN_FLOATS * sizeof(float));
	assert_int_equal(bitmix_infer(c.m, in, out, 1, NULL), 0);
	assert_int_equal(bitmix_infer(c.m, rin, rout, 1, NULL), 0);
	assert_memory_equal(out, rout, OUT_FLOATS * sizeof(float));
	/* Mixed: input in the region, output in the arena. */
	memset(out, 0, OUT_FLOATS * sizeof(float));
	assert_int_equal(bitmix_infer(c.m, rin, out, 1, NULL), 0);
	assert_memory_equal(out, rout, OUT_FLOATS * sizeof(float));
	/* The whole region as one tensor. */
	assert_int_equal(bitmix_prep_nop(c.bm, addr, size, 9), 0);
	assert_int_equal(bitmix_submit(c.bm), 1);
	assert_int_equal(bitmix_reap(c.bm, &done, 1, -1), 1);
	assert_int_equal(done.status, 0);
	/* One byte past it is not in any region: refused before it leaves the client. */
	assert_int_equal(bitmix_prep_nop(c.bm, addr, size + 1, 10), -EINVAL);
	assert_int_equal(bitmix_region_unregister(c.bm, region), 0);
	assert_int_equal(bitmix_infer(c.m, rin, rout, 1, NULL), -EINVAL);
	assert_int_equal(bitmix_region_unregister(c.bm, region), -ENXIO);
	assert_non_null(strstr(bitmix_strerror(c.bm), "no region"));
	munmap(addr, size);
	bitmix_close(c.bm);
}

/* Per-client limits from the limits: block, each refused with a message that names it. */
static void test_limits(void **state)
{
	static const char limits[] = "limits:\n  in_flight: 8\n  regions: 2\n  mapped_bytes: 28M\n"
				     "  connections_per_uid: 3\n";
	struct bitmix *extra[3] = { 0 };
	struct daemon_harness h;
	struct conn c;
	void *addr[3];
	int fd[3], n;

	(void)state;
	assert_int_equal(harness_start(&h, harness_bitmixd, harness_model, limits), 0);
	conn_open(&c, h.socket);
	/* in_flight: the library stops at 8 outstanding requests. */
	for (n = 0; n < 100 && bitmix_prep_nop(c.bm, NULL, 0, (uint64_t)n) == 0; n++)
		;
	assert_int_equal(n, 8);
	assert_non_null(strstr(bitmix_strerror(c.bm), "limits.in_flight"));
	assert_int_equal(bitmix_submit(c.bm), 8);
	for (int got = 0; got < 8;) {
		struct bitmix_completion done[8];
		int r = bitmix_reap(c.bm, done, 8, -1);

		assert_true(r > 0);
		got += r;
	}
	/* regions: two fit, the third is refused. mapped_bytes: the 16 MiB arena + 4 + 4 MiB fit 28. */
	for (int i = 0; i < 3; i++)
		fd[i] = sealed_memfd(4 << 20, &addr[i]);
	assert_true(bitmix_region_register(c.bm, fd[0], addr[0], 4 << 20) >= 1);
	assert_true(bitmix_region_register(c.bm, fd[1], addr[1], 4 << 20) >= 1);
	assert_int_equal(bitmix_region_register(c.bm, fd[2], addr[2], 4 << 20), -EMFILE);
	assert_non_null(strstr(bitmix_strerror(c.bm), "limits.regions"));
	assert_int_equal(bitmix_region_unregister(c.bm, 1), 0);
	/* Now a region is free, but 8 MiB more would map more than 28 MiB. */
	munmap(addr[2], 4 << 20);
	close(fd[2]);
	fd[2] = sealed_memfd(8 << 20, &addr[2]);
	assert_int_equal(bitmix_region_register(c.bm, fd[2], addr[2], 8 << 20), -ENOSPC);
	assert_non_null(strstr(bitmix_strerror(c.bm), "limits.mapped_bytes"));
	/* connections_per_uid: this one and two more; the fourth is refused. */
	assert_int_equal(bitmix_connect(h.socket, &extra[0]), 0);
	assert_int_equal(bitmix_connect(h.socket, &extra[1]), 0);
	assert_int_equal(bitmix_connect(h.socket, &extra[2]), -EUSERS);
	assert_non_null(strstr(bitmix_strerror(NULL), "limits.connections_per_uid"));
	bitmix_close(extra[0]);
	bitmix_close(extra[1]);
	for (int i = 0; i < 3; i++) {
		munmap(addr[i], i == 2 ? 8 << 20 : 4 << 20);
		close(fd[i]);
	}
	bitmix_close(c.bm);
	harness_finish(&h);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_names_doorbell),
		cmocka_unit_test(test_async_batch_matches_sync),
		cmocka_unit_test(test_spin_and_sleep),
		cmocka_unit_test(test_region_zero_copy),
	};
	const struct CMUnitTest alone[] = {
		cmocka_unit_test(test_limits),
	};
	int failed;

	harness_skip_without_doorbell();
	if (harness_args(argc, argv, false) < 0)
		return 2;
	failed = cmocka_run_group_tests_name("ipc", tests, harness_group_setup,
					     harness_group_teardown);
	return failed + cmocka_run_group_tests_name("limits", alone, NULL, NULL);
}
