/* SPDX-License-Identifier: MIT */
/*
 * libbitmix_internal.h — what the files of libbitmix share and applications do not see: the
 * connection and model structs (libbitmix.c, libbitmix_ring.c) and the control round trip.
 */
#ifndef BITMIX_LIBBITMIX_INTERNAL_H
#define BITMIX_LIBBITMIX_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bitmix.h"
#include "bitmix_proto.h"

#define BITMIX_DEFAULT_SPIN_NS 20000 /* poll the completion ring this long before sleeping */
#define BITMIX_MAX_CLIENT_REGIONS 64

struct block {
	uint64_t offset, size;
	bool used;
	struct block *next; /* ordered by offset */
};

struct bitmix_model {
	struct bitmix *bm;
	struct bitmix_model_info info;
	uint32_t id;
	const struct bitmix_control_page *control;
	uint64_t control_size;
	uint16_t *layer_masks;
	struct bitmix_model *next;
};

/* A memfd the caller registered: tensors inside it are named by (id, offset). */
struct client_region {
	uint32_t id; /* 0: free slot */
	const uint8_t *addr;
	uint64_t size;
};

struct bitmix {
	int fd, submit_efd, complete_efd;
	uint32_t doorbell; /* enum bitmix_doorbell */
	uint32_t seq;
	uint8_t *arena;
	uint64_t arena_size;
	struct bitmix_arena_hdr *hdr;
	struct bitmix_sqe *sq;
	struct bitmix_cqe *cq;
	uint8_t *data;
	uint64_t data_size;
	uint32_t sq_entries, cq_entries;
	uint32_t sq_tail;      /* prepared; published by bitmix_submit() */
	uint32_t sq_published; /* the value of hdr->sq_tail */
	uint32_t cq_head;
	uint32_t outstanding;	  /* prepared and not yet reaped */
	uint32_t max_outstanding; /* min(cq_entries, limits.in_flight) */
	uint64_t spin_ns;
	uint64_t next_user_data;
	struct block *blocks;
	struct bitmix_model *models;
	struct client_region regions[BITMIX_MAX_CLIENT_REGIONS];
	char error[256];
};

/* Set BM's error text (NULL: this thread's connect error) and return R. */
int bitmix_set_error(struct bitmix *bm, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), visibility("hidden")));

/*
 * One control round trip: send REQ (LEN bytes, its header filled in here) as message TYPE and
 * receive exactly REP_LEN bytes of reply into REP. Returns 0 or the daemon's -errno, with the
 * daemon's message kept for bitmix_strerror().
 */
int bitmix_call(struct bitmix *bm, void *req, size_t len, uint16_t type, void *rep, size_t rep_len);

#endif
