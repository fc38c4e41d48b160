/* SPDX-License-Identifier: MIT */
/*
 * test_connections.c — connections that say nothing: they count against their uid from the
 * moment they connect, are dropped after limits.handshake_timeout_ms, and however many one
 * unprivileged user opens, root's `bitmixctl status` still gets in (issue 21, defect 1).
 * Usage: test_connections BITMIXD MODEL.bmx BITMIXCTL
 *
 * Every wait here is a safety net far above the slowest run: the assertions are about what
 * happened, never about how fast.
 */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "bitmix.h"
#include "bitmix_proto.h"
#include "daemon_harness.h"
#include "raw_client.h"

#define SAFETY_MS 30000

/* Wait (at most the safety net) for FD to have something to read: a reply or the hang-up. */
static bool readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, timeout_ms) == 1;
}

/* The unasked refusal a connection over a limit finds: status and text. */
static int read_refusal(int fd, char *text, size_t size)
{
	struct bitmix_reply r;
	ssize_t n = recv(fd, &r, sizeof(r), 0);

	if (n != (ssize_t)sizeof(r) || r.hdr.magic != BITMIX_MSG_MAGIC || r.hdr.seq != 0)
		return n == 0 ? -ECONNRESET : -EPROTO;
	r.error[sizeof(r.error) - 1] = 0;
	snprintf(text, size, "%s", r.error);
	return r.status;
}

struct silent_args {
	const char *socket;
	int per_uid;
};

/* As nobody: PER_UID + 4 silent connections; the first PER_UID stay, the others are refused. */
static int silent_over_limit(void *arg)
{
	const struct silent_args *a = arg;
	int fds[64], n = a->per_uid + 4;
	char text[256];

	for (int i = 0; i < n; i++)
		if ((fds[i] = raw_socket(a->socket)) < 0)
			return 20;
	for (int i = a->per_uid; i < n; i++) {
		if (!readable(fds[i], SAFETY_MS))
			return 21; /* before the fix: a silent connection was never refused */
		if (read_refusal(fds[i], text, sizeof(text)) != -EUSERS ||
		    !strstr(text, "limits.connections_per_uid"))
			return 22;
	}
	for (int i = 0; i < a->per_uid; i++)
		if (readable(fds[i], 0))
			return 23; /* within the limit and the deadline: nothing to read */
	for (int i = 0; i < n; i++)
		close(fds[i]);
	return 0;
}

/* Silent connections count against their uid at connect, not at their first message. */
static void test_silent_count_at_connect(void **state)
{
	struct daemon_harness h;
	struct silent_args a = { .per_uid = 4 };
	char out[4096];

	(void)state;
	assert_int_equal(
		harness_start(&h, harness_bitmixd, harness_model,
			      "limits: {connections_per_uid: 4, handshake_timeout_ms: 600000}\n"),
		0);
	a.socket = h.socket;
	harness_run_as_nobody(silent_over_limit, &a);
	assert_true(harness_log_contains(&h, "refusing a client", 5000));
	assert_int_equal(harness_ctl(&h, out, sizeof(out), "status"), 0);
	harness_finish(&h);
}

#define FLOOD 1100 /* more connections than BMX_MAX_SESSIONS (1024) */

/* As nobody: open FLOOD silent connections, tell the parent, hold them until it says so. */
static void flood_child(const char *socket, int ready_fd, int done_fd)
{
	struct rlimit rl = { FLOOD + 64, FLOOD + 64 };
	char c = 1;

	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || setgroups(0, NULL) < 0 ||
	    setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
		_exit(10);
	for (int i = 0; i < FLOOD; i++)
		(void)raw_socket(socket); /* kept open; refused ones connect and are hung up on */
	if (write(ready_fd, &c, 1) != 1)
		_exit(11);
	(void)read(done_fd, &c, 1);
	_exit(0);
}

/* One user fills every place it may; root still gets in (the administrators' reserve). */
static void test_root_gets_in(void **state)
{
	struct daemon_harness h;
	int ready[2], done[2], status;
	char out[4096], c;
	pid_t pid;

	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(harness_start_limited(&h, harness_bitmixd, harness_model,
					       "limits: {connections_per_uid: 1024, "
					       "handshake_timeout_ms: 600000}\n",
					       4096),
			 0);
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(done), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(ready[0]);
		close(done[1]); /* else its own copy keeps the read below from ever ending */
		flood_child(h.socket, ready[1], done[0]);
	}
	close(ready[1]);
	close(done[0]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	/* Before the fix: "Broken pipe", the 1024 places all taken by nobody's silent sockets. */
	status = harness_ctl(&h, out, sizeof(out), "status");
	if (status != 0)
		fprintf(stderr, "bitmixctl status: %s", out);
	close(done[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(harness_ctl(&h, out, sizeof(out), "status"), 0);
	assert_true(harness_log_contains(&h, "kept for administrators", 5000));
	close(ready[0]);
	harness_finish(&h);
}

/* A connection that says nothing for limits.handshake_timeout_ms is closed; a client is not. */
static void test_handshake_deadline(void **state)
{
	struct daemon_harness h;
	struct bitmix_status st;
	struct bitmix *bm;
	char buf[64];
	int fds[3];

	(void)state;
	assert_int_equal(harness_start(&h, harness_bitmixd, harness_model,
				       "limits: {handshake_timeout_ms: 200}\n"),
			 0);
	assert_int_equal(bitmix_connect(h.socket, &bm), 0);
	for (int i = 0; i < 3; i++)
		assert_true((fds[i] = raw_socket(h.socket)) >= 0);
	for (int i = 0; i < 3; i++) {
		assert_true(readable(fds[i], SAFETY_MS)); /* before the fix: never */
		assert_int_equal(recv(fds[i], buf, sizeof(buf), 0), 0);
		close(fds[i]);
	}
	assert_true(
		harness_log_contains(&h, "sent nothing within limits.handshake_timeout_ms", 5000));
	/* The client that said HELLO outlives the deadline many times over. */
	usleep(1000 * 1000);
	assert_int_equal(bitmix_get_status(bm, &st), 0);
	bitmix_close(bm);
	harness_finish(&h);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_silent_count_at_connect),
		cmocka_unit_test(test_root_gets_in),
		cmocka_unit_test(test_handshake_deadline),
	};

	if (harness_args(argc, argv, true) < 0)
		return 2;
	return cmocka_run_group_tests_name("connections", tests, NULL, NULL);
}
