/* SPDX-License-Identifier: MIT */
/*
 * bench_common.c — the benchmarks' clock, medians, thread pool and roofline measurements
 * (bench_common.h).
 *
 * Memory ordering: a parallel-for publishes its task block with a release store of the
 * generation counter; helpers acquire it, claim tasks with relaxed fetch-adds and report each
 * finished task with a release increment that the caller acquires before returning.
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"

double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double bench_median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define SPIN_LIMIT (1u << 20)

struct bench_pool {
	pthread_t threads[16];
	unsigned n; /* helpers */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	unsigned generation; /* atomic */
	int stop;            /* atomic */
	void (*fn)(void *arg, unsigned task);
	void *arg;
	unsigned n_tasks, next, done; /* next, done: atomic */
};

static void claim_tasks(struct bench_pool *p)
{
	for (;;) {
		unsigned t = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);

		if (t >= p->n_tasks)
			return;
		p->fn(p->arg, t);
		__atomic_add_fetch(&p->done, 1, __ATOMIC_RELEASE);
	}
}

static void *helper_main(void *arg)
{
	struct bench_pool *p = arg;
	unsigned seen = 0;

	for (;;) {
		unsigned spins = 0, g;

		while ((g = __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE)) == seen &&
		       !__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
			if (++spins < SPIN_LIMIT) {
				_mm_pause();
				continue;
			}
			pthread_mutex_lock(&p->lock);
			if (__atomic_load_n(&p->generation, __ATOMIC_ACQUIRE) == seen &&
			    !__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE))
				pthread_cond_wait(&p->wake, &p->lock);
			pthread_mutex_unlock(&p->lock);
		}
		if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE))
			return NULL;
		seen = g;
		claim_tasks(p);
	}
}

struct bench_pool *bench_pool_new(unsigned threads)
{
	struct bench_pool *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	for (unsigned i = 0; i + 1 < threads && i < 16; i++)
		if (pthread_create(&p->threads[p->n], NULL, helper_main, p) == 0)
			p->n++;
	return p;
}

void bench_pool_free(struct bench_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	__atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->n; i++)
		pthread_join(p->threads[i], NULL);
	free(p);
}

void bench_pool_for_each(void *ctx, unsigned n_tasks, void (*fn)(void *arg, unsigned task), void *arg)
{
	struct bench_pool *p = ctx;

	p->fn = fn;
	p->arg = arg;
	p->n_tasks = n_tasks;
	__atomic_store_n(&p->next, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&p->done, 0, __ATOMIC_RELAXED);
	pthread_mutex_lock(&p->lock);
	__atomic_add_fetch(&p->generation, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	claim_tasks(p);
	while (__atomic_load_n(&p->done, __ATOMIC_ACQUIRE) < n_tasks)
		_mm_pause();
}

struct bmx_parallel bench_pool_parallel(struct bench_pool *p)
{
	return (struct bmx_parallel){ bench_pool_for_each, p, p->n + 1 };
}

struct bw_job {
	const uint8_t *buf;
	size_t bytes;
	unsigned tasks;
	long long sink[16];
};

__attribute__((target("avx512f"))) static void bw_task(void *arg, unsigned t)
{
	struct bw_job *j = arg;
	const size_t per = j->bytes / j->tasks / 256 * 256;
	const uint8_t *p = j->buf + per * t, *end = p + per;
	__m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;

	for (; p < end; p += 256) {
		_mm_prefetch((const char *)p + 2048, _MM_HINT_T0);
		_mm_prefetch((const char *)p + 2048 + 64, _MM_HINT_T0);
		_mm_prefetch((const char *)p + 2048 + 128, _MM_HINT_T0);
		_mm_prefetch((const char *)p + 2048 + 192, _MM_HINT_T0);
		a = _mm512_add_epi64(a, _mm512_load_si512(p));
		b = _mm512_add_epi64(b, _mm512_load_si512(p + 64));
		c = _mm512_add_epi64(c, _mm512_load_si512(p + 128));
		d = _mm512_add_epi64(d, _mm512_load_si512(p + 192));
	}
	j->sink[t] = _mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d)));
}

#define BW_SLICE (16u << 20)
#define BW_PASSES 3

/*
 * The buffer is read in 16 MiB slices, one timed parallel-for each, rotating through all of it
 * (so no slice is still cached when it comes back). Short timings are rarely cut by the
 * scheduler on a shared machine; the fastest quarter of them is what the memory can do.
 */
double bench_read_bandwidth(struct bench_pool *pool, size_t bytes)
{
	const size_t slices = bytes / BW_SLICE, n = slices * BW_PASSES;
	uint8_t *buf = aligned_alloc(64, bytes);
	double *t = calloc(n ? n : 1, sizeof(double)), best;
	struct bw_job j = { .bytes = BW_SLICE, .tasks = pool->n + 1 };

	if (!buf || !t || !slices || !__builtin_cpu_supports("avx512f")) {
		free(buf);
		free(t);
		return 0;
	}
	memset(buf, 1, bytes);
	for (size_t i = 0; i < n; i++) {
		double t0;

		j.buf = buf + (i % slices) * BW_SLICE;
		t0 = bench_now();
		bench_pool_for_each(pool, j.tasks, bw_task, &j);
		t[i] = bench_now() - t0;
	}
	qsort(t, n, sizeof(t[0]), cmp_double);
	best = t[n / 4];
	free(buf);
	free(t);
	return (double)(BW_SLICE / j.tasks / 256 * 256 * j.tasks) / best;
}

#define PEAK_ITERS 2000000u

/* Twelve independent vpdpbusd chains per step, in assembly so no compiler can merge them. */
__attribute__((target("avx512f,avx512vnni"))) static void peak_task(void *arg, unsigned t)
{
	long long *sink = arg;
	__m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2), s = _mm512_setzero_si512();

	for (unsigned it = 0; it < PEAK_ITERS; it++)
		__asm__ volatile(
			"vpdpbusd %1, %0, %%zmm20\n\tvpdpbusd %1, %0, %%zmm21\n\t"
			"vpdpbusd %1, %0, %%zmm22\n\tvpdpbusd %1, %0, %%zmm23\n\t"
			"vpdpbusd %1, %0, %%zmm24\n\tvpdpbusd %1, %0, %%zmm25\n\t"
			"vpdpbusd %1, %0, %%zmm26\n\tvpdpbusd %1, %0, %%zmm27\n\t"
			"vpdpbusd %1, %0, %%zmm28\n\tvpdpbusd %1, %0, %%zmm29\n\t"
			"vpdpbusd %1, %0, %%zmm30\n\tvpdpbusd %1, %0, %%zmm31\n\t"
			:
			: "v"(a), "v"(b)
			: "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27",
			  "xmm28", "xmm29", "xmm30", "xmm31");
	sink[t] = _mm512_reduce_add_epi32(s);
}

double bench_vnni_peak(struct bench_pool *pool)
{
	long long sink[16];
	double t[5];

	if (!bmx_kernels_supported(BMX_KERNELS_AVX512))
		return 0;
	for (int i = 0; i < 5; i++) {
		double t0 = bench_now();

		bench_pool_for_each(pool, pool->n + 1, peak_task, sink);
		t[i] = bench_now() - t0;
	}
	qsort(t, 5, sizeof(t[0]), cmp_double); /* the best of 5, as for the bandwidth */
	return (double)PEAK_ITERS * 12 * 64 * 2 * (pool->n + 1) / t[0];
}
