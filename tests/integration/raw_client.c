/* SPDX-License-Identifier: MIT */
/*
 * raw_client.c — the hand-made protocol client of the hostile tests (raw_client.h).
 */
#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "bitmix.h"
#include "raw_client.h"

int raw_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

ssize_t raw_send_fds(int fd, const void *msg, size_t len, const int *fds, int n)
{
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		uint64_t align;
	} control = { 0 };
	struct iovec iov = { (void *)msg, len };
	struct msghdr m = { .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = control.buf,
			    .msg_controllen = CMSG_SPACE((size_t)n * sizeof(int)) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);

	if (n < 1 || n > 4)
		return -EINVAL;
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, (size_t)n * sizeof(int));
	return sendmsg(fd, &m, 0);
}

int raw_call(struct raw *c, void *req, size_t len, uint16_t type, void *rep, size_t rep_max,
	     int *fds, int max_fds)
{
	struct bitmix_msg_hdr *h = req;
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		uint64_t align;
	} control;
	struct iovec iov = { rep, rep_max };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = control.buf,
			      .msg_controllen = sizeof(control.buf) };
	ssize_t n;
	int got = 0;

	*h = raw_hdr(type, (uint32_t)len, ++c->seq);
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

void raw_connect(struct raw *c, const char *path)
{
	struct bitmix_hello_req hello = { 0 };
	struct bitmix_open_req open_req = { 0 };
	uint8_t buf[BITMIX_MSG_MAX];
	int fds[4];

	memset(c, 0, sizeof(*c));
	c->fd = raw_socket(path);
	assert_true(c->fd >= 0);
	fds[1] = fds[2] = -1;
	assert_int_equal(raw_call(c, &hello, sizeof(hello), BITMIX_MSG_HELLO, &c->hello,
				  sizeof(c->hello), fds, 3),
			 0);
	c->arena_fd = fds[0];
	c->submit_efd = fds[1];
	c->complete_efd = fds[2];
	assert_true(c->hello.doorbell == BITMIX_DOORBELL_FUTEX ? fds[1] < 0 : fds[2] >= 0);
	c->arena =
		mmap(NULL, c->hello.arena_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->arena_fd, 0);
	assert_true(c->arena != MAP_FAILED);
	/* The arena is sealed against resizing: a client cannot make the daemon fault. */
	assert_int_equal(ftruncate(c->arena_fd, 4096), -1);
	snprintf(open_req.name, sizeof(open_req.name), "fmnist");
	assert_int_equal(raw_call(c, &open_req, sizeof(open_req), BITMIX_MSG_OPEN_MODEL, buf,
				  sizeof(buf), fds, 2),
			 0);
	c->model = ((struct bitmix_open_reply *)buf)->model;
	/* The control page cannot be mapped writable by a client. */
	assert_true(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0) == MAP_FAILED);
	close(fds[0]);
	close(fds[1]);
}

void raw_close(struct raw *c)
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
void raw_ring(struct raw *c)
{
	struct bitmix_arena_hdr *h = (void *)c->arena;
	uint64_t one = 1;

	if (c->hello.doorbell == BITMIX_DOORBELL_FUTEX)
		assert_true(syscall(SYS_futex, &h->sq_tail, FUTEX_WAKE, 1, NULL, NULL, 0) >= 0);
	else
		assert_int_equal(write(c->submit_efd, &one, sizeof(one)), sizeof(one));
}

void raw_submit(struct raw *c, const struct bitmix_sqe *e)
{
	struct bitmix_arena_hdr *h = (void *)c->arena;
	struct bitmix_sqe *sq = (void *)(c->arena + c->hello.sq_offset);

	sq[c->sq_tail & (c->hello.sq_entries - 1)] = *e;
	bitmix_store_release(&h->sq_tail, ++c->sq_tail);
	raw_ring(c);
}

/* Wait for the next CQE; returns 0 with it in *out, or -ETIMEDOUT. */
int raw_reap(struct raw *c, struct bitmix_cqe *out)
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

struct bitmix_sqe good_sqe(const struct raw *c)
{
	uint64_t in = (uint64_t)c->model.input_h * c->model.input_w * c->model.input_c * 4;

	return (struct bitmix_sqe){
		.user_data = 7,
		.model_id = c->model.model_id,
		.batch = 1,
		.in_offset = 0,
		.in_length = in,
		.out_offset = (in + 63) / 64 * 64,
		.out_length = c->model.output_size * 4,
	};
}

/* The daemon still serves a well-behaved client. */
void assert_daemon_serves(const char *socket_path)
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
