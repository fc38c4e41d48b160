/* SPDX-License-Identifier: MIT */
/*
 * daemon_cost.c — each served model's per-layer cost table (cost_table.h), from load to the
 * policy: read from the cache when the model, CPU and kernel path are those it was measured
 * under; else batch 1 measured at once within a short start-up budget, and the rest (and
 * whatever the budget did not reach) by a background thread at idle priority (SCHED_IDLE: it
 * runs only on CPUs nothing else wants, and the daemon serves meanwhile). Rows not yet measured
 * are estimated, and the log says how.
 *
 * Threads: the measuring thread works on its own copy and publishes it under cost.lock with a
 * new generation; the loop thread, on every governor tick, sees the generation change and hands
 * the table to the policy (the governor runs on the loop thread only). served_model_free stops
 * the thread (cost.stop); one that has not finished is not waited for (an idle-priority thread
 * on a saturated machine may not run for seconds, and the loop must answer the watchdog): it
 * frees the engine it times and the model itself when it ends, so it never outlives them. At
 * exit (served_cost_join_at_exit) threads are joined, so none outlives the daemon.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cost_cache.h"
#include "daemon.h"
#include "log.h"

#define STARTUP_BUDGET_NS 60000000ull /* measured before the model is served */
#define REPS_BATCH1 9		      /* repetitions whose median is a row, batch 1 */
#define REPS_LARGE 5		      /* the same at the large batch */

/* Under cost.lock: estimate what is not measured, bump the generation. */
static void publish_locked(struct served_model *m)
{
	cost_table_estimate(&m->cost.table, m->model, m->cost.estimated, sizeof(m->cost.estimated));
	if (cost_table_complete(&m->cost.table) && !m->cost.complete_ns)
		m->cost.complete_ns = now_ns();
	__atomic_add_fetch(&m->cost.generation, 1, __ATOMIC_RELEASE);
}

static int publish(struct served_model *m, const struct cost_table *t)
{
	int r;

	pthread_mutex_lock(&m->cost.lock);
	r = cost_table_copy(&m->cost.table, t);
	if (r == 0)
		publish_locked(m);
	pthread_mutex_unlock(&m->cost.lock);
	return r;
}

static void save(struct served_model *m, const struct cost_table *t)
{
	int r;

	if (!m->cost.cache_path[0])
		return;
	r = cost_cache_write(m->cost.cache_path, &m->cost.key, t);
	if (r < 0)
		log_warning_errno(r, "model %s: writing its cost table to %s", m->name,
				  m->cost.cache_path);
}

static bool batch_measured(const struct cost_table *t, unsigned bi)
{
	for (uint32_t l = 0; l < t->layer_count; l++)
		if ((t->layers[l].allowed & ~t->layers[l].measured[bi]) != 0)
			return false;
	return true;
}

/*
 * Batch 1 again, seconds after its first pass: each row keeps the lower of the two medians. A
 * pass at batch 1 lasts milliseconds, so one burst of a neighbour's work can cover all of its
 * repetitions; timing noise only ever slows a run, so the faster pass is the truer one.
 */
static int measure_batch1_again(struct served_model *m, struct cost_table *t)
{
	struct cost_table again = { 0 };
	int r = cost_table_copy(&again, t);

	for (uint32_t l = 0; r == 0 && l < again.layer_count; l++)
		again.layers[l].measured[0] = 0;
	if (r == 0)
		r = cost_measure(&again, m->engine, 0, REPS_BATCH1, 0, &m->cost.stop);
	for (uint32_t l = 0; r == 0 && l < t->layer_count; l++) {
		struct cost_layer *c = &t->layers[l];

		for (unsigned b = 2; b <= 8; b++)
			if ((c->measured[0] & (1u << b)) &&
			    again.layers[l].ns[0][b] < c->ns[0][b]) {
				c->ns[0][b] = again.layers[l].ns[0][b];
				c->rel_error[0][b] = again.layers[l].rel_error[0][b];
			}
	}
	cost_table_free(&again);
	return r;
}

static void *measure_thread(void *arg)
{
	struct served_model *m = arg;
	const struct sched_param idle = { 0 };
	struct cost_table t = { 0 };
	uint32_t rows, measured;
	bool orphaned;
	int r = pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle);

	if (r != 0)
		log_warning_errno(r,
				  "model %s: the cost table's thread at idle priority (SCHED_IDLE)",
				  m->name);
	pthread_mutex_lock(&m->cost.lock);
	r = cost_table_copy(&t, &m->cost.table);
	pthread_mutex_unlock(&m->cost.lock);
	for (unsigned bi = 0; r == 0 && bi < COST_BATCHES; bi++) {
		if (batch_measured(&t, bi))
			continue;
		r = cost_measure(&t, m->engine, bi, bi ? REPS_LARGE : REPS_BATCH1, 0,
				 &m->cost.stop);
		if (r == 0 && bi == 0) /* the large batch waits for batch 1's second pass */
			r = publish(m, &t);
	}
	if (r == 0)
		r = measure_batch1_again(m, &t);
	if (r == 0)
		r = publish(m, &t);
	if (r == 0) {
		save(m, &t);
		cost_table_count(&t, &rows, &measured);
		struct timespec cpu;

		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
		log_info(
			"model %s: cost table complete: %u rows measured at batch 1 and %u, %.2f s "
			"after load, %.2f s of CPU at idle priority (%s kernels, %s)",
			m->name, measured, t.batch[1],
			(double)(m->cost.complete_ns - m->cost.start_ns) / 1e9,
			(double)cpu.tv_sec + (double)cpu.tv_nsec / 1e9, m->cost.key.kernels,
			m->cost.key.cpu);
	} else if (r != -ECANCELED) {
		log_error_errno(r, "model %s: measuring its cost table; the estimates stay",
				m->name);
	}
	cost_table_free(&t);
	pthread_mutex_lock(&m->cost.lock);
	m->cost.done = true;
	orphaned = m->cost.orphaned;
	pthread_mutex_unlock(&m->cost.lock);
	if (orphaned) { /* served_model_free() ran meanwhile and left the rest to this thread */
		m->cost.thread_running = false;
		served_cost_stop(m);
		served_model_release(m);
	}
	return NULL;
}

/* From the cache if it stands for this key, else batch 1 within the start-up budget. */
static void measure_at_load(struct served_model *m)
{
	int r = -ENOENT;

	cost_key_of(m->model, m->engine, &m->cost.key);
	if (cost_cache_path(m->name, m->cost.cache_path, sizeof(m->cost.cache_path)) == 0)
		r = cost_cache_read(m->cost.cache_path, &m->cost.key, &m->cost.table);
	else
		m->cost.cache_path[0] = '\0';
	if (r == 0) {
		snprintf(m->cost.source, sizeof(m->cost.source), "cache");
		log_info("model %s: cost table read from %s", m->name, m->cost.cache_path);
	} else {
		r = cost_measure(&m->cost.table, m->engine, 0, REPS_BATCH1,
				 now_ns() + STARTUP_BUDGET_NS, NULL);
		if (r < 0)
			log_info("model %s: batch 1 did not fit the %llu ms start-up budget (%s); "
				 "measuring it in the background",
				 m->name, STARTUP_BUDGET_NS / 1000000, strerror(-r));
	}
}

int served_cost_start(struct served_model *m)
{
	uint32_t rows, measured, small, large;
	int r;

	m->cost.start_ns = now_ns();
	snprintf(m->cost.source, sizeof(m->cost.source), "measured");
	r = pthread_mutex_init(&m->cost.lock, NULL);
	if (r != 0)
		return -r;
	m->cost.lock_ready = true;
	r = cost_table_init(&m->cost.table, m->model, BMX_MAX_BATCH);
	if (r < 0)
		return r;
	measure_at_load(m);
	publish_locked(m); /* no other thread yet */
	for (unsigned b = 2; b <= 8; b++)
		m->uniform_ns[b] = cost_table_uniform_ns(&m->cost.table, 0, b);
	cost_table_count(&m->cost.table, &rows, &measured);
	cost_table_count_batch(&m->cost.table, 0, &rows, &small);
	cost_table_count_batch(&m->cost.table, 1, &rows, &large);
	log_info("model %s: cost table: %u of %u rows measured at batch 1, %u at batch %u (%s "
		 "kernels, %s)%s%s",
		 m->name, small, rows, large, m->cost.table.batch[1], m->cost.key.kernels,
		 m->cost.key.cpu, m->cost.estimated[0] ? "; " : "", m->cost.estimated);
	if (measured == rows)
		return 0;
	/* Every signal blocked in the thread: models load before main() blocks its own. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&m->cost.thread, NULL, measure_thread, m);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		return log_error_errno(r, "model %s: starting the cost table's thread", m->name);
	m->cost.thread_running = true;
	return 0;
}

static bool join_at_exit; /* atomic: the daemon is ending: threads are joined, none outlives it */

void served_cost_join_at_exit(void)
{
	__atomic_store_n(&join_at_exit, true, __ATOMIC_RELAXED);
}

int served_cost_stop(struct served_model *m)
{
	if (m->cost.thread_running) {
		const bool wait = __atomic_load_n(&join_at_exit, __ATOMIC_RELAXED);
		bool done;

		__atomic_store_n(&m->cost.stop, true, __ATOMIC_RELAXED);
		pthread_mutex_lock(&m->cost.lock);
		done = m->cost.done;
		m->cost.orphaned = !done && !wait;
		pthread_mutex_unlock(&m->cost.lock);
		if (!done && !wait) {
			pthread_detach(m->cost.thread);
			log_info(
				"model %s: its cost table's thread ends on its own and frees the engine",
				m->name);
			return -EINPROGRESS;
		}
		pthread_join(m->cost.thread, NULL);
		m->cost.thread_running = false;
	}
	if (m->cost.lock_ready)
		pthread_mutex_destroy(&m->cost.lock);
	m->cost.lock_ready = false;
	cost_table_free(&m->cost.table);
	return 0;
}

int served_cost_layer_costs(struct served_model *m, struct gov_layer_cost **out)
{
	const uint32_t n = m->model->layer_count;
	struct gov_layer_cost *c = calloc(n, sizeof(*c));

	*out = NULL;
	if (!c)
		return -ENOMEM;
	pthread_mutex_lock(&m->cost.lock);
	for (uint32_t l = 0; l < n && l < m->cost.table.layer_count; l++) {
		memcpy(c[l].ns, m->cost.table.layers[l].ns, sizeof(c[l].ns));
		memcpy(c[l].rel_error, m->cost.table.layers[l].rel_error, sizeof(c[l].rel_error));
	}
	m->cost.applied = __atomic_load_n(&m->cost.generation, __ATOMIC_ACQUIRE);
	pthread_mutex_unlock(&m->cost.lock);
	*out = c;
	return 0;
}

int served_cost_snapshot(struct served_model *m, struct cost_table *out, uint64_t *complete_ns)
{
	int r;

	pthread_mutex_lock(&m->cost.lock);
	r = cost_table_copy(out, &m->cost.table);
	*complete_ns = m->cost.complete_ns ? m->cost.complete_ns - m->cost.start_ns : 0;
	pthread_mutex_unlock(&m->cost.lock);
	return r;
}

/* Loop thread, every governor tick: new rows to the policy; the traffic's mean batch. */
void served_cost_tick(struct served_model *m)
{
	struct gov_layer_cost *c;
	uint64_t req = m->requests_admitted - m->batch_window.requests;
	uint64_t samples = m->samples_admitted - m->batch_window.samples;

	if (req) {
		/* An exponential average over about three ticks, as the rate is. */
		m->mean_batch =
			m->mean_batch > 0
				? m->mean_batch +
					  ((double)samples / (double)req - m->mean_batch) / 3
				: (double)samples / (double)req;
		m->batch_window.requests = m->requests_admitted;
		m->batch_window.samples = m->samples_admitted;
		gov_policy_set_batch(m->policy, m->mean_batch);
	}
	if (__atomic_load_n(&m->cost.generation, __ATOMIC_ACQUIRE) == m->cost.applied)
		return;
	if (served_cost_layer_costs(m, &c) < 0)
		return;
	gov_policy_set_layer_costs(m->policy, c);
	free(c);
	log_debug("model %s: the governor has the cost table's new rows (cost now %.0f ns/sample)",
		  m->name, gov_policy_cost(m->policy));
}
