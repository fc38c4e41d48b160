/* SPDX-License-Identifier: MIT */
/*
 * fairness.c — the p99 latency of one client's 1-sample request, idle and while another client
 * floods bitmixd with 64 outstanding requests of batch 256 (issue 21's goal: within 3x).
 * Usage: bench/fairness BITMIXD MODEL.bmx [--requests N]
 *
 * The flooding client is a thread with its own connection; it keeps 64 requests in flight for
 * the whole measurement. Latency is the wall time of bitmix_infer() (submit, serve, reap).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_daemon.h"
#include "bitmix.h"

#define FLOOD_REQUESTS 64
#define FLOOD_BATCH 256
#define IN_FLOATS (28 * 28)
#define OUT_FLOATS 10

struct flood {
	const char *socket;
	volatile int stop;
	volatile int ready;
	unsigned long batches;
};

static void *flood_main(void *arg)
{
	struct flood *f = arg;
	struct bitmix_completion done[FLOOD_REQUESTS];
	struct bitmix_model *m;
	struct bitmix *bm;
	float *in, *out;

	if (bitmix_connect(f->socket, &bm) < 0 || bitmix_open_model(bm, "fmnist", &m) < 0) {
		f->ready = -1;
		return NULL;
	}
	in = bitmix_tensor_alloc(bm, FLOOD_BATCH * IN_FLOATS * sizeof(float));
	out = bitmix_tensor_alloc(bm, FLOOD_BATCH * OUT_FLOATS * sizeof(float));
	memset(in, 0, FLOOD_BATCH * IN_FLOATS * sizeof(float));
	for (int i = 0; i < FLOOD_REQUESTS; i++)
		bitmix_prep_infer(m, in, out, FLOOD_BATCH, (uint64_t)i);
	bitmix_submit(bm);
	f->ready = 1;
	while (!f->stop) {
		int n = bitmix_reap(bm, done, FLOOD_REQUESTS, 50000000);

		for (int i = 0; i < n; i++)
			bitmix_prep_infer(m, in, out, FLOOD_BATCH, done[i].user_data);
		if (n > 0) {
			f->batches += (unsigned long)n;
			bitmix_submit(bm);
		}
	}
	bitmix_close(bm); /* what is still queued is dropped with the connection */
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* N 1-sample requests; their p50 and p99 in microseconds. */
static int measure(struct bitmix_model *m, float *in, float *out, unsigned n, double *p50,
		   double *p99)
{
	uint64_t *s = calloc(n, sizeof(*s));

	if (!s)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		uint64_t t0 = bench_now_ns();

		if (bitmix_infer(m, in, out, 1, NULL) < 0) {
			free(s);
			return -1;
		}
		s[i] = bench_now_ns() - t0;
	}
	qsort(s, n, sizeof(*s), cmp_u64);
	*p50 = (double)s[n / 2] / 1e3;
	*p99 = (double)s[(size_t)(n * 0.99)] / 1e3;
	free(s);
	return 0;
}

int main(int argc, char **argv)
{
	struct flood f = { 0 };
	struct bench_daemon d;
	struct bitmix_model *m;
	struct bitmix *bm;
	double idle50, idle99, busy50, busy99;
	unsigned n = 500;
	pthread_t flood;
	float *in, *out;
	int r = 1;

	if (argc < 3) {
		fprintf(stderr, "usage: %s BITMIXD MODEL.bmx [--requests N]\n", argv[0]);
		return 2;
	}
	if (argc == 5 && strcmp(argv[3], "--requests") == 0)
		n = (unsigned)atoi(argv[4]);
	if (n < 100)
		n = 100;
	if (bench_daemon_start(&d, argv[1], argv[2], "auto", 20) < 0)
		return 1;
	if (bitmix_connect(d.socket, &bm) < 0 || bitmix_open_model(bm, "fmnist", &m) < 0) {
		fprintf(stderr, "fairness: %s\n", bitmix_strerror(NULL));
		goto out;
	}
	in = bitmix_tensor_alloc(bm, IN_FLOATS * sizeof(float));
	out = bitmix_tensor_alloc(bm, OUT_FLOATS * sizeof(float));
	memset(in, 0, IN_FLOATS * sizeof(float));
	if (measure(m, in, out, n, &idle50, &idle99) < 0)
		goto out_close;
	f.socket = d.socket;
	pthread_create(&flood, NULL, flood_main, &f);
	while (!f.ready)
		;
	if (f.ready > 0 && measure(m, in, out, n, &busy50, &busy99) == 0)
		r = 0;
	f.stop = 1;
	pthread_join(flood, NULL);
	if (r == 0) {
		printf("1-sample request latency, %u requests each (us):\n", n);
		printf("  %-34s p50 %8.1f  p99 %8.1f\n", "idle", idle50, idle99);
		printf("  %-34s p50 %8.1f  p99 %8.1f\n", "another client floods (64 x 256)", busy50,
		       busy99);
		printf("  p99 flooded / idle: %.1fx (goal: within 3x); %lu flood batches meanwhile\n",
		       busy99 / idle99, f.batches);
	}
out_close:
	bitmix_close(bm);
out:
	bench_daemon_stop(&d);
	return r;
}
