/* SPDX-License-Identifier: MIT */
/*
 * raw_client.h — a client that speaks the bitmix protocol by hand (no libbitmix), so hostile
 * tests can break it on purpose; and the check that a daemon still serves well-behaved clients.
 */
#ifndef BITMIX_TEST_RAW_CLIENT_H
#define BITMIX_TEST_RAW_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bitmix_proto.h"

struct raw {
	int fd;
	int arena_fd, submit_efd, complete_efd;
	uint8_t *arena;
	struct bitmix_hello_reply hello;
	struct bitmix_model_desc model;
	uint32_t seq;
	uint32_t sq_tail, cq_head;
};

/* A well-formed header for a message of TYPE, LEN bytes in all, with sequence number SEQ. */
static inline struct bitmix_msg_hdr raw_hdr(uint16_t type, uint32_t len, uint32_t seq)
{
	return (struct bitmix_msg_hdr){ BITMIX_MSG_MAGIC, BITMIX_PROTO_VERSION, type, len, seq };
}

/* A control socket connected to the daemon at PATH, before any HELLO; its fd or -errno. */
int raw_socket(const char *path);
/* Send LEN bytes of MSG on FD with N descriptors (up to 4) attached; sendmsg's result. */
ssize_t raw_send_fds(int fd, const void *msg, size_t len, const int *fds, int n);
/* One request and its reply (up to MAX_FDS descriptors into FDS); returns the reply's status. */
int raw_call(struct raw *c, void *req, size_t len, uint16_t type, void *rep, size_t rep_max,
	     int *fds, int max_fds);
/* Connect, HELLO, map the arena, open "fmnist" (cmocka assertions on the way). */
void raw_connect(struct raw *c, const char *path);
void raw_close(struct raw *c);
/* Ring the daemon's bell whether or not it sleeps (a client may; it only costs a syscall). */
void raw_ring(struct raw *c);
void raw_submit(struct raw *c, const struct bitmix_sqe *e);
/* Wait for the next CQE; returns 0 with it in *out, or -ETIMEDOUT. */
int raw_reap(struct raw *c, struct bitmix_cqe *out);
/* A valid batch-1 inference from the data area's start. */
struct bitmix_sqe good_sqe(const struct raw *c);
/* The daemon still serves a well-behaved libbitmix client. */
void assert_daemon_serves(const char *socket_path);

#endif
