/* SPDX-License-Identifier: MIT */
/*
 * fuzz_proto.c — libFuzzer target for the wire protocol (proto/bitmix_proto.h): bitmixd's
 * control-message handlers (daemon/ipc/session_msg.c, session_governor.c, session_admin.c), region
 * registration (session_region.c) and the submission ring (session.c), linked unchanged.
 *
 * One input is one client connection: a list of records, each a header byte, a 16-bit
 * little-endian length and that many bytes.
 *
 *   op = hdr & 3    0: a control message (the payload is the packet). Unless bit 3 is set the
 *                      header's magic, version and length are made right, so mutations reach the
 *                      handlers. Bit 4: a memfd comes with it, as large as the REGISTER_REGION
 *                      size field says (hdr bit 6: one byte larger), sealed unless bit 5 is set.
 *                      Bit 7: the packet arrives with MSG_TRUNC.
 *                   1: submissions: the payload is SQEs (64 bytes each) written at the client's
 *                      tail, which then moves by their count (bit 2: by the payload's last byte,
 *                      unchecked); bit 3: the client reaps no completions first. The daemon
 *                      drains the ring.
 *                   2: the client scribbles over its arena header (indices, flags) with the
 *                      payload, then the daemon drains.
 *                   3: the uid of the connection becomes 1000 + the first payload byte (a
 *                      client without rights), or root again for an empty payload.
 *
 * The daemon is a real one minus its event loop and threads (daemon_fixture.c, proto_stubs.c): a
 * config, fuzz/corpus/bmx/tiny-adaptive.bmx served as "tiny", the simulated sensors and the
 * governor (userspace at the start of every input). Every reply is
 * read and every descriptor in it closed; the connection is closed at the end of the input, so
 * a leak of a session, region or descriptor shows up in LeakSanitizer or the fd count.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "daemon_fixture.h"
#include "proto_stubs.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct bmx_daemon *daemon_ctx;
static bool verbose; /* BITMIX_FUZZ_VERBOSE=1: print every reply (for writing seeds) */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	verbose = getenv("BITMIX_FUZZ_VERBOSE") != NULL;
	daemon_ctx = fuzz_daemon_start();
	return 0;
}

/* Read every reply waiting on the client's end and close the descriptors they carry. */
static void drain_replies(int fd)
{
	union {
		char buf[CMSG_SPACE(8 * sizeof(int))];
		struct cmsghdr align;
	} control;
	static uint8_t buf[BITMIX_MSG_MAX * 2];

	for (;;) {
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
		struct msghdr msg = { .msg_iov = &iov,
				      .msg_iovlen = 1,
				      .msg_control = control.buf,
				      .msg_controllen = sizeof(control.buf) };

		ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		const struct bitmix_reply *r = (const void *)buf;

		if (n <= 0)
			return;
		if (verbose && (size_t)n >= sizeof(*r))
			fprintf(stderr, "reply type %#x seq %u: %d %.*s\n", r->hdr.type, r->hdr.seq,
				r->status, BITMIX_ERROR_MAX, r->error);
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
				int rfd;

				memcpy(&rfd, CMSG_DATA(c) + i * sizeof(int), sizeof(rfd));
				close(rfd);
			}
		}
	}
}

/* A memfd for REGISTER_REGION: SIZE bytes, sealed against resizing if SEAL. */
static int make_memfd(uint64_t size, bool seal)
{
	int fd = memfd_create("fuzz-region", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return -1;
	if (size > (64u << 20))
		size = 64u << 20; /* the daemon then says the sizes differ */
	if (ftruncate(fd, (off_t)size) < 0 ||
	    (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void control_message(struct session *s, uint8_t hdr, const uint8_t *p, size_t len)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct bitmix_msg_hdr *m = (void *)s->recv_buf;
	struct msghdr msg = { 0 };
	int fd = -1;

	if (len > sizeof(s->recv_buf))
		len = sizeof(s->recv_buf);
	memcpy(s->recv_buf, p, len);
	if (!(hdr & 8) && len >= sizeof(*m)) {
		m->magic = BITMIX_MSG_MAGIC;
		m->version = BITMIX_PROTO_VERSION;
		m->length = (uint32_t)len;
	}
	if (hdr & 16) {
		uint64_t size = 0;

		if (len >= offsetof(struct bitmix_region_req, size) + sizeof(size))
			memcpy(&size, p + offsetof(struct bitmix_region_req, size), sizeof(size));
		fd = make_memfd(size + ((hdr & 64) ? 1 : 0), !(hdr & 32));
	}
	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(fd));
	}
	if (hdr & 128)
		msg.msg_flags = MSG_TRUNC;
	session_handle_message(s, len, &msg); /* takes the descriptor on every path */
}

static void submissions(struct session *s, uint8_t hdr, const uint8_t *p, size_t len)
{
	struct bitmix_arena_hdr *h = s->hdr;
	uint32_t tail = h->sq_tail, n = (uint32_t)(len / sizeof(struct bitmix_sqe));

	if (n > s->sq_entries)
		n = s->sq_entries;
	for (uint32_t i = 0; i < n; i++)
		memcpy(&s->sq[(tail + i) & (s->sq_entries - 1)], p + i * sizeof(struct bitmix_sqe),
		       sizeof(struct bitmix_sqe));
	if (!(hdr & 8))
		h->cq_head = h->cq_tail; /* the client reaped everything */
	h->sq_tail = (hdr & 4) && len ? tail + p[len - 1] : tail + n;
	session_drain_submissions(s);
}

static void scribble(struct session *s, const uint8_t *p, size_t len)
{
	const size_t from = offsetof(struct bitmix_arena_hdr, sq_tail);
	size_t room = sizeof(struct bitmix_arena_hdr) - from;

	/* The client owns the whole header page in its mapping; only its indices matter. */
	memcpy((uint8_t *)s->hdr + from, p, len < room ? len : room);
	session_drain_submissions(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bmx_daemon *d = daemon_ctx;
	struct session *s;
	int sv[2];

	fuzz_daemon_reset();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	/* Replies that do not fit are a client not reading (session_msg.c): let them fit. */
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &(int){ 1 << 20 }, sizeof(int));
	if (session_new(d, sv[0], &s) < 0) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	d->doorbell = size && (data[0] & 1) ? BITMIX_DOORBELL_EVENTFD : BITMIX_DOORBELL_FUTEX;
	s->next = d->sessions;
	if (s->next)
		s->next->prev = s;
	d->sessions = s;
	d->n_sessions++;
	session_ref(s); /* ours: the loop's goes with session_close() */

	while (size >= 3 && !s->closing) {
		uint8_t hdr = data[0];
		size_t len = (size_t)data[1] | (size_t)data[2] << 8;
		const uint8_t *p = data + 3;

		if (len > size - 3)
			len = size - 3;
		data += 3 + len;
		size -= 3 + len;
		switch (hdr & 3) {
		case 0:
			control_message(s, hdr, p, len);
			break;
		case 1:
			if (s->has_arena)
				submissions(s, hdr, p, len);
			break;
		case 2:
			if (s->has_arena)
				scribble(s, p, len);
			break;
		case 3:
			s->uid = len ? 1000u + p[0] : 0;
			s->gid = s->uid;
			break;
		}
		drain_replies(sv[1]);
	}
	if (verbose)
		fprintf(stderr, "%lu jobs admitted so far, session %s\n", proto_stub_jobs,
			s->closing ? "closed by the daemon" : "open");
	session_close(s, NULL);
	session_unref(s);
	drain_replies(sv[1]);
	close(sv[1]);
	return 0;
}
