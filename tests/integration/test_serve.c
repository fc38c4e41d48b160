/* SPDX-License-Identifier: MIT */
/*
 * test_serve.c — bitmixd end to end: many concurrent clients, bits changing under them, a
 * client killed mid-request, permissions, reload and shutdown.
 *
 * Every output the daemon returns is checked bit for bit against the reference engine run in
 * this process on the same input at the bits of the generation the daemon reported. The
 * workload's throughput and latency are printed (not asserted: speed lives in bench/).
 * Usage: test_serve BITMIXD MODEL.bmx
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bitmix.h"
#include "bmx_engine.h"
#include "daemon_harness.h"

#define N_CLIENTS 8
#define N_REQUESTS 1000
#define MAX_GENERATIONS 100000

/* What one request sent and got back, kept for checking after the run. */
struct record {
	uint64_t seed;
	uint64_t generation;
	float *output;
};

/* generation -> the bits the bits-changer set (entry 0: the bits at start). Written by the
 * changer thread only, read after it was joined. */
struct bits_log {
	uint64_t generation[MAX_GENERATIONS];
	struct bitmix_layer_bits *bits[MAX_GENERATIONS];
	size_t n;
};

struct run {
	struct daemon_harness h;
	struct bmx_model *model;
	struct bmx_engine *engine;
	uint32_t layers, in_size, out_size;
	struct bits_log log;
	int stop_changer;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* An image-like input in [0, 1], reproducible from SEED. */
static void make_input(uint64_t seed, float *x, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		x[i] = (float)(splitmix(&seed) >> 40) / (float)(1 << 24);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int run_setup(void **state)
{
	struct run *r = calloc(1, sizeof(*r));
	struct bmx_error err;

	assert_non_null(r);
	assert_int_equal(bmx_model_load_file(harness_model, &r->model, &err), 0);
	assert_int_equal(bmx_engine_new(r->model, &r->engine), 0);
	r->layers = r->model->layer_count;
	r->in_size = (uint32_t)bmx_model_input_size(r->model);
	r->out_size = (uint32_t)bmx_model_output_size(r->model);
	assert_int_equal(harness_start(&r->h, harness_bitmixd, harness_model, NULL), 0);
	*state = r;
	return 0;
}

static int run_teardown(void **state)
{
	struct run *r = *state;

	if (!r)
		return 0;
	harness_cleanup(&r->h);
	for (size_t i = 0; i < r->log.n; i++)
		free(r->log.bits[i]);
	bmx_engine_free(r->engine);
	bmx_model_free(r->model);
	free(r);
	return 0;
}

/* Connect and open the model, asserting success. */
static struct bitmix_model *open_fmnist(struct run *r, struct bitmix **bm)
{
	struct bitmix_model *m;

	assert_int_equal(bitmix_connect(r->h.socket, bm), 0);
	if (bitmix_open_model(*bm, "fmnist", &m) < 0)
		fail_msg("open_model: %s", bitmix_strerror(*bm));
	return m;
}

/* The log is in publication order, so generations ascend: binary search. */
static const struct bitmix_layer_bits *bits_of_generation(struct run *r, uint64_t generation)
{
	size_t lo = 0, hi = r->log.n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->log.generation[mid] == generation)
			return r->log.bits[mid];
		if (r->log.generation[mid] < generation)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Check a request against the reference engine at its generation's bits. */
static void check_record(struct run *r, const struct record *rec, float *in, float *out,
			 void *scratch)
{
	const struct bitmix_layer_bits *b = bits_of_generation(r, rec->generation);
	struct bmx_layer_bits bits[BMX_MAX_LAYERS];

	if (!b)
		fail_msg("request reports generation %llu, which no one published",
			 (unsigned long long)rec->generation);
	for (uint32_t i = 0; i < r->layers; i++)
		bits[i] = (struct bmx_layer_bits){ b[i].w_bits, b[i].a_bits };
	make_input(rec->seed, in, r->in_size);
	assert_int_equal(bmx_engine_run(r->engine, bits, 1, in, out, scratch), 0);
	assert_memory_equal(out, rec->output, r->out_size * sizeof(float));
}

struct client_arg {
	struct run *run;
	int index;
	struct record records[N_REQUESTS];
	uint64_t latency_ns[N_REQUESTS];
	int failures;
};

static void *client_main(void *p)
{
	struct client_arg *a = p;
	struct run *r = a->run;
	struct bitmix *bm;
	struct bitmix_model *m = open_fmnist(r, &bm);
	float *in = bitmix_tensor_alloc(bm, r->in_size * sizeof(float));
	float *out = bitmix_tensor_alloc(bm, r->out_size * sizeof(float));

	assert_non_null(in);
	assert_non_null(out);
	for (int i = 0; i < N_REQUESTS; i++) {
		struct record *rec = &a->records[i];
		uint64_t t0;

		rec->seed = ((uint64_t)a->index << 32) | (uint64_t)i;
		make_input(rec->seed, in, r->in_size);
		t0 = now_ns();
		if (bitmix_infer(m, in, out, 1, &rec->generation) < 0) {
			a->failures++;
			continue;
		}
		a->latency_ns[i] = now_ns() - t0;
		rec->output = malloc(r->out_size * sizeof(float));
		memcpy(rec->output, out, r->out_size * sizeof(float));
	}
	bitmix_close(bm);
	return NULL;
}

/* Log the bits in force now (after a governor switch published its own). */
static void log_current_bits(struct run *r, struct bitmix_model *m)
{
	struct bitmix_layer_bits *b = calloc(r->layers, sizeof(*b));

	assert_int_equal(bitmix_get_bits(m, b, &r->log.generation[r->log.n]), 0);
	r->log.bits[r->log.n++] = b;
}

/*
 * Switch to performance or powersave and back to userspace, logging what each published: the
 * governor switches at run time while requests are in flight, and none may see torn bits.
 */
static void switch_governors(struct run *r, struct bitmix *bm, struct bitmix_model *m)
{
	struct bitmix_governor_info g;

	assert_int_equal(bitmix_governor(bm, (r->log.n / 16) % 2 ? "powersave" : "performance", &g),
			 0);
	log_current_bits(r, m);
	assert_int_equal(bitmix_governor(bm, "userspace", &g), 0);
	log_current_bits(r, m);
}

/* Publish random allowed bits as fast as the daemon takes them, logging each generation. */
static void *changer_main(void *p)
{
	struct run *r = p;
	struct bitmix *bm;
	struct bitmix_model *m = open_fmnist(r, &bm);
	uint64_t seed = 42;

	while (!__atomic_load_n(&r->stop_changer, __ATOMIC_ACQUIRE) &&
	       r->log.n < MAX_GENERATIONS - 2) {
		if (r->log.n % 16 == 15) {
			switch_governors(r, bm, m);
			continue;
		}
		struct bitmix_layer_bits *b = calloc(r->layers, sizeof(*b));
		uint64_t generation;

		for (uint32_t i = 0; i < r->layers; i++) {
			uint16_t mask = bitmix_model_layer_bits_mask(m, i);
			uint8_t w, a;

			do
				w = (uint8_t)(2 + splitmix(&seed) % 7);
			while (!(mask & (1u << w)));
			do
				a = (uint8_t)(2 + splitmix(&seed) % 7);
			while (!(mask & (1u << a)));
			b[i] = (struct bitmix_layer_bits){ w, a };
		}
		assert_int_equal(bitmix_set_bits(m, b, &generation), 0);
		r->log.generation[r->log.n] = generation;
		r->log.bits[r->log.n++] = b;
		usleep(1000); /* about one change per millisecond, several per request in flight */
	}
	bitmix_close(bm);
	return NULL;
}

static void log_initial_bits(struct run *r)
{
	struct bitmix *bm;
	struct bitmix_model *m = open_fmnist(r, &bm);
	struct bitmix_layer_bits *b = calloc(r->layers, sizeof(*b));
	uint64_t generation;

	assert_int_equal(bitmix_get_bits(m, b, &generation), 0);
	r->log.generation[0] = generation;
	r->log.bits[0] = b;
	r->log.n = 1;
	bitmix_close(bm);
}

static void test_concurrent_clients_with_changing_bits(void **state)
{
	struct run *r = *state;
	struct client_arg *args = calloc(N_CLIENTS, sizeof(*args));
	pthread_t clients[N_CLIENTS], changer;
	uint64_t *lat = malloc(N_CLIENTS * N_REQUESTS * sizeof(*lat));
	size_t n_lat = 0, generations_seen = 0;
	uint64_t t0, elapsed, last_gen = UINT64_MAX;
	void *scratch = aligned_alloc(64, (bmx_engine_scratch_size(r->engine, 1) + 63) / 64 * 64);
	float *in = malloc(r->in_size * sizeof(float)), *out = malloc(r->out_size * sizeof(float));

	log_initial_bits(r);
	assert_int_equal(pthread_create(&changer, NULL, changer_main, r), 0);
	t0 = now_ns();
	for (int i = 0; i < N_CLIENTS; i++) {
		args[i] = (struct client_arg){ .run = r, .index = i };
		assert_int_equal(pthread_create(&clients[i], NULL, client_main, &args[i]), 0);
	}
	for (int i = 0; i < N_CLIENTS; i++)
		pthread_join(clients[i], NULL);
	elapsed = now_ns() - t0;
	__atomic_store_n(&r->stop_changer, 1, __ATOMIC_RELEASE);
	pthread_join(changer, NULL);

	for (int c = 0; c < N_CLIENTS; c++) {
		assert_int_equal(args[c].failures, 0);
		for (int i = 0; i < N_REQUESTS; i++) {
			check_record(r, &args[c].records[i], in, out, scratch);
			if (args[c].records[i].generation != last_gen)
				generations_seen++;
			last_gen = args[c].records[i].generation;
			lat[n_lat++] = args[c].latency_ns[i];
			free(args[c].records[i].output);
		}
	}
	/* The bits really changed under the clients, many times. */
	assert_true(r->log.n > 10);
	assert_true(generations_seen > 10);
	qsort(lat, n_lat, sizeof(*lat), cmp_u64);
	printf("# serve: %d clients x %d requests in %.3f s: %.0f requests/s, latency p50 %.1f us, "
	       "p99 %.1f us; %zu bit changes\n",
	       N_CLIENTS, N_REQUESTS, (double)elapsed / 1e9,
	       (double)n_lat / ((double)elapsed / 1e9), (double)lat[n_lat / 2] / 1e3,
	       (double)lat[n_lat * 99 / 100] / 1e3, r->log.n - 1);
	free(lat);
	free(args);
	free(scratch);
	free(in);
	free(out);
}

/* A client SIGKILLed mid-stream costs the others nothing; the daemon notices it left. */
static void test_killed_client(void **state)
{
	struct run *r = *state;
	struct client_arg *a = calloc(1, sizeof(*a));
	struct bitmix_status st;
	struct bitmix *bm;
	pthread_t survivor;
	pid_t child;

	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct bitmix *cbm;
		struct bitmix_model *m;
		float *in, *out;

		if (bitmix_connect(r->h.socket, &cbm) < 0 ||
		    bitmix_open_model(cbm, "fmnist", &m) < 0)
			_exit(1);
		in = bitmix_tensor_alloc(cbm, r->in_size * sizeof(float) * 64);
		out = bitmix_tensor_alloc(cbm, r->out_size * sizeof(float) * 64);
		for (;;)
			bitmix_infer(m, in, out, 64, NULL);
	}
	*a = (struct client_arg){ .run = r, .index = 100 };
	assert_int_equal(pthread_create(&survivor, NULL, client_main, a), 0);
	usleep(100 * 1000);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	pthread_join(survivor, NULL);
	assert_int_equal(a->failures, 0);
	{
		void *scratch =
			aligned_alloc(64, (bmx_engine_scratch_size(r->engine, 1) + 63) / 64 * 64);
		float *in = malloc(r->in_size * 4), *out = malloc(r->out_size * 4);

		for (int i = 0; i < N_REQUESTS; i++) {
			check_record(r, &a->records[i], in, out, scratch);
			free(a->records[i].output);
		}
		free(scratch);
		free(in);
		free(out);
	}
	/* The daemon dropped the dead client: only our status connection remains. */
	assert_int_equal(bitmix_connect(r->h.socket, &bm), 0);
	for (int i = 0; i < 200; i++) {
		assert_int_equal(bitmix_get_status(bm, &st), 0);
		if (st.clients == 1)
			break;
		usleep(10 * 1000);
	}
	assert_int_equal(st.clients, 1);
	assert_true(st.requests_completed >= N_CLIENTS * N_REQUESTS);
	/* The daemon reports the kernel path its engines run on (the config says auto). */
	assert_string_equal(st.kernels, bmx_kernels_name(bmx_kernels_resolve(BMX_KERNELS_AUTO)));
	bitmix_close(bm);
	assert_true(harness_log_contains(&r->h, "disconnected", 1000));
	free(a);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_clients_with_changing_bits),
		cmocka_unit_test(test_killed_client),
	};

	if (harness_args(argc, argv, false) < 0)
		return 2;
	return cmocka_run_group_tests_name("serve", tests, run_setup, run_teardown);
}
