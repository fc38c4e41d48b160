/* SPDX-License-Identifier: MIT */
/*
 * session.c — one connected client: its control messages, its arena and its rings.
 *
 * Everything a client sends is untrusted. Control messages are checked field by field before
 * use; ring entries are copied out of shared memory first and checked on the private copy; the
 * daemon's own ring indices and the arena's geometry live in private memory. A client that
 * breaks the protocol loses its own connection and nothing else.
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
	s->recv_op = (struct loop_op){ .kind = LOOP_OP_RECV, .session = s };
	s->doorbell_op = (struct loop_op){ .kind = LOOP_OP_DOORBELL, .session = s };
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

static void session_free(struct session *s)
{
	for (size_t i = 0; i < s->n_open; i++)
		served_model_unref(s->open[i]);
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
		log_info("client %u (pid %d, uid %u): %s", s->id, (int)s->pid, (unsigned)s->uid, why);
	if (s->prev)
		s->prev->next = s->next;
	else
		d->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	d->n_sessions--;
	if (d->governor) /* its QoS holds go with it */
		gov_core_release_owner(d->governor, s->id);
	shutdown(s->fd, SHUT_RDWR);
	if (s->has_arena)
		event_loop_cancel(d, &s->doorbell_op);
	session_unref(s); /* the loop's reference */
}

bool session_may_set_bits(const struct session *s)
{
	const struct bmx_config *c = s->daemon->config;

	if (s->uid == 0)
		return true;
	for (size_t i = 0; i < c->n_set_bits_uids; i++)
		if (c->set_bits_uids[i] == s->uid)
			return true;
	for (size_t i = 0; i < c->n_set_bits_gids; i++) {
		if (c->set_bits_gids[i] == s->gid)
			return true;
		for (int k = 0; k < s->n_groups; k++)
			if (c->set_bits_gids[i] == s->groups[k])
				return true;
	}
	return false;
}

/* Post one CQE. Room is guaranteed by admission (session_drain_submissions). */
void session_post_completion(struct session *s, uint64_t user_data, int32_t status,
			     uint64_t generation)
{
	struct bitmix_cqe *cqe;
	uint64_t one = 1;

	pthread_mutex_lock(&s->cq_lock);
	cqe = &s->cq[s->cq_tail & (s->cq_entries - 1)];
	cqe->user_data = user_data;
	cqe->status = status;
	cqe->reserved0 = 0;
	cqe->generation = generation;
	cqe->reserved1 = 0;
	__atomic_store_n(&s->cq_tail, s->cq_tail + 1, __ATOMIC_RELEASE);
	bitmix_store_release(&s->hdr->cq_tail, s->cq_tail);
	pthread_mutex_unlock(&s->cq_lock);
	if (write(s->complete_efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("client %u: completion doorbell: %m", s->id);
}

static bool range_ok(uint64_t off, uint64_t len, uint64_t size)
{
	uint64_t end;

	return off % 64 == 0 && !__builtin_add_overflow(off, len, &end) && end <= size;
}

/* Check a private copy of an SQE; on success *model is the (session-owned) model it names. */
static int sqe_check(const struct session *s, const struct bitmix_sqe *e, struct served_model **model)
{
	struct served_model *m = NULL;
	uint64_t in_bytes, out_bytes;

	for (size_t i = 0; i < s->n_open; i++)
		if (s->open[i]->id == e->model_id)
			m = s->open[i];
	if (!m)
		return -EBADF;
	if (e->batch == 0 || e->batch > BMX_MAX_BATCH)
		return -EINVAL;
	if (e->precision != BITMIX_PRECISION_CURRENT || e->flags || e->reserved0 || e->reserved1 ||
	    e->precision_arg)
		return -EOPNOTSUPP;
	in_bytes = (uint64_t)e->batch * bmx_model_input_size(m->model) * sizeof(float);
	out_bytes = (uint64_t)e->batch * bmx_model_output_size(m->model) * sizeof(float);
	if (e->in_length != in_bytes || e->out_length < out_bytes)
		return -EMSGSIZE;
	if (!range_ok(e->in_offset, e->in_length, s->data_size) ||
	    !range_ok(e->out_offset, out_bytes, s->data_size))
		return -ERANGE;
	*model = m;
	return 0;
}

/*
 * Take every new SQE the client published. A request is admitted only while in-flight requests
 * plus unreaped completions stay below the CQ size, so a completion always has a slot; a client
 * that does not reap just stops being served until it does.
 */
void session_drain_submissions(struct session *s)
{
	struct bmx_daemon *d = s->daemon;
	uint32_t tail = bitmix_load_acquire(&s->hdr->sq_tail);

	if (tail - s->sq_head > s->sq_entries) {
		session_close(s, "corrupted submission ring index: disconnected");
		return;
	}
	while (s->sq_head != tail) {
		/* in_flight first: a worker posts its CQE before it decrements in_flight, so this
		 * order can count a finishing request twice but never zero times. */
		int in_flight = __atomic_load_n(&s->in_flight, __ATOMIC_ACQUIRE);
		uint32_t cq_used = __atomic_load_n(&s->cq_tail, __ATOMIC_ACQUIRE) -
				   bitmix_load_acquire(&s->hdr->cq_head);
		struct served_model *m = NULL;
		struct bitmix_sqe e;
		struct job *job;
		int r;

		if (cq_used > s->cq_entries) {
			session_close(s, "corrupted completion ring index: disconnected");
			return;
		}
		if ((uint32_t)in_flight + cq_used >= s->cq_entries)
			break;
		memcpy(&e, &s->sq[s->sq_head & (s->sq_entries - 1)], sizeof(e));
		s->sq_head++;
		bitmix_store_release(&s->hdr->sq_head, s->sq_head);
		r = sqe_check(s, &e, &m);
		if (r == 0 && !(job = malloc(sizeof(*job))))
			r = -ENOMEM;
		if (r < 0) {
			__atomic_add_fetch(&d->requests_failed, 1, __ATOMIC_RELAXED);
			session_post_completion(s, e.user_data, r, 0);
			continue;
		}
		*job = (struct job){ .session = s, .model = m, .sqe = e };
		session_ref(s);
		served_model_ref(m);
		__atomic_add_fetch(&s->in_flight, 1, __ATOMIC_ACQ_REL);
		worker_pool_submit(d->pool, job);
	}
}
