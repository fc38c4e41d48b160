/* SPDX-License-Identifier: MIT */
/*
 * workers.c — the threads that run inference requests.
 *
 * The event loop queues checked jobs, one queue per session; a worker takes one, snapshots the
 * model's operating point
 * from its control page (one consistent generation for the whole request), runs the engine on
 * the client's arena, and posts the completion with that generation. Each worker owns its
 * scratch memory, grown on demand and reused.
 *
 * The pool also offers the engine a parallel-for (struct bmx_parallel): the worker running a
 * request publishes one "team" of tasks at a time; idle workers join it before taking new jobs.
 * Tasks are claimed with an atomic counter; the publisher runs tasks too, unpublishes the team
 * under the lock and waits (spinning: tasks are short) until every joined helper has left.
 *
 * The governor's work cap (governor_cap.c) is a token bucket of CPU-nanoseconds: it fills at
 * `cap` CPUs' worth per nanosecond up to WORK_CAP_BURST_NS of them, every nanosecond of engine
 * CPU time the workers spend drains it (it may go below zero: a request is never cut short), and
 * a worker starts a queued request only while it holds tokens, else it sleeps until the bucket
 * refills. The cap delays every client alike.
 *
 * Fairness: deficit round-robin over the sessions with queued work, weighted by samples. Each
 * turn a session's deficit grows by its weight (limits.weights) times BMX_MAX_BATCH samples and
 * it runs jobs while their batches fit, so one client's flood of large batches delays another
 * client's small request by about one large batch per worker, not by the flood. A session's
 * own jobs keep their order. When a session closes, its queued jobs are dropped at once
 * (worker_pool_cancel); jobs already running finish.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bmx_util.h"
#include "bmx_adaptive.h"
#include "daemon.h"
#include "log.h"

struct worker {
	struct worker_pool *pool;
	pthread_t thread;
	void *scratch;
	size_t scratch_size;
	struct bmx_adaptive_result results[BMX_MAX_BATCH]; /* adaptive requests' per-sample record */
};

/* One request's split work; lives on the publisher's stack. */
struct team {
	void (*fn)(void *arg, unsigned task);
	void *arg;
	unsigned n_tasks;
	unsigned next;	  /* atomic: the next task to claim */
	unsigned done;	  /* atomic: tasks finished */
	unsigned helpers; /* atomic: workers inside the team (joined under the pool lock) */
};

/* At most this much CPU time is admitted at once after an idle spell under a cap. */
#define WORK_CAP_BURST_NS 20000000ll
/* A worker held back by the cap wakes at least this often (its wait is accounted meanwhile). */
#define WORK_CAP_SLICE_NS 5000000ull

struct work_cap {
	double cpus;	       /* 0: none; under the pool lock */
	int64_t tokens_ns;     /* atomic; under zero after a request overran */
	uint64_t refill_ns;    /* when tokens were last added; under the lock */
	uint64_t throttled_ns; /* atomic: worker time spent waiting for tokens */
	uint64_t occupied_ns;  /* atomic: wall time workers spent on requests, running or not */
};

struct worker_pool {
	struct bmx_daemon *daemon;
	struct work_cap cap;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct session *active; /* sessions with queued jobs, round-robin order, under lock */
	struct session *active_tail;
	unsigned queued;   /* jobs queued, under lock */
	struct team *team; /* published split work, under lock */
	bool stop;
	unsigned n;
	struct worker workers[];
};

static int scratch_reserve(struct worker *w, size_t size)
{
	void *p;

	if (size <= w->scratch_size)
		return 0;
	size = (size + 4095) & ~(size_t)4095;
	p = aligned_alloc(64, size);
	if (!p)
		return -ENOMEM;
	free(w->scratch);
	w->scratch = p;
	w->scratch_size = size;
	return 0;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Claim and run tasks of T until none is left. */
static void team_work(struct team *t)
{
	for (;;) {
		unsigned i = __atomic_fetch_add(&t->next, 1, __ATOMIC_RELAXED);

		if (i >= t->n_tasks)
			return;
		t->fn(t->arg, i);
		__atomic_add_fetch(&t->done, 1, __ATOMIC_RELEASE);
	}
}

static bool team_has_work(const struct worker_pool *pool)
{
	return pool->team &&
	       __atomic_load_n(&pool->team->next, __ATOMIC_RELAXED) < pool->team->n_tasks;
}

/* bmx_parallel.for_each over the pool; if a team is already out, the caller works alone. */
static void pool_for_each(void *ctx, unsigned n_tasks, void (*fn)(void *arg, unsigned task),
			  void *arg)
{
	struct worker_pool *pool = ctx;
	struct team t = { .fn = fn, .arg = arg, .n_tasks = n_tasks };
	bool published = false;

	pthread_mutex_lock(&pool->lock);
	if (!pool->team) {
		pool->team = &t;
		published = true;
		pthread_cond_broadcast(&pool->wake);
	}
	pthread_mutex_unlock(&pool->lock);
	team_work(&t);
	if (!published)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->team = NULL;
	pthread_mutex_unlock(&pool->lock);
	while (__atomic_load_n(&t.done, __ATOMIC_ACQUIRE) < n_tasks ||
	       __atomic_load_n(&t.helpers, __ATOMIC_ACQUIRE) > 0)
		bitmix_cpu_relax();
}

/* Engine CPU time spent: it heats the sensors' simulator (sensor_loop.c) and drains the cap. */
static void pool_charge(struct worker_pool *pool, uint64_t cpu_ns)
{
	__atomic_add_fetch(&pool->daemon->work_ns, cpu_ns, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&pool->cap.tokens_ns, (int64_t)cpu_ns, __ATOMIC_RELAXED);
}

/* Under the lock: may a queued request start now? Refills the bucket first. */
static bool cap_admits(struct worker_pool *pool, uint64_t now)
{
	struct work_cap *c = &pool->cap;
	int64_t tokens, burst;

	if (c->cpus <= 0 || pool->stop)
		return true;
	burst = (int64_t)(c->cpus * WORK_CAP_BURST_NS);
	tokens = __atomic_load_n(&c->tokens_ns, __ATOMIC_RELAXED);
	if (now > c->refill_ns) {
		tokens += (int64_t)((double)(now - c->refill_ns) * c->cpus);
		c->refill_ns = now;
	}
	tokens = tokens > burst ? burst : tokens;
	__atomic_store_n(&c->tokens_ns, tokens, __ATOMIC_RELAXED);
	return tokens > 0;
}

/*
 * Under the lock: sleep until the bucket holds tokens again (or anything else wakes us), at most
 * WORK_CAP_SLICE_NS at a time so that the time spent waiting is accounted as it passes.
 */
static void cap_wait(struct worker_pool *pool, uint64_t now)
{
	int64_t debt = -__atomic_load_n(&pool->cap.tokens_ns, __ATOMIC_RELAXED);
	uint64_t wait = (uint64_t)((double)(debt > 0 ? debt : 0) / pool->cap.cpus) + 1000;
	uint64_t until = now + (wait < WORK_CAP_SLICE_NS ? wait : WORK_CAP_SLICE_NS);
	struct timespec ts = { (time_t)(until / 1000000000ull), (long)(until % 1000000000ull) };

	pthread_cond_timedwait(&pool->wake, &pool->lock, &ts);
	__atomic_add_fetch(&pool->cap.throttled_ns, now_ns() - now, __ATOMIC_RELAXED);
}

void worker_pool_set_work_cap(struct worker_pool *pool, double cpus)
{
	pthread_mutex_lock(&pool->lock);
	if (pool->cap.cpus <= 0 && cpus > 0) { /* a new cap starts with an empty bucket */
		__atomic_store_n(&pool->cap.tokens_ns, 0, __ATOMIC_RELAXED);
		pool->cap.refill_ns = now_ns();
	}
	pool->cap.cpus = cpus > 0 ? cpus : 0;
	pthread_cond_broadcast(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
}

uint64_t worker_pool_occupied_ns(const struct worker_pool *pool)
{
	return pool ? __atomic_load_n(&pool->cap.occupied_ns, __ATOMIC_RELAXED) : 0;
}

uint64_t worker_pool_throttled_ns(const struct worker_pool *pool)
{
	return pool ? __atomic_load_n(&pool->cap.throttled_ns, __ATOMIC_RELAXED) : 0;
}

/*
 * Samples per slice of a request at the operating point: a request waiting behind a large batch
 * waits for one slice of it per worker, not for the whole batch (docs/protocol.md, "Fairness").
 */
#define WORKER_SLICE 16u

static int slice_requeue(struct worker_pool *pool, struct job *job);

/* The next slice of a sliceable request, at the operating point it started at. */
static int job_slice(struct worker *w, struct job *job, const struct bmx_parallel *par)
{
	struct served_model *m = job->model;
	const uint32_t left = job->sqe.batch - job->done;
	const uint32_t n = left < WORKER_SLICE ? left : WORKER_SLICE;
	const uint64_t in = bmx_model_input_size(m->model), out = bmx_model_output_size(m->model);
	int r;

	if (!job->bits) {
		job->bits = calloc(m->model->layer_count ? m->model->layer_count : 1,
				   sizeof(*job->bits));
		if (!job->bits)
			return -ENOMEM;
		job->generation = served_model_snapshot(m, job->bits);
	}
	r = bmx_engine_run_parallel(m->engine, job->bits, n, job->in + job->done * in,
				    job->out + job->done * out, w->scratch, par);
	if (r == 0) {
		job->done += n;
		__atomic_add_fetch(&m->samples_completed, n, __ATOMIC_RELAXED);
	}
	return r;
}

static void job_run(struct worker *w, struct job *job)
{
	struct bmx_layer_bits bits[BMX_MAX_LAYERS];
	struct served_model *m = job->model;
	const struct bitmix_sqe *e = &job->sqe;
	struct bmx_daemon *d = w->pool->daemon;
	uint64_t generation = 0;
	int r;

	r = scratch_reserve(w, job->sliceable ? bmx_engine_scratch_size(m->engine, WORKER_SLICE)
					      : served_adaptive_scratch_size(m, e));
	if (r == 0) {
		const struct bmx_parallel par = { pool_for_each, w->pool, w->pool->n };
		uint64_t cpu0 = thread_cpu_ns(), wall0 = now_ns();

		if (job->sliceable) {
			r = job_slice(w, job, &par);
		} else {
			/* The snapshot is the ceiling: adaptive requests choose at or below it. */
			generation = served_model_snapshot(m, bits);
			r = served_adaptive_run(m, job, bits, w->scratch, &par, w->results);
		}
		pool_charge(w->pool, thread_cpu_ns() - cpu0);
		__atomic_add_fetch(&w->pool->cap.occupied_ns, now_ns() - wall0, __ATOMIC_RELAXED);
	}
	if (job->sliceable) {
		if (r == 0 && job->done < e->batch) {
			r = slice_requeue(w->pool, job);
			if (r == 0)
				return; /* its next slice after the others' turns */
		}
		generation = job->generation;
		job->adaptive = 0;
		job->bitops = job->bits ? bmx_bitops(m->model, job->bits, 0) * e->batch : 0;
	}
	__atomic_add_fetch(r == 0 ? &d->requests_completed : &d->requests_failed, 1,
			   __ATOMIC_RELAXED);
	if (r == 0 && !job->sliceable)
		__atomic_add_fetch(&m->samples_completed, e->batch, __ATOMIC_RELAXED);
	job_complete(job, r, generation);
}

static void active_append(struct worker_pool *pool, struct session *s)
{
	s->fair.next = NULL;
	if (pool->active_tail)
		pool->active_tail->fair.next = s;
	else
		pool->active = s;
	pool->active_tail = s;
}

static struct session *active_pop(struct worker_pool *pool)
{
	struct session *s = pool->active;

	pool->active = s->fair.next;
	if (!pool->active)
		pool->active_tail = NULL;
	s->fair.next = NULL;
	return s;
}

/* What running JOB's next turn costs in the round: a slice, or the whole batch. */
static int64_t job_cost(const struct job *job)
{
	const uint32_t left = job->sqe.batch - job->done;

	if (job->sliceable && left > WORKER_SLICE)
		return WORKER_SLICE;
	return left ? left : 1;
}

/*
 * Under the lock: the next job by deficit round-robin, or NULL. The head session runs its next
 * job if its deficit covers the job's turn (a slice, or an unsliced batch); else it gets its
 * quantum (a slice's worth, times its weight) and goes to the back. Deficits grow every round,
 * so the loop ends within BMX_MAX_BATCH / WORKER_SLICE rounds.
 */
static struct job *pool_pick(struct worker_pool *pool)
{
	while (pool->active) {
		struct session *s = pool->active;
		struct job *job = s->fair.head;
		const int64_t cost = job_cost(job);

		if (s->fair.deficit < cost) {
			s->fair.deficit += (int64_t)s->fair.weight * WORKER_SLICE;
			active_append(pool, active_pop(pool));
			continue;
		}
		s->fair.deficit -= cost;
		s->fair.head = job->next;
		pool->queued--;
		if (!s->fair.head) { /* idle: leaves the round, and keeps no credit */
			s->fair.tail = NULL;
			s->fair.deficit = 0;
			s->fair.active = false;
			active_pop(pool);
		}
		return job;
	}
	return NULL;
}

/*
 * A sliced request back at the head of its session's queue, the session at the back of the
 * round if it had left it; -ECANCELED when the session closed meanwhile (its rest is dropped).
 */
static int slice_requeue(struct worker_pool *pool, struct job *job)
{
	struct session *s = job->session;

	pthread_mutex_lock(&pool->lock);
	if (s->fair.closed) {
		pthread_mutex_unlock(&pool->lock);
		return -ECANCELED;
	}
	job->next = s->fair.head;
	s->fair.head = job;
	if (!s->fair.tail)
		s->fair.tail = job;
	if (!s->fair.active) {
		s->fair.active = true;
		active_append(pool, s);
	}
	pool->queued++;
	pthread_cond_signal(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct worker_pool *pool = w->pool;

	for (;;) {
		struct job *job;

		pthread_mutex_lock(&pool->lock);
		for (;;) {
			uint64_t now;

			if (team_has_work(pool) || (!pool->queued && pool->stop))
				break;
			if (!pool->queued) {
				pthread_cond_wait(&pool->wake, &pool->lock);
				continue;
			}
			now = now_ns();
			if (cap_admits(pool, now))
				break;
			cap_wait(pool, now);
		}
		if (team_has_work(pool)) {
			struct team *t = pool->team;

			uint64_t cpu0, wall0;

			__atomic_add_fetch(&t->helpers, 1, __ATOMIC_RELAXED);
			pthread_mutex_unlock(&pool->lock);
			cpu0 = thread_cpu_ns();
			wall0 = now_ns();
			team_work(t);
			pool_charge(pool, thread_cpu_ns() - cpu0);
			__atomic_add_fetch(&pool->cap.occupied_ns, now_ns() - wall0,
					   __ATOMIC_RELAXED);
			__atomic_sub_fetch(&t->helpers, 1, __ATOMIC_RELEASE);
			continue;
		}
		job = pool_pick(pool);
		pthread_mutex_unlock(&pool->lock);
		if (!job)
			break; /* stopping and nothing left */
		job_run(w, job);
	}
	free(w->scratch);
	return NULL;
}

int worker_pool_new(struct bmx_daemon *d, unsigned n_threads, struct worker_pool **out)
{
	struct worker_pool *pool = calloc(1, sizeof(*pool) + n_threads * sizeof(struct worker));
	pthread_condattr_t attr;
	int r;

	if (!pool)
		return -ENOMEM;
	pool->daemon = d;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* the cap's timed waits */
	pthread_cond_init(&pool->wake, &attr);
	pthread_condattr_destroy(&attr);
	for (unsigned i = 0; i < n_threads; i++) {
		pool->workers[i].pool = pool;
		r = -pthread_create(&pool->workers[i].thread, NULL, worker_main, &pool->workers[i]);
		if (r < 0) {
			worker_pool_free(pool);
			return log_error_errno(r, "starting worker thread %u", i);
		}
		pool->n++;
	}
	*out = pool;
	return 0;
}

void worker_pool_submit(struct worker_pool *pool, struct job *job, unsigned weight)
{
	struct session *s = job->session;

	job->next = NULL;
	job->sliceable = job->sqe.batch > WORKER_SLICE &&
			 served_adaptive_off(job->model, job->sqe.precision);
	pthread_mutex_lock(&pool->lock);
	if (s->fair.closed) { /* a closing session's request: never queued */
		pthread_mutex_unlock(&pool->lock);
		job_complete(job, -ECANCELED, 0);
		return;
	}
	s->fair.weight = weight ? weight : 1;
	if (s->fair.tail)
		s->fair.tail->next = job;
	else
		s->fair.head = job;
	s->fair.tail = job;
	if (!s->fair.active) { /* joins at the back, with its first quantum */
		s->fair.active = true;
		s->fair.deficit = (int64_t)s->fair.weight * WORKER_SLICE;
		active_append(pool, s);
	}
	pool->queued++;
	pthread_cond_signal(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
}

/* S is closing: take its queued jobs out of the round; the caller completes them. */
struct job *worker_pool_cancel(struct worker_pool *pool, struct session *s)
{
	struct job *jobs;

	if (!pool)
		return NULL;
	pthread_mutex_lock(&pool->lock);
	jobs = s->fair.head;
	if (s->fair.active) {
		for (struct session **p = &pool->active; *p; p = &(*p)->fair.next)
			if (*p == s) {
				*p = s->fair.next;
				break;
			}
		pool->active_tail = NULL;
		for (struct session *o = pool->active; o; o = o->fair.next)
			pool->active_tail = o;
		for (struct job *j = jobs; j; j = j->next)
			pool->queued--;
	}
	s->fair = (struct session_fair){ .closed = true };
	pthread_mutex_unlock(&pool->lock);
	return jobs;
}

void worker_pool_free(struct worker_pool *pool)
{
	if (!pool)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stop = true;
	pthread_cond_broadcast(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
	for (unsigned i = 0; i < pool->n; i++)
		pthread_join(pool->workers[i].thread, NULL);
	pthread_cond_destroy(&pool->wake);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}

unsigned worker_pool_size(const struct worker_pool *pool)
{
	return pool ? pool->n : 0;
}
