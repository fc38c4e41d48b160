/* SPDX-License-Identifier: MIT */
/*
 * test_hostile_ipc.c — hostile clients of the zero-copy data plane: regions that are not sealed
 * memfds (or are shrunk after registration), region messages with the wrong descriptors, a client
 * that overflows its rings or exceeds limits.in_flight, one killed by SIGKILL mid-request, and
 * 10,000 connections. Each hurts only itself; the daemon's descriptors and RSS (from /proc) are
 * the same afterwards, and a well-behaved client is still served. Runs once per doorbell.
 * Usage: test_hostile_ipc BITMIXD MODEL.bmx
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "bitmix.h"
#include "bitmix_proto.h"
#include "daemon_harness.h"

#include "raw_client.h"

static int baseline_fds; /* the daemon's descriptors before any offence */

/* Register FD and expect STATUS with WORDS in the message. */
static void expect_region_refused(struct bitmix *bm, int fd, size_t size, int status,
				  const char *words)
{
	assert_int_equal(bitmix_region_register(bm, fd, NULL, size), status);
	if (!strstr(bitmix_strerror(bm), words))
		fail_msg("message \"%s\" lacks \"%s\"", bitmix_strerror(bm), words);
	close(fd);
}

/*
 * Regions the daemon must not map: unsealed, not a memfd (pipe, file), wrong size, read-only,
 * write-sealed. A good one cannot be shrunk after registration, and still serves.
 */
static void test_region_refusals(void **state)
{
	const size_t size = 1 << 20;
	struct daemon_harness *h = *state;
	struct bitmix_completion done;
	char file[160], fdpath[64];
	struct bitmix *bm;
	int pipefd[2], fd, region;
	void *addr;

	baseline_fds = harness_fd_baseline(h);
	assert_int_equal(bitmix_connect(h->socket, &bm), 0);
	expect_region_refused(bm, harness_memfd(size, 0), size, -EINVAL, "not sealed");
	expect_region_refused(bm, harness_memfd(size, F_SEAL_SHRINK), size, -EINVAL, "not sealed");
	assert_int_equal(pipe(pipefd), 0);
	close(pipefd[1]);
	expect_region_refused(bm, pipefd[0], size, -EINVAL, "not a memfd (it is pipe:");
	snprintf(file, sizeof(file), "%s/plain-file", h->dir);
	fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	expect_region_refused(bm, fd, size, -EINVAL, "not a memfd");
	expect_region_refused(bm, harness_memfd(size, F_SEAL_SHRINK | F_SEAL_GROW), size * 2,
			      -EINVAL, "the request says");
	fd = harness_memfd(size, F_SEAL_SHRINK | F_SEAL_GROW);
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
	expect_region_refused(bm, open(fdpath, O_RDONLY | O_CLOEXEC), size, -EACCES, "read-write");
	close(fd);
	expect_region_refused(
		bm, harness_memfd(size, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE), size,
		-EPERM, "cannot map");
	/* A good region: sealed, so shrinking it after registration fails; it keeps working. */
	fd = harness_memfd(size, F_SEAL_SHRINK | F_SEAL_GROW);
	addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(addr != MAP_FAILED);
	region = bitmix_region_register(bm, fd, addr, size);
	assert_true(region >= 1);
	assert_int_equal(ftruncate(fd, 4096), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)size),
			 0);
	assert_int_equal(bitmix_prep_nop(bm, addr, size, 1), 0);
	assert_int_equal(bitmix_submit(bm), 1);
	assert_int_equal(bitmix_reap(bm, &done, 1, -1), 1);
	assert_int_equal(done.status, 0);
	close(fd);
	munmap(addr, size);
	bitmix_close(bm);
	assert_daemon_serves(h->socket);
	harness_assert_fds(h, baseline_fds);
}

/* Region messages with the wrong descriptors or fields. */
static void test_region_messages(void **state)
{
	struct daemon_harness *h = *state;
	struct bitmix_region_req req = { .region = 42 };
	uint8_t reply[BITMIX_MSG_MAX];
	struct raw c;
	char byte;
	int fds[2];

	raw_connect(&c, h->socket);
	/* UNREGISTER of a region that does not exist: an error, and the connection stays. */
	assert_int_equal(raw_call(&c, &req, sizeof(req), BITMIX_MSG_UNREGISTER_REGION, reply,
				  sizeof(reply), NULL, 0),
			 -ENXIO);
	/* REGISTER without its descriptor, and with a short message. */
	req = (struct bitmix_region_req){ .size = 4096 };
	assert_int_equal(raw_call(&c, &req, sizeof(req), BITMIX_MSG_REGISTER_REGION, reply,
				  sizeof(reply), NULL, 0),
			 -EBADF);
	assert_int_equal(raw_call(&c, &req, sizeof(req) - 8, BITMIX_MSG_REGISTER_REGION, reply,
				  sizeof(reply), NULL, 0),
			 -EBADMSG);
	/* Two descriptors at once is a protocol violation: hung up on, both closed. */
	fds[0] = harness_memfd(4096, F_SEAL_SHRINK | F_SEAL_GROW);
	fds[1] = harness_memfd(4096, F_SEAL_SHRINK | F_SEAL_GROW);
	req.hdr = raw_hdr(BITMIX_MSG_REGISTER_REGION, sizeof(req), 99);
	assert_int_equal(raw_send_fds(c.fd, &req, sizeof(req), fds, 2), sizeof(req));
	assert_int_equal(recv(c.fd, &byte, 1, 0), 0);
	close(fds[0]);
	close(fds[1]);
	raw_close(&c);
	assert_daemon_serves(h->socket);
	harness_assert_fds(h, baseline_fds);
}

/*
 * A client that submits more than its completion ring can hold and does not reap: the daemon
 * takes exactly cq_entries, serves everyone else, and takes the rest once the client reaps.
 */
static void test_ring_overflow(void **state)
{
	struct daemon_harness *h = *state;
	struct bitmix_sqe *sq;
	struct bitmix_arena_hdr *hdr;
	struct bitmix_cqe cqe;
	struct raw c;
	uint32_t n;

	raw_connect(&c, h->socket);
	hdr = (void *)c.arena;
	sq = (void *)(c.arena + c.hello.sq_offset);
	n = c.hello.cq_entries;
	for (uint32_t i = 0; i < n; i++)
		sq[c.sq_tail++ & (c.hello.sq_entries - 1)] =
			(struct bitmix_sqe){ .user_data = i, .opcode = BITMIX_OP_NOP };
	bitmix_store_release(&hdr->sq_tail, c.sq_tail);
	raw_ring(&c);
	for (int i = 0; i < 500 && bitmix_load_acquire(&hdr->cq_tail) != n; i++)
		usleep(1000);
	assert_int_equal(bitmix_load_acquire(&hdr->cq_tail), n);
	/* Five more, the completion ring full: not taken. */
	for (uint32_t i = 0; i < 5; i++)
		sq[c.sq_tail++ & (c.hello.sq_entries - 1)] =
			(struct bitmix_sqe){ .user_data = n + i, .opcode = BITMIX_OP_NOP };
	bitmix_store_release(&hdr->sq_tail, c.sq_tail);
	raw_ring(&c);
	assert_daemon_serves(h->socket);
	assert_int_equal(bitmix_load_acquire(&hdr->sq_head), n);
	assert_int_equal(bitmix_load_acquire(&hdr->cq_tail), n);
	/* Reap everything, ring again: the five are served in order. */
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(raw_reap(&c, &cqe), 0);
		assert_int_equal(cqe.user_data, i);
	}
	raw_ring(&c);
	for (uint32_t i = 0; i < 5; i++) {
		assert_int_equal(raw_reap(&c, &cqe), 0);
		assert_int_equal(cqe.user_data, n + i);
		assert_int_equal(cqe.status, 0);
	}
	raw_close(&c);
}

/* A client that dies by SIGKILL with requests running: the daemon finishes them and forgets it. */
static void test_sigkill_mid_request(void **state)
{
	struct daemon_harness *h = *state;
	int ready[2], status;
	char byte;
	pid_t pid;

	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct bitmix_model *m;
		struct bitmix *bm;
		float *in, *out;

		close(ready[0]);
		if (bitmix_connect(h->socket, &bm) < 0 || bitmix_open_model(bm, "fmnist", &m) < 0)
			_exit(1);
		in = bitmix_tensor_alloc(bm, 256 * 28 * 28 * 4);
		out = bitmix_tensor_alloc(bm, 256 * 10 * 4);
		if (!in || !out)
			_exit(1);
		memset(in, 0, 256 * 28 * 28 * 4);
		for (int i = 0; i < 4; i++)
			if (bitmix_prep_infer(m, in, out, 256, (uint64_t)i) < 0)
				_exit(1);
		if (bitmix_submit(bm) != 4 || write(ready[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &byte, 1), 1);
	close(ready[0]);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	assert_daemon_serves(h->socket);
	harness_assert_fds(h, baseline_fds);
}

/*
 * 10,000 clients connect (HELLO: an arena each) and leave. After a warm-up that lets the
 * allocators reach their working set, the daemon's descriptors are the same and its RSS has not
 * grown by more than a rounding error (each arena is 16 MiB; one leaked arena page per client
 * would show as 40 MiB).
 */
static void test_connect_cycles(void **state)
{
	struct daemon_harness *h = *state;
	long rss0, rss1;
	struct bitmix *bm;

	/* The cost table's measuring thread grows the RSS until it is done: not a client's doing. */
	harness_wait_cost_complete(h, "fmnist");
	for (int i = 0; i < 500; i++) {
		assert_int_equal(bitmix_connect(h->socket, &bm), 0);
		bitmix_close(bm);
	}
	harness_assert_fds(h, baseline_fds);
	rss0 = harness_rss_kib(h);
	for (int i = 0; i < 10000; i++) {
		int r = bitmix_connect(h->socket, &bm);

		if (r < 0)
			fail_msg("cycle %d: %s", i, bitmix_strerror(NULL));
		bitmix_close(bm);
	}
	harness_assert_fds(h, baseline_fds);
	rss1 = harness_rss_kib(h);
	print_message("daemon RSS %ld KiB before, %ld KiB after 10000 connections\n", rss0, rss1);
	assert_true(rss0 > 0 && rss1 > 0);
	assert_true(rss1 - rss0 < 4096);
	assert_daemon_serves(h->socket);
}

/* The daemon's resident shared memory (RssShmem of /proc/PID/status) in KiB. */
static long rss_shmem_kib(const struct daemon_harness *h)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)h->pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "RssShmem: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/*
 * A region registered and never touched costs the daemon no memory: 256 MiB of it, mapped,
 * stays out of its resident set (issue 21: it was charged 76 MB).
 */
static void test_untouched_region_costs_nothing(void **state)
{
	const size_t size = 256u << 20;
	struct daemon_harness *h = *state;
	long rss0, shm0, rss1, shm1;
	struct bitmix *bm;
	int fd, id;

	assert_int_equal(bitmix_connect(h->socket, &bm), 0);
	fd = harness_memfd(size, F_SEAL_SHRINK | F_SEAL_GROW);
	rss0 = harness_rss_kib(h);
	shm0 = rss_shmem_kib(h);
	id = bitmix_region_register(bm, fd, NULL, size);
	if (id < 1)
		fail_msg("%s", bitmix_strerror(bm));
	assert_daemon_serves(h->socket);
	rss1 = harness_rss_kib(h);
	shm1 = rss_shmem_kib(h);
	print_message("daemon RSS %ld -> %ld KiB, RssShmem %ld -> %ld KiB, a 256 MiB region "
		      "registered\n",
		      rss0, rss1, shm0, shm1);
	assert_true(shm1 - shm0 < 4096);
	assert_true(rss1 - rss0 < 32768);
	close(fd);
	bitmix_close(bm);
}

/* limits.in_flight: requests beyond it complete at once with -EBUSY; the rest run. */
static void test_in_flight_limit(void **state)
{
	struct daemon_harness h;
	struct bitmix_arena_hdr *hdr;
	struct bitmix_sqe *sq;
	struct bitmix_cqe cqe;
	int busy = 0, ok = 0;
	struct raw c;

	(void)state;
	assert_int_equal(
		harness_start(&h, harness_bitmixd, harness_model, "limits:\n  in_flight: 2\n"), 0);
	raw_connect(&c, h.socket);
	hdr = (void *)c.arena;
	sq = (void *)(c.arena + c.hello.sq_offset);
	assert_int_equal(c.hello.max_in_flight, 2);
	for (int i = 0; i < 6; i++) {
		struct bitmix_sqe e = good_sqe(&c);

		e.batch = 32; /* milliseconds of work: still running when the loop takes the next */
		e.in_length *= 32;
		e.out_offset = (e.in_length + 63) / 64 * 64;
		e.out_length *= 32;
		e.user_data = (uint64_t)i;
		sq[c.sq_tail++ & (c.hello.sq_entries - 1)] = e;
	}
	bitmix_store_release(&hdr->sq_tail, c.sq_tail); /* all six at once */
	raw_ring(&c);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(raw_reap(&c, &cqe), 0);
		busy += cqe.status == -EBUSY;
		ok += cqe.status == 0;
	}
	assert_int_equal(busy + ok, 6);
	assert_true(ok >= 2 && busy >= 1);
	assert_true(harness_log_contains(&h, "limits.in_flight is 2", 1000));
	raw_close(&c);
	harness_finish(&h);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_region_refusals),
		cmocka_unit_test(test_region_messages),
		cmocka_unit_test(test_ring_overflow),
		cmocka_unit_test(test_sigkill_mid_request),
		cmocka_unit_test(test_connect_cycles),
		cmocka_unit_test(test_untouched_region_costs_nothing),
	};
	const struct CMUnitTest alone[] = {
		cmocka_unit_test(test_in_flight_limit),
	};
	char asan[512];
	int failed;

	harness_skip_without_doorbell();
	if (harness_args(argc, argv, false) < 0)
		return 2;
	/* Under ASan, a small quarantine lets the daemon's RSS settle (test_connect_cycles). */
	snprintf(asan, sizeof(asan), "%s%squarantine_size_mb=1", getenv("ASAN_OPTIONS") ?: "",
		 getenv("ASAN_OPTIONS") ? ":" : "");
	setenv("ASAN_OPTIONS", asan, 1);
	failed = cmocka_run_group_tests_name("hostile-ipc", tests, harness_group_setup,
					     harness_group_teardown);
	return failed + cmocka_run_group_tests_name("in-flight", alone, NULL, NULL);
}
