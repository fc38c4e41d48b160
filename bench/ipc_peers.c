/* SPDX-License-Identifier: MIT */
/*
 * ipc_peers.c — the peers bench/ipc measures bitmix against in the same run: a plain unix-socket
 * request/response and a pipe pair. A forked server reads a length-prefixed request with its
 * payload (the tensor travels by copy through the kernel, twice) and answers 32 bytes, the size
 * of a bitmix CQE; both block in read(), as a socket server does.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipc_bench.h"

#define REQUEST_HEADER 64 /* the size of a bitmix SQE */

static int read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n <= 0)
			return n == 0 ? -EPIPE : -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n <= 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void serve(int rfd, int wfd, size_t max)
{
	uint8_t hdr[REQUEST_HEADER], reply[32] = { 0 };
	uint8_t *payload = malloc(max ? max : 1);

	for (;;) {
		uint64_t len;

		if (read_full(rfd, hdr, sizeof(hdr)) < 0)
			_exit(0);
		memcpy(&len, hdr, sizeof(len));
		if (len > max || (len && read_full(rfd, payload, len) < 0))
			_exit(1);
		if (write_full(wfd, reply, sizeof(reply)) < 0)
			_exit(1);
	}
}

int peer_start(struct peer *p, enum peer_kind kind, size_t max_payload)
{
	int a[2], b[2];

	p->kind = kind;
	if (kind == PEER_UNIX) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a) < 0)
			return -errno;
		b[0] = a[1];
		b[1] = a[1];
	} else if (pipe(a) < 0 || pipe(b) < 0) {
		return -errno;
	}
	p->pid = fork();
	if (p->pid < 0)
		return -errno;
	if (p->pid == 0) {
		/* Only the server's ends stay open here, so it sees EOF when the client closes. */
		if (kind == PEER_UNIX) {
			close(a[0]);
			serve(a[1], a[1], max_payload);
		}
		close(a[1]);
		close(b[0]);
		serve(a[0], b[1], max_payload);
	}
	if (kind == PEER_UNIX) {
		close(a[1]);
		p->wfd = p->rfd = a[0];
	} else {
		close(a[0]);
		close(b[1]);
		p->wfd = a[1];
		p->rfd = b[0];
	}
	p->buf = calloc(1, max_payload ? max_payload : 1);
	return p->buf ? 0 : -ENOMEM;
}

int peer_round_trip(struct peer *p, size_t len)
{
	uint8_t hdr[REQUEST_HEADER] = { 0 }, reply[32];
	uint64_t n = len;
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { p->buf, len } };
	ssize_t w;
	int r;

	memcpy(hdr, &n, sizeof(n));
	w = writev(p->wfd, iov, len ? 2 : 1);
	if (w < 0)
		return -errno;
	/* A large payload may go out in pieces. */
	if ((size_t)w < sizeof(hdr))
		return -EIO;
	if (len && (size_t)w < sizeof(hdr) + len &&
	    (r = write_full(p->wfd, p->buf + (w - (ssize_t)sizeof(hdr)),
			    sizeof(hdr) + len - (size_t)w)) < 0)
		return r;
	return read_full(p->rfd, reply, sizeof(reply));
}

void peer_stop(struct peer *p)
{
	close(p->wfd);
	if (p->rfd != p->wfd)
		close(p->rfd);
	waitpid(p->pid, NULL, 0);
	free(p->buf);
}
