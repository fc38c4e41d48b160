/* SPDX-License-Identifier: MIT */
/*
 * ipc.c — bench/ipc: how fast a request travels between a client and bitmixd, beside a plain
 * unix-socket and a pipe request/response measured in the same run.
 *
 * Latency: round trips of a NOP request (no tensor, and 1 KiB, 1 MiB, 4 MiB tensors named by
 * reference) with both sides spinning, and with both sides sleeping (futex and eventfd
 * doorbells); the peers carry the same tensor by copy. Throughput: 1, 2, 8 and 32 client threads
 * each submitting batches of NOPs. Each figure is the median of --repeat runs.
 * Usage: bench_ipc BITMIXD MODEL.bmx [--json] [--repeat N] [--scale F]
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bitmix.h"
#include "ipc_bench.h"

#define MAX_REPEAT 15
#define BATCH 64

static const size_t sizes[] = { 0, 1 << 10, 1 << 20, 4 << 20 };
static const unsigned client_counts[] = { 1, 2, 8, 32 };
#define N_SIZES (sizeof(sizes) / sizeof(sizes[0]))
#define N_COUNTS (sizeof(client_counts) / sizeof(client_counts[0]))

struct options {
	const char *bitmixd, *model;
	bool json;
	unsigned repeat;
	double scale;
};

struct lat_row {
	const char *name;
	double p[N_SIZES][3]; /* p50, p99, p99.9 in us */
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void percentiles(uint64_t *s, unsigned n, double out[3])
{
	qsort(s, n, sizeof(*s), cmp_u64);
	out[0] = (double)s[n / 2] / 1e3;
	out[1] = (double)s[(unsigned)((double)n * 0.99)] / 1e3;
	out[2] = (double)s[(unsigned)((double)n * 0.999)] / 1e3;
}

static unsigned iterations(const struct options *o, size_t bytes, bool spin)
{
	unsigned n = bytes >= (1 << 20) ? 2000 : spin ? 20000 : 5000;

	n = (unsigned)((double)n * o->scale);
	return n < 100 ? 100 : n;
}

/* Round trips of one NOP naming BYTES of the arena; samples in ns. */
static int bitmix_latency(const char *socket, bool spin, size_t bytes, unsigned n,
			  uint64_t *samples)
{
	struct bitmix_completion c;
	struct bitmix *bm;
	void *tensor = NULL;
	int r = bitmix_connect(socket, &bm);

	if (r < 0)
		return r;
	if (bytes && !(tensor = bitmix_tensor_alloc(bm, bytes))) {
		bitmix_close(bm);
		return -ENOMEM;
	}
	if (tensor)
		memset(tensor, 1, bytes);
	bitmix_set_spin(bm, spin ? 10000000000ull : 0);
	for (unsigned i = 0; i < n + n / 10 && r >= 0; i++) {
		uint64_t t0 = bench_now_ns();

		if ((r = bitmix_prep_nop(bm, tensor, bytes, i)) < 0 ||
		    (r = bitmix_submit(bm)) < 0 || (r = bitmix_reap(bm, &c, 1, -1)) < 0)
			break;
		if (c.status < 0)
			r = c.status;
		if (i >= n / 10) /* the first tenth warms up */
			samples[i - n / 10] = bench_now_ns() - t0;
	}
	bitmix_close(bm);
	return r < 0 ? r : 0;
}

static int peer_latency(enum peer_kind kind, size_t bytes, unsigned n, uint64_t *samples)
{
	struct peer p;
	int r = peer_start(&p, kind, bytes);

	if (r < 0)
		return r;
	memset(p.buf, 1, bytes);
	for (unsigned i = 0; i < n + n / 10 && r >= 0; i++) {
		uint64_t t0 = bench_now_ns();

		r = peer_round_trip(&p, bytes);
		if (i >= n / 10)
			samples[i - n / 10] = bench_now_ns() - t0;
	}
	peer_stop(&p);
	return r;
}

/* One latency row: transport KIND (0 bitmix, else a peer) at every size, medians of repeats. */
static int latency_row(const struct options *o, struct lat_row *row, int kind, const char *socket,
		       bool spin)
{
	static uint64_t samples[20000 * 4 + 100];
	double runs[3][MAX_REPEAT];

	for (size_t s = 0; s < N_SIZES; s++) {
		unsigned n = iterations(o, sizes[s], spin);

		if (n > sizeof(samples) / sizeof(samples[0]))
			n = sizeof(samples) / sizeof(samples[0]);
		for (unsigned k = 0; k < o->repeat; k++) {
			double p[3];
			int r = kind == 0 ? bitmix_latency(socket, spin, sizes[s], n, samples)
					  : peer_latency(kind == 1 ? PEER_UNIX : PEER_PIPE,
							 sizes[s], n, samples);

			if (r < 0)
				return r;
			percentiles(samples, n, p);
			for (int q = 0; q < 3; q++)
				runs[q][k] = p[q];
		}
		for (int q = 0; q < 3; q++)
			row->p[s][q] = median(runs[q], o->repeat);
	}
	return 0;
}

struct thr_client {
	const char *socket;
	pthread_barrier_t *start;
	const bool *stop;
	uint64_t done;
	int error;
};

static void *throughput_client(void *arg)
{
	struct thr_client *t = arg;
	struct bitmix_completion c[BATCH];
	struct bitmix *bm;

	t->error = bitmix_connect(t->socket, &bm);
	pthread_barrier_wait(t->start);
	if (t->error < 0)
		return NULL;
	while (!__atomic_load_n(t->stop, __ATOMIC_RELAXED)) {
		int got = 0;

		for (unsigned i = 0; i < BATCH; i++)
			bitmix_prep_nop(bm, NULL, 0, i);
		if ((t->error = bitmix_submit(bm)) < 0)
			break;
		while (got < BATCH) {
			int n = bitmix_reap(bm, c, BATCH, -1);

			if (n < 0) {
				t->error = n;
				goto out;
			}
			got += n;
		}
		t->done += BATCH;
	}
	t->error = 0;
out:
	bitmix_close(bm);
	return NULL;
}

/* Aggregate NOP requests per second (millions) of N clients for 0.5 s x scale. */
static int throughput(const struct options *o, const char *socket, unsigned n, double *mrps)
{
	struct thr_client clients[32];
	pthread_t threads[32];
	pthread_barrier_t start;
	bool stop = false;
	uint64_t t0, t1, total = 0;
	int r = 0;

	pthread_barrier_init(&start, NULL, n + 1);
	for (unsigned i = 0; i < n; i++) {
		clients[i] =
			(struct thr_client){ .socket = socket, .start = &start, .stop = &stop };
		pthread_create(&threads[i], NULL, throughput_client, &clients[i]);
	}
	pthread_barrier_wait(&start);
	t0 = bench_now_ns();
	usleep((useconds_t)(500000 * o->scale));
	__atomic_store_n(&stop, true, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < n; i++) {
		pthread_join(threads[i], NULL);
		total += clients[i].done;
		if (clients[i].error < 0)
			r = clients[i].error;
	}
	t1 = bench_now_ns();
	pthread_barrier_destroy(&start);
	*mrps = (double)total / ((double)(t1 - t0) / 1e9) / 1e6;
	return r;
}

static int throughput_row(const struct options *o, const char *socket, double out[N_COUNTS])
{
	double runs[MAX_REPEAT];

	for (size_t c = 0; c < N_COUNTS; c++) {
		for (unsigned k = 0; k < o->repeat; k++) {
			int r = throughput(o, socket, client_counts[c], &runs[k]);

			if (r < 0)
				return r;
		}
		out[c] = median(runs, o->repeat);
	}
	return 0;
}

static const char *size_name(size_t b)
{
	return b == 0 ? "empty" : b < (1 << 20) ? "1 KiB" : b < (4 << 20) ? "1 MiB" : "4 MiB";
}

static void print_table(const struct options *o, const struct lat_row *rows, size_t n_rows,
			const double thr[2][N_COUNTS])
{
	struct utsname u;

	uname(&u);
	printf("bench/ipc: bitmix IPC round trips and throughput, %ld CPUs, Linux %s; medians of %u runs.\n"
	       "bitmix names tensors in shared memory (zero-copy); the unix socket and the pipe copy\n"
	       "them through the kernel and block in read(). On a shared machine expect noise.\n\n",
	       sysconf(_SC_NPROCESSORS_ONLN), u.release, o->repeat);
	printf("round trip, us                 ");
	for (size_t s = 0; s < N_SIZES; s++)
		printf("| %-24s", size_name(sizes[s]));
	printf("\n%-31s", "");
	for (size_t s = 0; s < N_SIZES; s++)
		printf("| %7s %7s %8s", "p50", "p99", "p99.9");
	printf("\n");
	for (size_t r = 0; r < n_rows; r++) {
		printf("%-31s", rows[r].name);
		for (size_t s = 0; s < N_SIZES; s++)
			printf("| %7.2f %7.2f %8.2f", rows[r].p[s][0], rows[r].p[s][1],
			       rows[r].p[s][2]);
		printf("\n");
	}
	printf("\ngoals: spin empty p50 %.2f us (<= 1); sleep empty p50 / unix socket %.2fx (<= 1.0);\n"
	       "       4 MiB / empty p50: spin %.2fx, sleep %.2fx (<= 1.2)\n",
	       rows[0].p[0][0], rows[1].p[0][0] / rows[3].p[0][0],
	       rows[0].p[3][0] / rows[0].p[0][0], rows[1].p[3][0] / rows[1].p[0][0]);
	printf("\nthroughput, M empty requests/s (batches of %d) ", BATCH);
	for (size_t c = 0; c < N_COUNTS; c++)
		printf("| %3u clients ", client_counts[c]);
	printf("\n");
	for (int m = 0; m < 2; m++) {
		printf("%-46s",
		       m == 0 ? "bitmix futex, daemon spins" : "bitmix futex, daemon sleeps");
		for (size_t c = 0; c < N_COUNTS; c++)
			printf("| %11.2f ", thr[m][c]);
		printf("\n");
	}
	printf("goal: >= 2 M/s aggregate\n");
}

static void print_json(const struct options *o, const struct lat_row *rows, size_t n_rows,
		       const double thr[2][N_COUNTS])
{
	printf("{\n  \"cpus\": %ld,\n  \"repeat\": %u,\n  \"latency_us\": [\n",
	       sysconf(_SC_NPROCESSORS_ONLN), o->repeat);
	for (size_t r = 0; r < n_rows; r++)
		for (size_t s = 0; s < N_SIZES; s++)
			printf("    {\"transport\": \"%s\", \"bytes\": %zu, \"p50\": %.3f, \"p99\": %.3f, "
			       "\"p99_9\": %.3f}%s\n",
			       rows[r].name, sizes[s], rows[r].p[s][0], rows[r].p[s][1],
			       rows[r].p[s][2], r + 1 == n_rows && s + 1 == N_SIZES ? "" : ",");
	printf("  ],\n  \"throughput_mrps\": [\n");
	for (int m = 0; m < 2; m++)
		for (size_t c = 0; c < N_COUNTS; c++)
			printf("    {\"daemon\": \"%s\", \"clients\": %u, \"batch\": %d, \"mrps\": %.3f}%s\n",
			       m == 0 ? "spin" : "sleep", client_counts[c], BATCH, thr[m][c],
			       m == 1 && c + 1 == N_COUNTS ? "" : ",");
	printf("  ]\n}\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
	*o = (struct options){ .repeat = 3, .scale = 1.0 };
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			o->json = true;
		else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
			o->repeat = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc)
			o->scale = atof(argv[++i]);
		else if (!o->bitmixd)
			o->bitmixd = argv[i];
		else if (!o->model)
			o->model = argv[i];
		else
			return -EINVAL;
	}
	if (!o->model || o->repeat < 1 || o->repeat > MAX_REPEAT || o->scale <= 0 || o->scale > 10)
		return -EINVAL;
	return 0;
}

/* One daemon per setting: its latency row, and its throughput row if THR is not NULL. */
static int run_daemon(const struct options *o, const char *doorbell, unsigned spin_us,
		      struct lat_row *row, double *thr)
{
	struct bench_daemon d;
	int r = bench_daemon_start(&d, o->bitmixd, o->model, doorbell, spin_us);

	if (r == 0)
		r = latency_row(o, row, 0, d.socket, spin_us > 0);
	if (r == 0 && thr)
		r = throughput_row(o, d.socket, thr);
	bench_daemon_stop(&d);
	if (r < 0)
		fprintf(stderr, "bench_ipc: %s (doorbell %s, spin %u us): %s\n", row->name,
			doorbell, spin_us, strerror(-r));
	return r;
}

int main(int argc, char **argv)
{
	struct lat_row rows[5] = {
		{ .name = "bitmix futex, both spin" },
		{ .name = "bitmix futex, both sleep" },
		{ .name = "bitmix eventfd, both sleep" },
		{ .name = "unix socket (blocking)" },
		{ .name = "pipe (blocking)" },
	};
	double thr[2][N_COUNTS];
	struct options o;

	if (parse_options(argc, argv, &o) < 0) {
		fprintf(stderr,
			"usage: %s BITMIXD MODEL.bmx [--json] [--repeat 1..%d] [--scale F]\n",
			argv[0], MAX_REPEAT);
		return 2;
	}
	if (run_daemon(&o, "futex", 100000, &rows[0], thr[0]) < 0 ||
	    run_daemon(&o, "futex", 0, &rows[1], thr[1]) < 0 ||
	    run_daemon(&o, "eventfd", 0, &rows[2], NULL) < 0 ||
	    latency_row(&o, &rows[3], 1, NULL, false) < 0 ||
	    latency_row(&o, &rows[4], 2, NULL, false) < 0)
		return 1;
	if (o.json)
		print_json(&o, rows, 5, (const double(*)[N_COUNTS])thr);
	else
		print_table(&o, rows, 5, (const double(*)[N_COUNTS])thr);
	return 0;
}
