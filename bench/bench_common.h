/* SPDX-License-Identifier: MIT */
/*
 * bench_common.h — what the benchmarks share: a monotonic clock, medians, a small thread pool
 * that offers the engine its parallel-for (struct bmx_parallel), and the two roofline
 * measurements (DRAM read bandwidth, the kernel path's int8 multiply peak), both taken in the
 * run that uses them.
 */
#ifndef BITMIX_BENCH_COMMON_H
#define BITMIX_BENCH_COMMON_H

#include <stddef.h>

#include "bmx_engine.h"

double bench_now(void);

/* The median of N values (sorts V). */
double bench_median(double *v, size_t n);

/*
 * A pool of THREADS (1..16) threads, the caller counted as one: helpers spin for work about a
 * millisecond after each parallel-for, then sleep, so they do not steal the cores from a peer
 * measured next.
 */
struct bench_pool;
struct bench_pool *bench_pool_new(unsigned threads);
void bench_pool_free(struct bench_pool *pool);
void bench_pool_for_each(void *pool, unsigned n_tasks, void (*fn)(void *arg, unsigned task),
			 void *arg);
struct bmx_parallel bench_pool_parallel(struct bench_pool *pool);

/* Read bandwidth in bytes/s over BYTES of memory, all pool threads reading (16 MiB slices,
 * the fastest quarter). */
double bench_read_bandwidth(struct bench_pool *pool, size_t bytes);

/*
 * The int8 multiply throughput of kernel PATH over all pool threads, in ops/s (2 per
 * multiply-add), best of 5: vpdpbusd on zmm (avx512) or ymm (avxvnni), vpmaddubsw on ymm (avx2);
 * 0 for ref or a path this CPU lacks. *HOW names the instruction.
 */
double bench_int8_peak(struct bench_pool *pool, enum bmx_kernels_path path, const char **how);

/* The CPU's model name from /proc/cpuinfo into BUF. */
void bench_cpu_model(char *buf, size_t size);

/* SECONDS as milliseconds ("%.3f") into BUF, or "n/a" when negative (not measured); BUF. */
const char *bench_ms_or_na(double seconds, char *buf, size_t size);

#endif
