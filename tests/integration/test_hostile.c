/* SPDX-License-Identifier: MIT */
/*
 * test_hostile.c — clients that break the protocol on purpose, speaking it raw (no libbitmix).
 *
 * Bad submissions get an error completion and nothing else; corrupted ring indices, garbage
 * control packets and descriptors sent to the daemon cost only the offender its connection;
 * regions that are not sealed memfds are refused; a client that overflows its rings, exceeds
 * limits.in_flight or dies by SIGKILL mid-request hurts only itself; 10,000 connections leave
 * the daemon's descriptors and RSS (from /proc) where they were. After each offence a
 * well-behaved libbitmix client must still be served.
 * Usage: test_hostile BITMIXD MODEL.bmx
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
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "bitmix.h"
#include "bitmix_proto.h"
#include "daemon_harness.h"

static const char *bitmixd_path, *model_path;
static int baseline_fds; /* the daemon's descriptors before any offence */

struct raw {
	int fd;
	int arena_fd, submit_efd, complete_efd;
	uint8_t *arena;
	struct bitmix_hello_reply hello;
	struct bitmix_model_desc model;
	uint32_t seq;
	uint32_t sq_tail, cq_head;
};

static int raw_call(struct raw *c, void *req, size_t len, uint16_t type, void *rep, size_t rep_max,
		    int *fds, int max_fds)
{
	struct bitmix_msg_hdr *h = req;
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		uint64_t align;
	} control;
	struct iovec iov = { rep, rep_max };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			      .msg_controllen = sizeof(control.buf) };
	ssize_t n;
	int got = 0;

	*h = (struct bitmix_msg_hdr){ BITMIX_MSG_MAGIC, BITMIX_PROTO_VERSION, type, (uint32_t)len,
				      ++c->seq };
	if (send(c->fd, req, len, 0) != (ssize_t)len)
		return -errno;
	n = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC);
	if (n <= 0)
		return n == 0 ? -ECONNRESET : -errno;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		for (size_t i = 0; i < k && got < max_fds; i++, got++)
			memcpy(&fds[got], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
	}
	return ((struct bitmix_reply *)rep)->status;
}

static void raw_connect(struct raw *c, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct bitmix_hello_req hello = { 0 };
	struct bitmix_open_req open_req = { 0 };
	uint8_t buf[BITMIX_MSG_MAX];
	int fds[4];

	memset(c, 0, sizeof(*c));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	fds[1] = fds[2] = -1;
	assert_int_equal(raw_call(c, &hello, sizeof(hello), BITMIX_MSG_HELLO, &c->hello,
				  sizeof(c->hello), fds, 3), 0);
	c->arena_fd = fds[0];
	c->submit_efd = fds[1];
	c->complete_efd = fds[2];
	assert_true(c->hello.doorbell == BITMIX_DOORBELL_FUTEX ? fds[1] < 0 : fds[2] >= 0);
	c->arena = mmap(NULL, c->hello.arena_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->arena_fd, 0);
	assert_true(c->arena != MAP_FAILED);
	/* The arena is sealed against resizing: a client cannot make the daemon fault. */
	assert_int_equal(ftruncate(c->arena_fd, 4096), -1);
	snprintf(open_req.name, sizeof(open_req.name), "fmnist");
	assert_int_equal(raw_call(c, &open_req, sizeof(open_req), BITMIX_MSG_OPEN_MODEL, buf,
				  sizeof(buf), fds, 2), 0);
	c->model = ((struct bitmix_open_reply *)buf)->model;
	/* The control page cannot be mapped writable by a client. */
	assert_true(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0) == MAP_FAILED);
	close(fds[0]);
	close(fds[1]);
}

static void raw_close(struct raw *c)
{
	munmap(c->arena, c->hello.arena_size);
	close(c->arena_fd);
	if (c->submit_efd >= 0)
		close(c->submit_efd);
	if (c->complete_efd >= 0)
		close(c->complete_efd);
	close(c->fd);
}

/* Ring the daemon's bell whether or not it sleeps (a client may; it only costs a syscall). */
static void raw_ring(struct raw *c)
{
	struct bitmix_arena_hdr *h = (void *)c->arena;
	uint64_t one = 1;

	if (c->hello.doorbell == BITMIX_DOORBELL_FUTEX)
		assert_true(syscall(SYS_futex, &h->sq_tail, FUTEX_WAKE, 1, NULL, NULL, 0) >= 0);
	else
		assert_int_equal(write(c->submit_efd, &one, sizeof(one)), sizeof(one));
}

static void raw_submit(struct raw *c, const struct bitmix_sqe *e)
{
	struct bitmix_arena_hdr *h = (void *)c->arena;
	struct bitmix_sqe *sq = (void *)(c->arena + c->hello.sq_offset);

	sq[c->sq_tail & (c->hello.sq_entries - 1)] = *e;
	bitmix_store_release(&h->sq_tail, ++c->sq_tail);
	raw_ring(c);
}

/* Wait for the next CQE; returns 0 with it in *out, or -ETIMEDOUT. */
static int raw_reap(struct raw *c, struct bitmix_cqe *out)
{
	struct bitmix_arena_hdr *h = (void *)c->arena;
	struct bitmix_cqe *cq = (void *)(c->arena + c->hello.cq_offset);

	for (int i = 0; i < 3000; i++) { /* 30 s: big batches under ASan are slow */
		if (bitmix_load_acquire(&h->cq_tail) != c->cq_head) {
			*out = cq[c->cq_head & (c->hello.cq_entries - 1)];
			bitmix_store_release(&h->cq_head, ++c->cq_head);
			return 0;
		}
		if (c->complete_efd < 0) {
			usleep(10 * 1000); /* never says it sleeps, so the daemon never rings */
			continue;
		}
		if (poll(&(struct pollfd){ .fd = c->complete_efd, .events = POLLIN }, 1, 10) == 1) {
			uint64_t v;

			/* Reset the bell (the daemon made it non-blocking) or poll returns at once. */
			if (read(c->complete_efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				return -errno;
		}
	}
	return -ETIMEDOUT;
}

static struct bitmix_sqe good_sqe(const struct raw *c)
{
	uint64_t in = (uint64_t)c->model.input_h * c->model.input_w * c->model.input_c * 4;

	return (struct bitmix_sqe){
		.user_data = 7, .model_id = c->model.model_id, .batch = 1,
		.in_offset = 0, .in_length = in,
		.out_offset = (in + 63) / 64 * 64, .out_length = c->model.output_size * 4,
	};
}

/* The daemon still serves a well-behaved client. */
static void assert_daemon_serves(const char *socket_path)
{
	struct bitmix_model *m;
	struct bitmix *bm;
	float *in, *out;

	assert_int_equal(bitmix_connect(socket_path, &bm), 0);
	assert_int_equal(bitmix_open_model(bm, "fmnist", &m), 0);
	in = bitmix_tensor_alloc(bm, 28 * 28 * 4);
	out = bitmix_tensor_alloc(bm, 10 * 4);
	memset(in, 0, 28 * 28 * 4);
	assert_int_equal(bitmix_infer(m, in, out, 1, NULL), 0);
	bitmix_close(bm);
}

enum mutation {
	M_NONE, M_MODEL, M_BATCH0, M_BATCH_HUGE, M_IN_LENGTH, M_OUT_SHORT, M_IN_PAST_END,
	M_OUT_OVERFLOW, M_MISALIGNED, M_PRECISION, M_FLAGS, M_RESERVED, M_OPCODE, M_REGION,
	M_NOP_MODEL, M_NOP_PAST_END,
};

static void mutate(struct bitmix_sqe *e, enum mutation m, uint64_t data_size)
{
	switch (m) {
	case M_NONE: break;
	case M_MODEL: e->model_id = 999; break;
	case M_BATCH0: e->batch = 0; break;
	case M_BATCH_HUGE: e->batch = 1u << 31; break;
	case M_IN_LENGTH: e->in_length -= 4; break;
	case M_OUT_SHORT: e->out_length -= 4; break;
	case M_IN_PAST_END: e->in_offset = data_size - 64; break;
	case M_OUT_OVERFLOW: e->out_offset = UINT64_MAX - 63; break;
	case M_MISALIGNED: e->in_offset = 4; break;
	case M_PRECISION: e->precision = 200; break;
	case M_FLAGS: e->flags = 1; break;
	case M_RESERVED: e->precision_arg = 5; break;
	case M_OPCODE: e->opcode = 77; break;
	case M_REGION: e->in_region = 9; break;
	case M_NOP_MODEL: e->opcode = BITMIX_OP_NOP; break; /* a NOP names no model */
	case M_NOP_PAST_END:
		*e = (struct bitmix_sqe){ .opcode = BITMIX_OP_NOP, .in_offset = data_size,
					  .in_length = 64 };
		break;
	}
}

/* Each bad field gets its own error completion; the connection keeps working. */
static void test_bad_submissions_get_errors(void **state)
{
	static const struct {
		enum mutation m;
		int status;
	} cases[] = {
		{ M_NONE, 0 }, { M_MODEL, -EBADF }, { M_BATCH0, -EINVAL },
		{ M_BATCH_HUGE, -EINVAL }, { M_IN_LENGTH, -EMSGSIZE }, { M_OUT_SHORT, -EMSGSIZE },
		{ M_IN_PAST_END, -ERANGE }, { M_OUT_OVERFLOW, -ERANGE }, { M_MISALIGNED, -ERANGE },
		{ M_PRECISION, -EOPNOTSUPP }, { M_FLAGS, -EOPNOTSUPP }, { M_RESERVED, -EOPNOTSUPP },
		{ M_OPCODE, -EOPNOTSUPP }, { M_REGION, -ENXIO }, { M_NOP_MODEL, -EINVAL },
		{ M_NOP_PAST_END, -ERANGE }, { M_NONE, 0 },
	};
	struct daemon_harness *h = *state;
	struct bitmix_cqe cqe;
	struct raw c;

	/* The harness's readiness probe may still be closing: take the low point of 300 ms. */
	baseline_fds = harness_fd_count(h);
	for (int i = 0; i < 30; i++, usleep(10 * 1000))
		if (harness_fd_count(h) < baseline_fds)
			baseline_fds = harness_fd_count(h);
	assert_true(baseline_fds > 0);
	raw_connect(&c, h->socket);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct bitmix_sqe e = good_sqe(&c);

		mutate(&e, cases[i].m, c.hello.data_size);
		e.user_data = 1000 + i;
		raw_submit(&c, &e);
		assert_int_equal(raw_reap(&c, &cqe), 0);
		assert_int_equal(cqe.user_data, 1000 + i);
		if (cqe.status != cases[i].status)
			fail_msg("case %zu: status %d, expected %d", i, cqe.status, cases[i].status);
	}
	raw_close(&c);
	assert_daemon_serves(h->socket);
}

/* A submission tail beyond the ring costs the client its connection, nobody else's. */
static void test_corrupted_ring_index(void **state)
{
	struct daemon_harness *h = *state;
	struct bitmix_arena_hdr *hdr;
	struct raw c;
	char byte;

	raw_connect(&c, h->socket);
	hdr = (void *)c.arena;
	bitmix_store_release(&hdr->sq_tail, c.sq_tail + c.hello.sq_entries + 5);
	raw_ring(&c);
	assert_int_equal(poll(&(struct pollfd){ .fd = c.fd, .events = POLLIN }, 1, 5000), 1);
	assert_int_equal(recv(c.fd, &byte, 1, 0), 0); /* hung up on */
	assert_true(harness_log_contains(h, "corrupted submission ring index", 1000));
	raw_close(&c);

	/* The completion side too: a CQ head far ahead of the tail. */
	raw_connect(&c, h->socket);
	hdr = (void *)c.arena;
	bitmix_store_release(&hdr->cq_head, 12345);
	{
		struct bitmix_sqe e = good_sqe(&c);

		raw_submit(&c, &e);
	}
	assert_int_equal(poll(&(struct pollfd){ .fd = c.fd, .events = POLLIN }, 1, 5000), 1);
	assert_int_equal(recv(c.fd, &byte, 1, 0), 0);
	assert_true(harness_log_contains(h, "corrupted completion ring index", 1000));
	raw_close(&c);
	assert_daemon_serves(h->socket);
}

/* Garbage, lies about length, a future version, and descriptors: each only hurts the sender. */
static void test_garbage_control_messages(void **state)
{
	struct daemon_harness *h = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", h->socket);
	for (int kind = 0; kind < 5; kind++) {
		struct bitmix_msg_hdr m = { BITMIX_MSG_MAGIC, BITMIX_PROTO_VERSION, BITMIX_MSG_STATUS,
					    sizeof(m), 1 };
		uint8_t reply[BITMIX_MSG_MAX];
		int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		ssize_t n;

		assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		switch (kind) {
		case 0: m.magic = 0xdeadbeef; break;
		case 1: m.length = 3000; break;
		case 2: m.version = 99; break;
		case 3: m.type = 77; break;
		case 4: break;
		}
		if (kind == 4) {
			/* A descriptor (our own stdin) sent to the daemon. */
			union {
				char buf[CMSG_SPACE(sizeof(int))];
				uint64_t align;
			} control = { 0 };
			struct iovec iov = { &m, sizeof(m) };
			struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
					      .msg_control = control.buf,
					      .msg_controllen = sizeof(control.buf) };
			struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
			int zero = 0;

			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &zero, sizeof(int));
			assert_int_equal(sendmsg(fd, &msg, 0), sizeof(m));
		} else {
			assert_int_equal(send(fd, &m, sizeof(m), 0), sizeof(m));
		}
		n = recv(fd, reply, sizeof(reply), 0);
		if (kind == 2 || kind == 3) {
			/* Well-formed but unsupported: an error reply. */
			assert_true(n >= (ssize_t)sizeof(struct bitmix_reply));
			assert_int_equal(((struct bitmix_reply *)reply)->status,
					 kind == 2 ? -EPROTONOSUPPORT : -EOPNOTSUPP);
		} else {
			assert_int_equal(n, 0); /* malformed: hung up on */
		}
		close(fd);
	}
	assert_daemon_serves(h->socket);
	/* Every offender's descriptors (socket, arena, doorbells) went with it. */
	for (int i = 0; i < 200 && harness_fd_count(h) != baseline_fds; i++)
		usleep(10 * 1000);
	assert_int_equal(harness_fd_count(h), baseline_fds);
}

/* Connect without HELLO (one daemon descriptor) and send STATUS; -1 if connect failed. */
static int status_connection(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct bitmix_msg_hdr m = { BITMIX_MSG_MAGIC, BITMIX_PROTO_VERSION, BITMIX_MSG_STATUS,
				    sizeof(m), 1 };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || send(fd, &m, sizeof(m), 0) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Did the daemon answer on FD within MS? */
static bool answered(int fd, int ms)
{
	uint8_t reply[BITMIX_MSG_MAX];

	if (poll(&(struct pollfd){ .fd = fd, .events = POLLIN }, 1, ms) != 1)
		return false;
	return recv(fd, reply, sizeof(reply), 0) >= (ssize_t)sizeof(struct bitmix_reply) &&
	       ((struct bitmix_reply *)reply)->status == 0;
}

/*
 * A flood of connections past the daemon's descriptor limit: the daemon keeps serving those it
 * has, does not spin on the listening socket, and takes the waiting client once others leave.
 * Each connection here costs the daemon exactly one descriptor (no HELLO, so no arena).
 */
static void test_connection_flood_past_fd_limit(void **state)
{
	enum { MAX = 64 };
	int fds[MAX], n, blocked = -1;
	struct daemon_harness h;
	long cpu0, cpu1;

	(void)state;
	assert_int_equal(harness_start_limited(&h, bitmixd_path, model_path, NULL, 48), 0);
	for (n = 0; n < MAX && blocked < 0; n++) {
		fds[n] = status_connection(h.socket);
		assert_true(fds[n] >= 0);
		if (!answered(fds[n], 500))
			blocked = n; /* out of descriptors: this one waits in the listen backlog */
	}
	assert_true(blocked > 0);
	assert_true(harness_log_contains(&h, "retrying in 100 ms", 1000));
	/* Waiting costs the daemon almost no CPU: no busy retry loop. */
	cpu0 = harness_cpu_ticks(&h);
	usleep(500 * 1000);
	cpu1 = harness_cpu_ticks(&h);
	assert_true(cpu0 >= 0 && cpu1 - cpu0 <= 10); /* <= 100 ms of CPU in 500 ms at 100 Hz */
	/* Those already connected are still served. */
	{
		struct bitmix_msg_hdr m = { BITMIX_MSG_MAGIC, BITMIX_PROTO_VERSION, BITMIX_MSG_STATUS,
					    sizeof(m), 2 };

		assert_int_equal(send(fds[0], &m, sizeof(m), 0), sizeof(m));
		assert_true(answered(fds[0], 2000));
	}
	/* Two leave; the waiting client gets in and is answered. */
	close(fds[1]);
	close(fds[2]);
	fds[1] = fds[2] = -1;
	assert_true(answered(fds[blocked], 3000));
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	assert_int_equal(harness_stop(&h), 0);
	harness_cleanup(&h);
}

/* Wait until the daemon holds BASELINE_FDS descriptors again (closing is asynchronous). */
static void assert_fds_return(const struct daemon_harness *h)
{
	for (int i = 0; i < 300 && harness_fd_count(h) != baseline_fds; i++)
		usleep(10 * 1000);
	assert_int_equal(harness_fd_count(h), baseline_fds);
}

static int memfd_of(size_t size, unsigned seals)
{
	int fd = memfd_create("hostile", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	if (seals)
		assert_int_equal(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

/* Register FD and expect STATUS with WORDS in the message. */
static void expect_region_refused(struct bitmix *bm, int fd, size_t size, int status, const char *words)
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

	assert_int_equal(bitmix_connect(h->socket, &bm), 0);
	expect_region_refused(bm, memfd_of(size, 0), size, -EINVAL, "not sealed");
	expect_region_refused(bm, memfd_of(size, F_SEAL_SHRINK), size, -EINVAL, "not sealed");
	assert_int_equal(pipe(pipefd), 0);
	close(pipefd[1]);
	expect_region_refused(bm, pipefd[0], size, -EINVAL, "not a memfd (it is pipe:");
	snprintf(file, sizeof(file), "%s/plain-file", h->dir);
	fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	expect_region_refused(bm, fd, size, -EINVAL, "not a memfd");
	expect_region_refused(bm, memfd_of(size, F_SEAL_SHRINK | F_SEAL_GROW), size * 2, -EINVAL,
			      "the request says");
	fd = memfd_of(size, F_SEAL_SHRINK | F_SEAL_GROW);
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
	expect_region_refused(bm, open(fdpath, O_RDONLY | O_CLOEXEC), size, -EACCES, "read-write");
	close(fd);
	expect_region_refused(bm, memfd_of(size, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE),
			      size, -EPERM, "cannot map");
	/* A good region: sealed, so shrinking it after registration fails; it keeps working. */
	fd = memfd_of(size, F_SEAL_SHRINK | F_SEAL_GROW);
	addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(addr != MAP_FAILED);
	region = bitmix_region_register(bm, fd, addr, size);
	assert_true(region >= 1);
	assert_int_equal(ftruncate(fd, 4096), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)size), 0);
	assert_int_equal(bitmix_prep_nop(bm, addr, size, 1), 0);
	assert_int_equal(bitmix_submit(bm), 1);
	assert_int_equal(bitmix_reap(bm, &done, 1, -1), 1);
	assert_int_equal(done.status, 0);
	close(fd);
	munmap(addr, size);
	bitmix_close(bm);
	assert_daemon_serves(h->socket);
	assert_fds_return(h);
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
				  sizeof(reply), NULL, 0), -ENXIO);
	/* REGISTER without its descriptor, and with a short message. */
	req = (struct bitmix_region_req){ .size = 4096 };
	assert_int_equal(raw_call(&c, &req, sizeof(req), BITMIX_MSG_REGISTER_REGION, reply,
				  sizeof(reply), NULL, 0), -EBADF);
	assert_int_equal(raw_call(&c, &req, sizeof(req) - 8, BITMIX_MSG_REGISTER_REGION, reply,
				  sizeof(reply), NULL, 0), -EBADMSG);
	/* Two descriptors at once is a protocol violation: hung up on, both closed. */
	{
		union {
			char buf[CMSG_SPACE(2 * sizeof(int))];
			uint64_t align;
		} control = { 0 };
		struct iovec iov = { &req, sizeof(req) };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
				      .msg_controllen = sizeof(control.buf) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

		fds[0] = memfd_of(4096, F_SEAL_SHRINK | F_SEAL_GROW);
		fds[1] = memfd_of(4096, F_SEAL_SHRINK | F_SEAL_GROW);
		req.hdr = (struct bitmix_msg_hdr){ BITMIX_MSG_MAGIC, BITMIX_PROTO_VERSION,
						   BITMIX_MSG_REGISTER_REGION, sizeof(req), 99 };
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, sizeof(fds));
		assert_int_equal(sendmsg(c.fd, &msg, 0), sizeof(req));
		assert_int_equal(recv(c.fd, &byte, 1, 0), 0);
		close(fds[0]);
		close(fds[1]);
	}
	raw_close(&c);
	assert_daemon_serves(h->socket);
	assert_fds_return(h);
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
		sq[c.sq_tail++ & (c.hello.sq_entries - 1)] = (struct bitmix_sqe){ .user_data = i,
										  .opcode = BITMIX_OP_NOP };
	bitmix_store_release(&hdr->sq_tail, c.sq_tail);
	raw_ring(&c);
	for (int i = 0; i < 500 && bitmix_load_acquire(&hdr->cq_tail) != n; i++)
		usleep(1000);
	assert_int_equal(bitmix_load_acquire(&hdr->cq_tail), n);
	/* Five more, the completion ring full: not taken. */
	for (uint32_t i = 0; i < 5; i++)
		sq[c.sq_tail++ & (c.hello.sq_entries - 1)] = (struct bitmix_sqe){ .user_data = n + i,
										  .opcode = BITMIX_OP_NOP };
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
	assert_fds_return(h);
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

	for (int i = 0; i < 500; i++) {
		assert_int_equal(bitmix_connect(h->socket, &bm), 0);
		bitmix_close(bm);
	}
	assert_fds_return(h);
	rss0 = harness_rss_kib(h);
	for (int i = 0; i < 10000; i++) {
		int r = bitmix_connect(h->socket, &bm);

		if (r < 0)
			fail_msg("cycle %d: %s", i, bitmix_strerror(NULL));
		bitmix_close(bm);
	}
	assert_fds_return(h);
	rss1 = harness_rss_kib(h);
	print_message("daemon RSS %ld KiB before, %ld KiB after 10000 connections\n", rss0, rss1);
	assert_true(rss0 > 0 && rss1 > 0);
	assert_true(rss1 - rss0 < 4096);
	assert_daemon_serves(h->socket);
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
	assert_int_equal(harness_start(&h, bitmixd_path, model_path, "limits:\n  in_flight: 2\n"), 0);
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
	assert_int_equal(harness_stop(&h), 0);
	harness_cleanup(&h);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_submissions_get_errors),
		cmocka_unit_test(test_corrupted_ring_index),
		cmocka_unit_test(test_garbage_control_messages),
		cmocka_unit_test(test_region_refusals),
		cmocka_unit_test(test_region_messages),
		cmocka_unit_test(test_ring_overflow),
		cmocka_unit_test(test_sigkill_mid_request),
		cmocka_unit_test(test_connect_cycles),
	};
	const struct CMUnitTest alone[] = {
		cmocka_unit_test(test_connection_flood_past_fd_limit),
		cmocka_unit_test(test_in_flight_limit),
	};
	char asan[512];
	int failed;

	if (argc != 3) {
		fprintf(stderr, "usage: %s BITMIXD MODEL.bmx\n", argv[0]);
		return 2;
	}
	bitmixd_path = harness_bitmixd = argv[1];
	model_path = harness_model = argv[2];
	/* Under ASan, a small quarantine lets the daemon's RSS settle (test_connect_cycles). */
	snprintf(asan, sizeof(asan), "%s%squarantine_size_mb=1", getenv("ASAN_OPTIONS") ?: "",
		 getenv("ASAN_OPTIONS") ? ":" : "");
	setenv("ASAN_OPTIONS", asan, 1);
	failed = cmocka_run_group_tests_name("hostile", tests, harness_group_setup, harness_group_teardown);
	return failed + cmocka_run_group_tests_name("flood", alone, NULL, NULL);
}
