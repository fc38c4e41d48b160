/* SPDX-License-Identifier: MIT */
/*
 * libbitmix_ring.c — libbitmix's data plane: tensors, the submission and completion rings, and
 * the doorbells (proto/bitmix_proto.h describes the protocol).
 *
 * Requests are prepared into the submission ring (bitmix_prep_*), published together by
 * bitmix_submit(), and their completions reaped in any order by bitmix_reap(); bitmix_infer() is
 * those three for one request. Memory ordering: write SQEs, store-release sq_tail, full fence,
 * load daemon_flags (wake the daemon only if it sleeps). Reaping: load-acquire cq_tail, copy
 * CQEs, store-release cq_head. To sleep: store BITMIX_CLIENT_SLEEPING, full fence, load cq_tail
 * again, and sleep only if it has not moved (on a futex on cq_tail, or on the completion eventfd).
 */
#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "libbitmix_internal.h"

#define HANGUP_CHECK_NS 50000000 /* a futex sleeper looks at the socket this often */

void *bitmix_tensor_alloc(struct bitmix *bm, size_t size)
{
	uint64_t need = ((uint64_t)size + 63) & ~(uint64_t)63;

	if (need == 0)
		need = 64;
	for (struct block *b = bm->blocks; b; b = b->next) {
		if (b->used || b->size < need)
			continue;
		if (b->size > need) {
			struct block *rest = malloc(sizeof(*rest));

			if (!rest)
				break;
			*rest = (struct block){ b->offset + need, b->size - need, false, b->next };
			b->next = rest;
			b->size = need;
		}
		b->used = true;
		return bm->data + b->offset;
	}
	bitmix_set_error(bm, -ENOMEM, "the arena has no free %zu bytes (it holds %llu)", size,
			 (unsigned long long)bm->data_size);
	return NULL;
}

void bitmix_tensor_free(struct bitmix *bm, void *tensor)
{
	uint64_t off;

	if (!tensor)
		return;
	off = (uint64_t)((uint8_t *)tensor - bm->data);
	for (struct block *b = bm->blocks; b; b = b->next) {
		if (b->offset != off || !b->used)
			continue;
		b->used = false;
		/* Merge with a free successor, then let a free predecessor absorb this one. */
		if (b->next && !b->next->used) {
			struct block *n = b->next;

			b->size += n->size;
			b->next = n->next;
			free(n);
		}
		for (struct block *p = bm->blocks; p && p->next; p = p->next) {
			if (p->next == b && !p->used) {
				p->size += b->size;
				p->next = b->next;
				free(b);
				break;
			}
		}
		return;
	}
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bitmix_set_spin(struct bitmix *bm, uint64_t spin_ns)
{
	bm->spin_ns = spin_ns;
}

/* Name [p, p+len) as (region, offset): the arena's data area or a registered region. */
static int tensor_ref(const struct bitmix *bm, const void *p, uint64_t len, uint16_t *region,
		      uint64_t *offset)
{
	const uint8_t *q = p;

	if ((uintptr_t)q % 64)
		return -EINVAL;
	if (q >= bm->data && len <= bm->data_size &&
	    (uint64_t)(q - bm->data) <= bm->data_size - len) {
		*region = 0;
		*offset = (uint64_t)(q - bm->data);
		return 0;
	}
	for (unsigned i = 0; i < BITMIX_MAX_CLIENT_REGIONS; i++) {
		const struct client_region *r = &bm->regions[i];

		if (r->id && q >= r->addr && len <= r->size &&
		    (uint64_t)(q - r->addr) <= r->size - len) {
			*region = (uint16_t)r->id;
			*offset = (uint64_t)(q - r->addr);
			return 0;
		}
	}
	return -EINVAL;
}

/* The next free SQE, or NULL (with the error set) when as many requests as allowed are out. */
static struct bitmix_sqe *next_sqe(struct bitmix *bm)
{
	struct bitmix_sqe *e;

	if (bm->outstanding >= bm->max_outstanding) {
		bitmix_set_error(bm, -EBUSY,
				 "%u requests outstanding, the most this connection allows "
				 "(ring size and bitmixd's limits.in_flight): reap some first",
				 bm->outstanding);
		return NULL;
	}
	e = &bm->sq[bm->sq_tail & (bm->sq_entries - 1)];
	memset(e, 0, sizeof(*e));
	return e;
}

static void sqe_queued(struct bitmix *bm)
{
	bm->sq_tail++;
	bm->outstanding++;
}

int bitmix_prep_infer(struct bitmix_model *model, const float *input, float *output, uint32_t batch,
		      uint64_t user_data)
{
	return bitmix_prep_infer_precision(model, input, output, batch, BITMIX_PRECISION_CURRENT,
					   user_data);
}

int bitmix_prep_infer_precision(struct bitmix_model *model, const float *input, float *output,
				uint32_t batch, unsigned precision, uint64_t user_data)
{
	struct bitmix *bm = model->bm;
	const struct bitmix_model_info *in = &model->info;
	uint64_t in_len = (uint64_t)batch * in->input_h * in->input_w * in->input_c * sizeof(float);
	uint64_t out_len = (uint64_t)batch * in->output_size * sizeof(float);
	uint16_t in_region, out_region;
	uint64_t in_off, out_off;
	struct bitmix_sqe *e;

	if (batch == 0)
		return bitmix_set_error(bm, -EINVAL, "batch must be at least 1");
	static_assert(BITMIX_INFER_CASCADE == BITMIX_PRECISION_CASCADE &&
			      BITMIX_INFER_POLICY == BITMIX_PRECISION_POLICY &&
			      BITMIX_INFER_FIXED == BITMIX_PRECISION_FIXED,
		      "one numbering");
	if (precision > BITMIX_PRECISION_FIXED)
		return bitmix_set_error(bm, -EINVAL,
					"precision %u: expected 0 (current), 1 (cascade), "
					"2 (policy) or 3 (fixed)",
					precision);
	if (tensor_ref(bm, input, in_len, &in_region, &in_off) < 0 ||
	    tensor_ref(bm, output, out_len, &out_region, &out_off) < 0)
		return bitmix_set_error(
			bm, -EINVAL,
			"input and output must start 64-byte aligned "
			"in the arena (bitmix_tensor_alloc) or in a registered region, "
			"large enough for %u sample(s)",
			batch);
	if (!(e = next_sqe(bm)))
		return -EBUSY;
	*e = (struct bitmix_sqe){
		.user_data = user_data,
		.opcode = BITMIX_OP_INFER,
		.precision = (uint8_t)precision,
		.model_id = model->id,
		.batch = batch,
		.in_region = in_region,
		.out_region = out_region,
		.in_offset = in_off,
		.in_length = in_len,
		.out_offset = out_off,
		.out_length = out_len,
	};
	sqe_queued(bm);
	return 0;
}

int bitmix_prep_nop(struct bitmix *bm, const void *tensor, size_t length, uint64_t user_data)
{
	uint16_t region = 0;
	uint64_t off = 0;
	struct bitmix_sqe *e;

	if (length && tensor_ref(bm, tensor, length, &region, &off) < 0)
		return bitmix_set_error(bm, -EINVAL,
					"the tensor must start 64-byte aligned in the "
					"arena or in a registered region");
	if (!(e = next_sqe(bm)))
		return -EBUSY;
	*e = (struct bitmix_sqe){ .user_data = user_data,
				  .opcode = BITMIX_OP_NOP,
				  .in_region = region,
				  .in_offset = off,
				  .in_length = length };
	sqe_queued(bm);
	return 0;
}

int bitmix_submit(struct bitmix *bm)
{
	uint32_t n = bm->sq_tail - bm->sq_published;
	uint64_t one = 1;

	if (n == 0)
		return 0;
	bitmix_store_release(&bm->hdr->sq_tail, bm->sq_tail);
	bm->sq_published = bm->sq_tail;
	bitmix_smp_mb(); /* the tail store before the flag load */
	if (!(__atomic_load_n(&bm->hdr->daemon_flags, __ATOMIC_RELAXED) & BITMIX_DAEMON_SLEEPING))
		return (int)n;
	if (bm->doorbell == BITMIX_DOORBELL_FUTEX) {
		if (syscall(SYS_futex, &bm->hdr->sq_tail, FUTEX_WAKE, 1, NULL, NULL, 0) < 0)
			return bitmix_set_error(bm, -errno, "waking bitmixd: %s", strerror(errno));
	} else if (write(bm->submit_efd, &one, sizeof(one)) < 0) {
		return bitmix_set_error(bm, -errno, "submit doorbell: %s", strerror(errno));
	}
	return (int)n;
}

/* Copy up to MAX ready completions out of the ring. */
static unsigned take_ready(struct bitmix *bm, struct bitmix_completion *out, unsigned max)
{
	uint32_t tail = bitmix_load_acquire(&bm->hdr->cq_tail);
	unsigned n = 0;

	while (n < max && bm->cq_head != tail) {
		const struct bitmix_cqe *c = &bm->cq[bm->cq_head & (bm->cq_entries - 1)];

		out[n++] = (struct bitmix_completion){
			.user_data = c->user_data,
			.status = c->status,
			.generation = c->generation,
			.mode = BITMIX_CQE_MODE(c->adaptive),
			.configs = BITMIX_CQE_CONFIGS(c->adaptive),
			.escalated = BITMIX_CQE_ESCALATED(c->adaptive),
			.bitops = c->bitops,
		};
		bm->cq_head++;
	}
	if (n) {
		bitmix_store_release(&bm->hdr->cq_head, bm->cq_head);
		bm->outstanding -= n <= bm->outstanding ? n : bm->outstanding;
	}
	return n;
}

/* Sleep until cq_tail moves from SEEN, the daemon hangs up (*gone), or DEADLINE (0: never). */
static int sleep_for_completions(struct bitmix *bm, uint32_t seen, uint64_t deadline, bool *gone)
{
	uint64_t now = mono_ns(),
		 left = deadline ? (deadline > now ? deadline - now : 0) : UINT64_MAX;
	struct pollfd p[2] = { { .fd = bm->fd, .events = POLLIN | POLLRDHUP },
			       { .fd = bm->complete_efd, .events = POLLIN } };
	uint64_t v;

	if (bm->doorbell == BITMIX_DOORBELL_FUTEX) {
		uint64_t slice = left < HANGUP_CHECK_NS ? left : HANGUP_CHECK_NS;
		struct timespec ts = { (time_t)(slice / 1000000000u), (long)(slice % 1000000000u) };

		if (syscall(SYS_futex, &bm->hdr->cq_tail, FUTEX_WAIT, seen, &ts, NULL, 0) == 0 ||
		    errno == EAGAIN || errno == EINTR)
			return 0; /* woken, or the tail had moved: bitmixd is there */
		if (errno != ETIMEDOUT)
			return bitmix_set_error(bm, -errno, "waiting for bitmixd: %s",
						strerror(errno));
		if (poll(p, 1, 0) > 0 && p[0].revents & (POLLHUP | POLLRDHUP | POLLERR))
			*gone = true;
		return 0;
	}
	if (poll(p, 2, left == UINT64_MAX ? -1 : (int)((left + 999999) / 1000000)) < 0 &&
	    errno != EINTR)
		return bitmix_set_error(bm, -errno, "waiting for bitmixd: %s", strerror(errno));
	if (p[0].revents & (POLLHUP | POLLRDHUP | POLLERR))
		*gone = true;
	if (p[1].revents & POLLIN && read(bm->complete_efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return bitmix_set_error(bm, -errno, "completion doorbell: %s", strerror(errno));
	return 0;
}

/*
 * Spin, then sleep. A daemon that hung up may still have posted completions first (it finishes
 * in-flight requests before it exits), so the ring is read once more before the hang-up counts.
 */
int bitmix_reap(struct bitmix *bm, struct bitmix_completion *out, unsigned max, int64_t timeout_ns)
{
	uint64_t start = mono_ns();
	uint64_t deadline = timeout_ns < 0 ? 0 : start + (uint64_t)timeout_ns;
	bool gone = false;
	unsigned n;
	int r;

	if (max == 0)
		return 0;
	for (;;) {
		if ((n = take_ready(bm, out, max)) > 0)
			return (int)n;
		if (timeout_ns == 0)
			return 0;
		if (mono_ns() - start < bm->spin_ns) {
			bitmix_cpu_relax();
			continue;
		}
		if (gone)
			return bitmix_set_error(bm, -ECONNRESET, "bitmixd closed the connection");
		if (deadline && mono_ns() >= deadline)
			return 0;
		__atomic_store_n(&bm->hdr->client_flags, BITMIX_CLIENT_SLEEPING, __ATOMIC_RELAXED);
		bitmix_smp_mb(); /* the flag store before the tail load */
		uint32_t seen = bitmix_load_acquire(&bm->hdr->cq_tail);

		r = seen == bm->cq_head ? sleep_for_completions(bm, seen, deadline, &gone) : 0;
		__atomic_store_n(&bm->hdr->client_flags, 0, __ATOMIC_RELAXED);
		if (r < 0)
			return r;
	}
}

int bitmix_infer(struct bitmix_model *model, const float *input, float *output, uint32_t batch,
		 uint64_t *generation)
{
	struct bitmix_result res;
	int r = bitmix_infer_precision(model, input, output, batch, BITMIX_PRECISION_CURRENT, &res);

	if (r == 0 && generation)
		*generation = res.generation;
	return r;
}

int bitmix_infer_precision(struct bitmix_model *model, const float *input, float *output,
			   uint32_t batch, unsigned precision, struct bitmix_result *result)
{
	struct bitmix *bm = model->bm;
	struct bitmix_completion c;
	uint64_t user_data = ++bm->next_user_data;
	int r;

	if (bm->outstanding)
		return bitmix_set_error(bm, -EBUSY,
					"bitmix_infer() with %u asynchronous requests "
					"outstanding: reap them first",
					bm->outstanding);
	if ((r = bitmix_prep_infer_precision(model, input, output, batch, precision, user_data)) <
		    0 ||
	    (r = bitmix_submit(bm)) < 0)
		return r;
	do
		r = bitmix_reap(bm, &c, 1, -1);
	while (r == 0 || (r > 0 && c.user_data != user_data));
	if (r < 0)
		return r;
	if (c.status < 0)
		return bitmix_set_error(bm, c.status, "bitmixd refused the request: %s",
					strerror(-c.status));
	if (result)
		*result = (struct bitmix_result){
			.generation = c.generation,
			.mode = c.mode,
			.configs = c.configs,
			.escalated = c.escalated,
			.bitops = c.bitops,
		};
	return 0;
}
