/* SPDX-License-Identifier: MIT */
/*
 * test_hostile.c — clients that break the protocol on purpose, speaking it raw (no libbitmix).
 *
 * Bad submissions get an error completion and nothing else; corrupted ring indices, garbage
 * control packets and descriptors sent to the daemon cost only the offender its connection;
 * the data plane's offences are in test_hostile_ipc.c. After each offence a well-behaved
 * libbitmix client must still be served.
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
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "bitmix.h"
#include "bitmix_proto.h"
#include "daemon_harness.h"
#include "raw_client.h"

static int baseline_fds; /* the daemon's descriptors before any offence */

enum mutation {
	M_NONE,
	M_MODEL,
	M_BATCH0,
	M_BATCH_HUGE,
	M_IN_LENGTH,
	M_OUT_SHORT,
	M_IN_PAST_END,
	M_OUT_OVERFLOW,
	M_MISALIGNED,
	M_PRECISION,
	M_FLAGS,
	M_RESERVED,
	M_OPCODE,
	M_REGION,
	M_NOP_MODEL,
	M_NOP_PAST_END,
};

static void mutate(struct bitmix_sqe *e, enum mutation m, uint64_t data_size)
{
	switch (m) {
	case M_NONE:
		break;
	case M_MODEL:
		e->model_id = 999;
		break;
	case M_BATCH0:
		e->batch = 0;
		break;
	case M_BATCH_HUGE:
		e->batch = 1u << 31;
		break;
	case M_IN_LENGTH:
		e->in_length -= 4;
		break;
	case M_OUT_SHORT:
		e->out_length -= 4;
		break;
	case M_IN_PAST_END:
		e->in_offset = data_size - 64;
		break;
	case M_OUT_OVERFLOW:
		e->out_offset = UINT64_MAX - 63;
		break;
	case M_MISALIGNED:
		e->in_offset = 4;
		break;
	case M_PRECISION:
		e->precision = 200;
		break;
	case M_FLAGS:
		e->flags = 1;
		break;
	case M_RESERVED:
		e->precision_arg = 5;
		break;
	case M_OPCODE:
		e->opcode = 77;
		break;
	case M_REGION:
		e->in_region = 9;
		break;
	case M_NOP_MODEL:
		e->opcode = BITMIX_OP_NOP;
		break; /* a NOP names no model */
	case M_NOP_PAST_END:
		*e = (struct bitmix_sqe){ .opcode = BITMIX_OP_NOP,
					  .in_offset = data_size,
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
		{ M_NONE, 0 },
		{ M_MODEL, -EBADF },
		{ M_BATCH0, -EINVAL },
		{ M_BATCH_HUGE, -EINVAL },
		{ M_IN_LENGTH, -EMSGSIZE },
		{ M_OUT_SHORT, -EMSGSIZE },
		{ M_IN_PAST_END, -ERANGE },
		{ M_OUT_OVERFLOW, -ERANGE },
		{ M_MISALIGNED, -ERANGE },
		{ M_PRECISION, -EOPNOTSUPP },
		{ M_FLAGS, -EOPNOTSUPP },
		{ M_RESERVED, -EOPNOTSUPP },
		{ M_OPCODE, -EOPNOTSUPP },
		{ M_REGION, -ENXIO },
		{ M_NOP_MODEL, -EINVAL },
		{ M_NOP_PAST_END, -ERANGE },
		{ M_NONE, 0 },
	};
	struct daemon_harness *h = *state;
	struct bitmix_cqe cqe;
	struct raw c;

	baseline_fds = harness_fd_baseline(h);
	raw_connect(&c, h->socket);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct bitmix_sqe e = good_sqe(&c);

		mutate(&e, cases[i].m, c.hello.data_size);
		e.user_data = 1000 + i;
		raw_submit(&c, &e);
		assert_int_equal(raw_reap(&c, &cqe), 0);
		assert_int_equal(cqe.user_data, 1000 + i);
		if (cqe.status != cases[i].status)
			fail_msg("case %zu: status %d, expected %d", i, cqe.status,
				 cases[i].status);
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

	for (int kind = 0; kind < 5; kind++) {
		struct bitmix_msg_hdr m = raw_hdr(BITMIX_MSG_STATUS, sizeof(m), 1);
		uint8_t reply[BITMIX_MSG_MAX];
		int fd = raw_socket(h->socket);
		ssize_t n;

		assert_true(fd >= 0);
		switch (kind) {
		case 0:
			m.magic = 0xdeadbeef;
			break;
		case 1:
			m.length = 3000;
			break;
		case 2:
			m.version = 99;
			break;
		case 3:
			m.type = 77;
			break;
		case 4:
			break;
		}
		if (kind == 4) {
			int zero = 0; /* a descriptor (our own stdin) sent to the daemon */

			assert_int_equal(raw_send_fds(fd, &m, sizeof(m), &zero, 1), sizeof(m));
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
	harness_assert_fds(h, baseline_fds);
}

/* Connect without HELLO (one daemon descriptor) and send STATUS; -1 if connect failed. */
static int status_connection(const char *path)
{
	struct bitmix_msg_hdr m = raw_hdr(BITMIX_MSG_STATUS, sizeof(m), 1);
	int fd = raw_socket(path);

	if (fd < 0)
		return -1;
	if (send(fd, &m, sizeof(m), 0) < 0) {
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
	assert_int_equal(harness_start_limited(&h, harness_bitmixd, harness_model, NULL, 48), 0);
	harness_wait_cost_complete(&h, "fmnist"); /* its measuring thread is no busy loop */
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
		struct bitmix_msg_hdr m = raw_hdr(BITMIX_MSG_STATUS, sizeof(m), 2);

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
	harness_finish(&h);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_submissions_get_errors),
		cmocka_unit_test(test_corrupted_ring_index),
		cmocka_unit_test(test_garbage_control_messages),
	};
	const struct CMUnitTest alone[] = {
		cmocka_unit_test(test_connection_flood_past_fd_limit),
	};
	int failed;

	harness_skip_without_doorbell();
	if (harness_args(argc, argv, false) < 0)
		return 2;
	failed = cmocka_run_group_tests_name("hostile", tests, harness_group_setup,
					     harness_group_teardown);
	return failed + cmocka_run_group_tests_name("flood", alone, NULL, NULL);
}
