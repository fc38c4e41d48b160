/* SPDX-License-Identifier: MIT */
/*
 * session.c — one connected client: its control messages, its arena and its rings.
 *
 * Everything a client sends is untrusted. Control messages are checked field by field before
 * use; ring entries are copied out of shared memory first and checked on the private copy; the
 * daemon's own ring indices and the arena's geometry live in private memory. A client that
 * breaks the protocol loses its own connection and nothing else.
 *
 * Ring memory ordering: load-acquire sq_tail, copy the SQE, store-release sq_head; write the CQE,
 * store-release cq_tail (under cq_lock: the loop and workers both post). Admission counts every
 * SQE taken (each owes exactly one CQE) against the client's cq_head, so a CQE always has a slot.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

static void on_recv(struct bmx_daemon *d, struct loop_op *op, int res)
{
	struct session *s = op->session;

	(void)d;
	if (s->closing)
		return;
	if (res == -ECANCELED && !s->greeted) {
		log_info(
			"client %u (pid %d, uid %u): sent nothing within limits.handshake_timeout_ms "
			"(%u ms)",
			s->id, (int)s->pid, (unsigned)s->uid,
			s->daemon->config->limits.handshake_timeout_ms);
		session_close(s, "disconnected");
		return;
	}
	if (res <= 0) {
		session_close(s, res == 0 ? "disconnected" : "control socket error: disconnected");
		return;
	}
	s->greeted = true;
	session_handle_message(s, (size_t)res, &s->recv_msg);
	if (!s->closing && event_loop_arm_recv(s->daemon, s) < 0)
		session_close(s, "daemon out of io_uring entries: disconnected");
}

/* A futex wait ends woken (0) or because the tail had moved already (-EAGAIN). */
static void on_doorbell(struct bmx_daemon *d, struct loop_op *op, int res)
{
	struct session *s = op->session;
	bool futex = d->doorbell == BITMIX_DOORBELL_FUTEX;

	s->doorbell_armed = false;
	if (s->closing)
		return;
	if (futex ? res != 0 && res != -EAGAIN : res != (int)sizeof(uint64_t)) {
		log_warning_errno(res < 0 ? res : EIO, "client %u: doorbell", s->id);
		session_close(s, "doorbell failed: disconnected");
		return;
	}
	session_drain_submissions(s);
	s->daemon->last_work_ns = now_ns();
	if (!s->closing && doorbell_arm(s->daemon, s) < 0)
		session_close(s, "daemon out of io_uring entries: disconnected");
}

int session_new(struct bmx_daemon *d, int fd, struct session **out)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct session *s;
	gid_t groups[256];
	socklen_t glen = sizeof(groups);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->daemon = d;
	s->fd = fd;
	s->pid = cred.pid;
	s->uid = cred.uid;
	s->gid = cred.gid;
	s->refs = 1;
	s->arena_fd = s->submit_efd = s->complete_efd = -1;
	s->id = ++d->next_session_id;
	s->recv_op = (struct loop_op){ .fn = on_recv, .session = s };
	/* Its -ETIME cancels the linked receive, which ends -ECANCELED in on_recv. */
	s->handshake_op = (struct loop_op){ .fn = NULL, .session = s };
	s->doorbell_op = (struct loop_op){ .fn = on_doorbell, .session = s };
	pthread_mutex_init(&s->cq_lock, NULL);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0 && glen > 0) {
		s->n_groups = (int)(glen / sizeof(gid_t));
		s->groups = malloc(glen);
		if (s->groups)
			memcpy(s->groups, groups, glen);
		else
			s->n_groups = 0;
	}
	*out = s;
	return 0;
}

/*
 * A connection counts against its uid from the moment it is accepted, silent or not, and only
 * administrators may take the last BMX_ADMIN_RESERVE of the BMX_MAX_SESSIONS places: so no user,
 * however many connections it opens, locks root's `bitmixctl status` out.
 */
int session_admit(const struct session *s, char *why, size_t why_size)
{
	const struct bmx_daemon *d = s->daemon;
	const struct bmx_config_limits *lim = &d->config->limits;
	unsigned n_same_uid = 0;

	for (const struct session *o = d->sessions; o; o = o->next)
		n_same_uid += o->uid == s->uid;
	if (n_same_uid >= lim->connections_per_uid) {
		snprintf(why, why_size,
			 "uid %u has %u connections already (limits.connections_per_uid in %s)",
			 (unsigned)s->uid, n_same_uid, d->config->source_path);
		return -EUSERS;
	}
	if (d->n_sessions >= BMX_MAX_SESSIONS) {
		snprintf(why, why_size, "bitmixd serves at most %u connections and has them all",
			 BMX_MAX_SESSIONS);
		return -EUSERS;
	}
	if (d->n_sessions >= BMX_MAX_SESSIONS - BMX_ADMIN_RESERVE && !session_may_set_bits(s)) {
		snprintf(why, why_size,
			 "%u connections open; the last %u of bitmixd's %u are kept for "
			 "administrators",
			 d->n_sessions, BMX_ADMIN_RESERVE, BMX_MAX_SESSIONS);
		return -EUSERS;
	}
	return 0;
}

static void session_free(struct session *s)
{
	for (size_t i = 0; i < s->n_open; i++)
		served_model_unref(s->open[i]);
	session_regions_clear(s);
	if (s->arena)
		munmap(s->arena, s->arena_size);
	if (s->arena_fd >= 0)
		close(s->arena_fd);
	if (s->submit_efd >= 0)
		close(s->submit_efd);
	if (s->complete_efd >= 0)
		close(s->complete_efd);
	if (s->fd >= 0)
		close(s->fd);
	pthread_mutex_destroy(&s->cq_lock);
	free(s->groups);
	free(s);
}

void session_ref(struct session *s)
{
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
}

/* The last reference may be dropped by a worker thread; nothing else can reach s by then. */
void session_unref(struct session *s)
{
	if (__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0)
		session_free(s);
}

/* Its requests still queued never run: each completes -ECANCELED (nobody reads it any more). */
static void drop_queued(struct session *s)
{
	struct job *job = worker_pool_cancel(s->daemon->pool, s), *next;
	unsigned n = 0;

	for (; job; job = next, n++) {
		next = job->next;
		__atomic_add_fetch(&s->daemon->requests_failed, 1, __ATOMIC_RELAXED);
		job_complete(job, -ECANCELED, 0);
	}
	if (n) {
		__atomic_add_fetch(&s->daemon->dropped_on_close, n, __ATOMIC_RELAXED);
		log_info("client %u: %u queued requests dropped", s->id, n);
	}
}

/*
 * Take the session out of service: unlink it, shut the socket so that its pending receive ends,
 * cancel its doorbell read. Memory goes when the last reference (a pending op or job) does.
 */
void session_close(struct session *s, const char *why)
{
	struct bmx_daemon *d = s->daemon;

	if (s->closing)
		return;
	s->closing = true;
	if (why)
		log_info("client %u (pid %d, uid %u): %s", s->id, (int)s->pid, (unsigned)s->uid,
			 why);
	if (s->prev)
		s->prev->next = s->next;
	else
		d->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	d->n_sessions--;
	if (d->governor) /* its QoS holds go with it */
		gov_core_release_owner(d->governor, s->id);
	drop_queued(s);
	shutdown(s->fd, SHUT_RDWR);
	if (s->doorbell_armed)
		event_loop_cancel(d, &s->doorbell_op);
	session_unref(s); /* the loop's reference */
}

/* One admin rule for the socket and D-Bus (bmx_config_is_admin). */
bool session_may_set_bits(const struct session *s)
{
	return bmx_config_is_admin(s->daemon->config, s->uid, s->gid, s->groups,
				   s->n_groups > 0 ? (size_t)s->n_groups : 0);
}

/* Write one CQE; PUBLISH also makes it (and any before it) visible to the client. */
static void post_cqe(struct session *s, uint64_t user_data, int32_t status, uint64_t generation,
		     uint32_t adaptive, uint64_t bitops, bool publish)
{
	struct bitmix_cqe *cqe;

	pthread_mutex_lock(&s->cq_lock);
	cqe = &s->cq[s->cq_tail & (s->cq_entries - 1)];
	cqe->user_data = user_data;
	cqe->status = status;
	cqe->adaptive = adaptive;
	cqe->generation = generation;
	cqe->bitops = bitops;
	__atomic_store_n(&s->cq_tail, s->cq_tail + 1, __ATOMIC_RELEASE);
	if (publish)
		bitmix_store_release(&s->hdr->cq_tail, s->cq_tail);
	pthread_mutex_unlock(&s->cq_lock);
}

/* Post one CQE. Room is guaranteed by admission (session_drain_submissions). */
void session_post_completion(struct session *s, uint64_t user_data, int32_t status,
			     uint64_t generation, uint32_t adaptive, uint64_t bitops)
{
	post_cqe(s, user_data, status, generation, adaptive, bitops, true);
}

/*
 * Publish the CQEs the loop wrote during a drain with one store, so a polling client sees the
 * cache line move once per batch. A worker publishing meanwhile covers them too: every CQE
 * below the private tail is complete before the tail moves (both under cq_lock).
 */
static void publish_completions(struct session *s)
{
	pthread_mutex_lock(&s->cq_lock);
	bitmix_store_release(&s->hdr->cq_tail, s->cq_tail);
	pthread_mutex_unlock(&s->cq_lock);
}

void job_complete(struct job *job, int status, uint64_t generation)
{
	struct session *s = job->session;

	session_post_completion(s, job->sqe.user_data, status, generation, job->adaptive,
				job->bitops);
	doorbell_wake_client(s, false);
	if (job->in_region)
		region_unref(job->in_region);
	if (job->out_region)
		region_unref(job->out_region);
	served_model_unref(job->model);
	session_unref(s);
	free(job->bits);
	free(job);
}

static bool range_ok(uint64_t off, uint64_t len, uint64_t size)
{
	uint64_t end;

	return off % 64 == 0 && !__builtin_add_overflow(off, len, &end) && end <= size;
}

/* Resolve a tensor (REGION, OFF, LEN) to memory; *ref is the region (NULL: the arena's data). */
static int tensor_resolve(const struct session *s, uint16_t region, uint64_t off, uint64_t len,
			  struct region **ref, uint8_t **ptr)
{
	uint8_t *base = s->data;
	uint64_t size = s->data_size;

	*ref = NULL;
	if (region != 0) {
		*ref = session_region(s, region);
		if (!*ref)
			return -ENXIO;
		base = (*ref)->base;
		size = (*ref)->size;
	}
	if (!range_ok(off, len, size))
		return -ERANGE;
	*ptr = base + off;
	return 0;
}

/* Check a private copy of an SQE and resolve what it names into J (no references taken yet). */
static int sqe_check(const struct session *s, const struct bitmix_sqe *e, struct job *j)
{
	struct served_model *m = NULL;
	uint64_t in_bytes, out_bytes;
	uint8_t *in = NULL, *out = NULL;
	int r;

	if (e->opcode > BITMIX_OP_NOP || e->precision > BITMIX_PRECISION_FIXED || e->flags ||
	    e->reserved0 || e->precision_arg)
		return -EOPNOTSUPP;
	if (e->opcode == BITMIX_OP_NOP) {
		if (e->model_id || e->batch)
			return -EINVAL;
		if (e->in_length && (r = tensor_resolve(s, e->in_region, e->in_offset, e->in_length,
							&j->in_region, &in)) < 0)
			return r;
		if (e->out_length && (r = tensor_resolve(s, e->out_region, e->out_offset,
							 e->out_length, &j->out_region, &out)) < 0)
			return r;
		return 0;
	}
	for (size_t i = 0; i < s->n_open; i++)
		if (s->open[i]->id == e->model_id)
			m = s->open[i];
	if (!m)
		return -EBADF;
	if (!served_adaptive_supported(m, e->precision))
		return -EOPNOTSUPP; /* adaptive asked of a model without the section */
	if (m->retired)		    /* unloaded: what was in flight finished, nothing new starts */
		return -ENODEV;
	if (e->batch == 0 || e->batch > BMX_MAX_BATCH)
		return -EINVAL;
	in_bytes = (uint64_t)e->batch * bmx_model_input_size(m->model) * sizeof(float);
	out_bytes = (uint64_t)e->batch * bmx_model_output_size(m->model) * sizeof(float);
	if (e->in_length != in_bytes || e->out_length < out_bytes)
		return -EMSGSIZE;
	if ((r = tensor_resolve(s, e->in_region, e->in_offset, in_bytes, &j->in_region, &in)) < 0 ||
	    (r = tensor_resolve(s, e->out_region, e->out_offset, out_bytes, &j->out_region, &out)) <
		    0)
		return r;
	j->model = m;
	j->in = (const float *)in;
	j->out = (float *)out;
	return 0;
}

/* Complete inline (a refusal or a NOP): the loop wakes the client once per drain. */
static void complete_inline(struct session *s, uint64_t user_data, int status)
{
	__atomic_add_fetch(status < 0 ? &s->daemon->requests_failed
				      : &s->daemon->requests_completed,
			   1, __ATOMIC_RELAXED);
	post_cqe(s, user_data, status, 0, 0, 0, false);
	s->wake_pending = true;
}

/* Take one copied, counted SQE: complete it here, or hand it to the workers. */
static void admit(struct session *s, const struct bitmix_sqe *e, uint32_t running)
{
	struct job j = { .session = s, .sqe = *e }, *job;
	int r;

	if (running >= s->daemon->config->limits.in_flight) {
		log_debug("client %u: %u requests in flight, limits.in_flight is %u: -EBUSY", s->id,
			  running, s->daemon->config->limits.in_flight);
		r = -EBUSY;
	} else {
		r = sqe_check(s, e, &j);
	}
	if (r == 0 && e->opcode == BITMIX_OP_NOP) {
		complete_inline(s, e->user_data, 0);
		return;
	}
	if (r == 0 && !(job = malloc(sizeof(*job))))
		r = -ENOMEM;
	if (r < 0) {
		complete_inline(s, e->user_data, r);
		return;
	}
	*job = j;
	job->model->requests_admitted++;
	job->model->samples_admitted += e->batch;
	session_ref(s);
	served_model_ref(job->model);
	if (job->in_region)
		__atomic_add_fetch(&job->in_region->refs, 1, __ATOMIC_RELAXED);
	if (job->out_region)
		__atomic_add_fetch(&job->out_region->refs, 1, __ATOMIC_RELAXED);
	worker_pool_submit(s->daemon->pool, job, bmx_config_weight(s->daemon->config, s->uid));
}

/*
 * Take every new SQE the client published, while its completion ring has room for every SQE
 * taken and not yet reaped; a client that does not reap just stops being served until it does.
 * Returns how many SQEs were taken.
 */
unsigned session_drain_submissions(struct session *s)
{
	uint32_t tail = bitmix_load_acquire(&s->hdr->sq_tail);
	unsigned n = 0;

	if (tail - s->sq_head > s->sq_entries) {
		session_close(s, "corrupted submission ring index: disconnected");
		return 0;
	}
	while (s->sq_head != tail) {
		uint32_t cq_head = bitmix_load_acquire(&s->hdr->cq_head);
		uint32_t cq_tail = __atomic_load_n(&s->cq_tail, __ATOMIC_ACQUIRE);
		struct bitmix_sqe e;

		if (cq_tail - cq_head > s->cq_entries) {
			session_close(s, "corrupted completion ring index: disconnected");
			return n;
		}
		if (s->admitted - cq_head >= s->cq_entries)
			break;
		memcpy(&e, &s->sq[s->sq_head & (s->sq_entries - 1)], sizeof(e));
		s->sq_head++;
		s->admitted++;
		bitmix_store_release(&s->hdr->sq_head, s->sq_head);
		admit(s, &e, s->admitted - 1 - cq_tail);
		n++;
	}
	if (s->wake_pending) {
		publish_completions(s);
		doorbell_wake_client(s, true);
	}
	return n;
}

unsigned session_drain_all(struct bmx_daemon *d)
{
	struct session *next;
	unsigned n = 0;

	for (struct session *s = d->sessions; s; s = next) {
		next = s->next; /* draining may close s */
		if (s->has_arena && bitmix_load_acquire(&s->hdr->sq_tail) != s->sq_head)
			n += session_drain_submissions(s);
	}
	return n;
}
