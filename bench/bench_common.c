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
#include <stdio.h>
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
	int stop;	     /* atomic */
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

void bench_pool_for_each(void *ctx, unsigned n_tasks, void (*fn)(void *arg, unsigned task),
			 void *arg)
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

__attribute__((target("avx512f"))) static void bw_task_avx512(void *arg, unsigned t)
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
	j->sink[t] = _mm512_reduce_add_epi64(
		_mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d)));
}

/* The same read with 32-byte loads, for CPUs without AVX-512. */
__attribute__((target("avx2"))) static void bw_task_avx2(void *arg, unsigned t)
{
	struct bw_job *j = arg;
	const size_t per = j->bytes / j->tasks / 256 * 256;
	const uint8_t *p = j->buf + per * t, *end = p + per;
	__m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;

	for (; p < end; p += 256) {
		_mm_prefetch((const char *)p + 2048, _MM_HINT_T0);
		_mm_prefetch((const char *)p + 2048 + 64, _MM_HINT_T0);
		_mm_prefetch((const char *)p + 2048 + 128, _MM_HINT_T0);
		_mm_prefetch((const char *)p + 2048 + 192, _MM_HINT_T0);
		a = _mm256_add_epi64(
			a, _mm256_add_epi64(
				   _mm256_load_si256((const __m256i *)(const void *)p),
				   _mm256_load_si256((const __m256i *)(const void *)(p + 32))));
		b = _mm256_add_epi64(
			b, _mm256_add_epi64(
				   _mm256_load_si256((const __m256i *)(const void *)(p + 64)),
				   _mm256_load_si256((const __m256i *)(const void *)(p + 96))));
		c = _mm256_add_epi64(
			c, _mm256_add_epi64(
				   _mm256_load_si256((const __m256i *)(const void *)(p + 128)),
				   _mm256_load_si256((const __m256i *)(const void *)(p + 160))));
		d = _mm256_add_epi64(
			d, _mm256_add_epi64(
				   _mm256_load_si256((const __m256i *)(const void *)(p + 192)),
				   _mm256_load_si256((const __m256i *)(const void *)(p + 224))));
	}
	a = _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d));
	j->sink[t] = _mm256_extract_epi64(a, 0) + _mm256_extract_epi64(a, 1) +
		     _mm256_extract_epi64(a, 2) + _mm256_extract_epi64(a, 3);
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

	void (*task)(void *, unsigned) = __builtin_cpu_supports("avx512f") ? bw_task_avx512
					 : __builtin_cpu_supports("avx2")  ? bw_task_avx2
									   : NULL;

	if (!buf || !t || !slices || !task) {
		free(buf);
		free(t);
		return 0;
	}
	memset(buf, 1, bytes);
	for (size_t i = 0; i < n; i++) {
		double t0;

		j.buf = buf + (i % slices) * BW_SLICE;
		t0 = bench_now();
		bench_pool_for_each(pool, j.tasks, task, &j);
		t[i] = bench_now() - t0;
	}
	qsort(t, n, sizeof(t[0]), cmp_double);
	best = t[n / 4];
	free(buf);
	free(t);
	return (double)(BW_SLICE / j.tasks / 256 * 256 * j.tasks) / best;
}

#define PEAK_ITERS 2000000u

/*
 * Twelve independent chains of the path's int8 multiply per step, in assembly so no compiler can
 * merge them: vpdpbusd on zmm (64 multiply-adds), VEX vpdpbusd on ymm (32), or vpmaddubsw on
 * ymm (32 u8 x s8 products summed in pairs into int16; what AVX2 multiplies bytes with).
 */
__attribute__((target("avx512f,avx512vnni"))) static void peak_task_avx512(void *arg, unsigned t)
{
	long long *sink = arg;
	__m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2), s = _mm512_setzero_si512();

	for (unsigned it = 0; it < PEAK_ITERS; it++)
		__asm__ volatile("vpdpbusd %1, %0, %%zmm20\n\tvpdpbusd %1, %0, %%zmm21\n\t"
				 "vpdpbusd %1, %0, %%zmm22\n\tvpdpbusd %1, %0, %%zmm23\n\t"
				 "vpdpbusd %1, %0, %%zmm24\n\tvpdpbusd %1, %0, %%zmm25\n\t"
				 "vpdpbusd %1, %0, %%zmm26\n\tvpdpbusd %1, %0, %%zmm27\n\t"
				 "vpdpbusd %1, %0, %%zmm28\n\tvpdpbusd %1, %0, %%zmm29\n\t"
				 "vpdpbusd %1, %0, %%zmm30\n\tvpdpbusd %1, %0, %%zmm31\n\t"
				 :
				 : "v"(a), "v"(b)
				 : "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26",
				   "xmm27", "xmm28", "xmm29", "xmm30", "xmm31");
	sink[t] = _mm512_reduce_add_epi32(s);
}

__attribute__((target("avx2,avxvnni"))) static void peak_task_avxvnni(void *arg, unsigned t)
{
	long long *sink = arg;
	__m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-2);

	for (unsigned it = 0; it < PEAK_ITERS; it++)
		__asm__ volatile(
			"%{vex%} vpdpbusd %1, %0, %%ymm4\n\t%{vex%} vpdpbusd %1, %0, %%ymm5\n\t"
			"%{vex%} vpdpbusd %1, %0, %%ymm6\n\t%{vex%} vpdpbusd %1, %0, %%ymm7\n\t"
			"%{vex%} vpdpbusd %1, %0, %%ymm8\n\t%{vex%} vpdpbusd %1, %0, %%ymm9\n\t"
			"%{vex%} vpdpbusd %1, %0, %%ymm10\n\t%{vex%} vpdpbusd %1, %0, %%ymm11\n\t"
			"%{vex%} vpdpbusd %1, %0, %%ymm12\n\t%{vex%} vpdpbusd %1, %0, %%ymm13\n\t"
			"%{vex%} vpdpbusd %1, %0, %%ymm14\n\t%{vex%} vpdpbusd %1, %0, %%ymm15\n\t"
			:
			: "x"(a), "x"(b)
			: "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
			  "xmm13", "xmm14", "xmm15");
	sink[t] = 0;
}

__attribute__((target("avx2"))) static void peak_task_avx2(void *arg, unsigned t)
{
	long long *sink = arg;
	__m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-2);

	for (unsigned it = 0; it < PEAK_ITERS; it++)
		__asm__ volatile("vpmaddubsw %1, %0, %%ymm4\n\tvpmaddubsw %1, %0, %%ymm5\n\t"
				 "vpmaddubsw %1, %0, %%ymm6\n\tvpmaddubsw %1, %0, %%ymm7\n\t"
				 "vpmaddubsw %1, %0, %%ymm8\n\tvpmaddubsw %1, %0, %%ymm9\n\t"
				 "vpmaddubsw %1, %0, %%ymm10\n\tvpmaddubsw %1, %0, %%ymm11\n\t"
				 "vpmaddubsw %1, %0, %%ymm12\n\tvpmaddubsw %1, %0, %%ymm13\n\t"
				 "vpmaddubsw %1, %0, %%ymm14\n\tvpmaddubsw %1, %0, %%ymm15\n\t"
				 :
				 : "x"(a), "x"(b)
				 : "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
				   "xmm12", "xmm13", "xmm14", "xmm15");
	sink[t] = 0;
}

double bench_int8_peak(struct bench_pool *pool, enum bmx_kernels_path path, const char **how)
{
	long long sink[16];
	double t[5], macs;
	void (*task)(void *, unsigned);

	switch (path) {
	case BMX_KERNELS_AVX512:
		task = peak_task_avx512;
		macs = 64;
		*how = "vpdpbusd zmm";
		break;
	case BMX_KERNELS_AVXVNNI:
		task = peak_task_avxvnni;
		macs = 32;
		*how = "vpdpbusd ymm";
		break;
	case BMX_KERNELS_AVX2:
		task = peak_task_avx2;
		macs = 32;
		*how = "vpmaddubsw ymm";
		break;
	default:
		*how = "none";
		return 0;
	}
	if (!bmx_kernels_supported(path))
		return 0;
	for (int i = 0; i < 5; i++) {
		double t0 = bench_now();

		bench_pool_for_each(pool, pool->n + 1, task, sink);
		t[i] = bench_now() - t0;
	}
	qsort(t, 5, sizeof(t[0]), cmp_double); /* the best of 5, as for the bandwidth */
	return (double)PEAK_ITERS * 12 * macs * 2 * (pool->n + 1) / t[0];
}

void bench_cpu_model(char *buf, size_t size)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];

	snprintf(buf, size, "unknown CPU");
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "model name", 10) == 0) {
			const char *v = strchr(line, ':');

			if (v) {
				snprintf(buf, size, "%s", v + 1 + (v[1] == ' '));
				buf[strcspn(buf, "\n")] = 0;
			}
			break;
		}
	if (f)
		fclose(f);
}

const char *bench_ms_or_na(double seconds, char *buf, size_t size)
{
	if (seconds < 0)
		snprintf(buf, size, "n/a");
	else
		snprintf(buf, size, "%.3f", seconds * 1e3);
	return buf;
}
