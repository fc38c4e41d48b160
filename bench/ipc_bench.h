/* SPDX-License-Identifier: MIT */
/*
 * ipc_bench.h — what the parts of bench/ipc share: the peers (ipc_peers.c) and the daemon the
 * bench starts for itself (bench_daemon.c).
 */
#ifndef BITMIX_IPC_BENCH_H
#define BITMIX_IPC_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum peer_kind { PEER_UNIX, PEER_PIPE };

struct peer {
	enum peer_kind kind;
	pid_t pid;
	int wfd, rfd;
	uint8_t *buf;
};

/* Fork a server that answers requests of up to MAX_PAYLOAD bytes of payload. */
int peer_start(struct peer *p, enum peer_kind kind, size_t max_payload);
/* One request carrying LEN payload bytes, and its 32-byte answer. */
int peer_round_trip(struct peer *p, size_t len);
void peer_stop(struct peer *p);

#include "bench_daemon.h"

#endif
