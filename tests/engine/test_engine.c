/* SPDX-License-Identifier: MIT */
/*
 * test_engine.c — whole graphs: models from bmx_build_arch() ("tiny", "fmnist") run by the
 * engine at random per-layer bits and compared with the double interpreter (graph_double.h);
 * determinism across runs, batches and threads; rejection of bits outside a layer's mask; and
 * evidence that the bits are really used (changing them changes the output, 8 bits is closer
 * to full precision than 2).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bmx_engine.h"
#include "bmx_writer.h"
#include "bmx_arch.h"
#include "graph_double.h"
#include "ref_double.h"

/*
 * Engine (float) against interpreter (double): float rounding is ~1e-7 relative per op, so
 * outputs agree to GRAPH_TOL of the output's magnitude, unless an activation fell on a rounding
 * boundary (graph_double.h: "ambiguous"), where one code may differ by a whole step. Such
 * samples (about half of fmnist's at 8-bit activations) are only checked loosely; at least a
 * quarter of the samples must be checked strictly.
 */
#define GRAPH_TOL 1e-5
#define AMBIGUOUS_TOL 0.1
#define MAX_BATCH 3

struct fixture {
	void *file;
	size_t size;
	struct bmx_model *model;
	struct bmx_engine *engine;
	uint32_t in_size, out_size, layers;
	void *scratch; /* for MAX_BATCH */
	float *input;  /* MAX_BATCH samples */
	float *output; /* MAX_BATCH samples */
	double *want;  /* one sample */
};

static void *scratch_new(const struct bmx_engine *e, uint32_t batch)
{
	size_t size = (bmx_engine_scratch_size(e, batch) + 63) / 64 * 64;
	void *p = aligned_alloc(64, size ? size : 64);

	assert_non_null(p);
	return p;
}

static int fixture_setup(void **state, const char *arch)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct bmx_error err = { { 0 } };

	assert_non_null(f);
	assert_int_equal(bmx_build_arch(arch, 42, arch, &f->file, &f->size), 0);
	if (bmx_model_load_memory(f->file, f->size, &f->model, &err) < 0)
		fail_msg("%s: %s", arch, err.msg);
	assert_int_equal(bmx_engine_new(f->model, &f->engine), 0);
	assert_ptr_equal(bmx_engine_model(f->engine), f->model);
	f->in_size = (uint32_t)bmx_model_input_size(f->model);
	f->out_size = (uint32_t)bmx_model_output_size(f->model);
	f->layers = f->model->layer_count;
	f->scratch = scratch_new(f->engine, MAX_BATCH);
	f->input = calloc((size_t)MAX_BATCH * f->in_size, sizeof(float));
	f->output = calloc((size_t)MAX_BATCH * f->out_size, sizeof(float));
	f->want = calloc(f->out_size, sizeof(double));
	assert_true(f->input && f->output && f->want);
	*state = f;
	return 0;
}

static int setup_tiny(void **state)
{
	return fixture_setup(state, "tiny");
}

static int setup_fmnist(void **state)
{
	return fixture_setup(state, "fmnist");
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;

	bmx_engine_free(f->engine);
	bmx_model_free(f->model);
	free(f->file);
	free(f->scratch);
	free(f->input);
	free(f->output);
	free(f->want);
	free(f);
	return 0;
}

static void random_input(struct fixture *f, uint32_t batch, struct rng *r)
{
	for (size_t i = 0; i < (size_t)batch * f->in_size; i++)
		f->input[i] =
			(float)(rng_unit(r) * 1.75 - 0.25); /* beyond [0, 1]: clamping matters */
}

static unsigned random_bit(uint16_t mask, struct rng *r)
{
	unsigned b;

	do
		b = (unsigned)rng_int(r, BMX_MIN_BITS, BMX_MAX_BITS);
	while (!(mask & (1u << b)));
	return b;
}

static void random_bits(const struct fixture *f, struct bmx_layer_bits *bits, struct rng *r)
{
	for (uint32_t l = 0; l < f->layers; l++) {
		bits[l].w_bits = (uint8_t)random_bit(f->model->layers[l].bits_mask, r);
		bits[l].a_bits = (uint8_t)random_bit(f->model->layers[l].bits_mask, r);
	}
}

static void uniform_bits(const struct fixture *f, struct bmx_layer_bits *bits, unsigned want)
{
	for (uint32_t l = 0; l < f->layers; l++) {
		uint16_t mask = f->model->layers[l].bits_mask;
		unsigned b = want;

		while (!(mask & (1u << b))) /* nearest supported, searching downwards then up */
			b = b > BMX_MIN_BITS ? b - 1 : BMX_MAX_BITS;
		bits[l].w_bits = bits[l].a_bits = (uint8_t)b;
	}
}

static uint32_t argmax_d(const double *x, uint32_t n, double *gap)
{
	uint32_t best = 0;
	double second = -INFINITY;

	for (uint32_t i = 1; i < n; i++)
		if (x[i] > x[best])
			best = i;
	for (uint32_t i = 0; i < n; i++)
		if (i != best && x[i] > second)
			second = x[i];
	*gap = x[best] - second;
	return best;
}

static uint32_t argmax_f(const float *x, uint32_t n)
{
	uint32_t best = 0;

	for (uint32_t i = 1; i < n; i++)
		if (x[i] > x[best])
			best = i;
	return best;
}

/* The largest |got - want| of sample S relative to the largest |want|. */
static double sample_error(const struct fixture *f, uint32_t s)
{
	const float *got = f->output + (size_t)s * f->out_size;
	double scale = 1e-30, err = 0;

	for (uint32_t i = 0; i < f->out_size; i++)
		scale = fmax(scale, fabs(f->want[i]));
	for (uint32_t i = 0; i < f->out_size; i++)
		err = fmax(err, fabs(got[i] - f->want[i]) / scale);
	return err;
}

/* The argmax agrees unless the interpreter's top-2 gap is within the tolerance. */
static void check_argmax(const struct fixture *f, uint32_t s, double tol)
{
	double scale = 1e-30, gap;
	uint32_t best = argmax_d(f->want, f->out_size, &gap);

	for (uint32_t i = 0; i < f->out_size; i++)
		scale = fmax(scale, fabs(f->want[i]));
	if (gap > 2 * tol * scale)
		assert_int_equal(argmax_f(f->output + (size_t)s * f->out_size, f->out_size), best);
}

static void test_vs_double(void **state)
{
	struct fixture *f = *state;
	struct bmx_layer_bits bits[BMX_MAX_LAYERS];
	struct rng r = { 11 };
	double worst = 0, worst_ambiguous = 0;
	unsigned samples = 0, ambiguous_samples = 0, ambiguous;

	for (int iter = 0; iter < 40; iter++) {
		uint32_t batch = iter % 2 ? MAX_BATCH : 1;

		random_bits(f, bits, &r);
		if (iter < 2)
			uniform_bits(f, bits, iter ? 8 : 2);
		random_input(f, batch, &r);
		assert_int_equal(
			bmx_engine_run(f->engine, bits, batch, f->input, f->output, f->scratch), 0);
		for (uint32_t s = 0; s < batch; s++, samples++) {
			const float *x = f->input + (size_t)s * f->in_size;
			double err;

			assert_int_equal(
				graph_double_run(f->model, bits, 0, x, f->want, &ambiguous), 0);
			err = sample_error(f, s);
			if (ambiguous) {
				ambiguous_samples++;
				worst_ambiguous = fmax(worst_ambiguous, err);
				if (err > AMBIGUOUS_TOL)
					fail_msg("sample %u (%u ambiguous codes): error %.3g",
						 samples, ambiguous, err);
				continue;
			}
			if (err > GRAPH_TOL)
				fail_msg("sample %u: relative error %.3g > %.3g", samples, err,
					 GRAPH_TOL);
			check_argmax(f, s, GRAPH_TOL);
			worst = fmax(worst, err);
		}
	}
	print_message(
		"%u samples: worst relative error %.3g; %u with rounding-boundary codes, worst %.3g\n",
		samples, worst, ambiguous_samples, worst_ambiguous);
	assert_true((samples - ambiguous_samples) * 4 >= samples);
}

static void test_default_bits(void **state)
{
	struct fixture *f = *state;
	struct bmx_layer_bits bits[BMX_MAX_LAYERS];
	uint32_t bad = UINT32_MAX;

	bmx_engine_default_bits(f->engine, bits);
	for (uint32_t l = 0; l < f->layers; l++) {
		assert_int_equal(bits[l].w_bits, f->model->layers[l].default_w_bits);
		assert_int_equal(bits[l].a_bits, f->model->layers[l].default_a_bits);
	}
	assert_int_equal(bmx_engine_check_bits(f->engine, bits, &bad), 0);
	assert_int_equal(bad, UINT32_MAX);
	random_input(f, 1, &(struct rng){ 12 });
	assert_int_equal(bmx_engine_run(f->engine, bits, 1, f->input, f->output, f->scratch), 0);
}

/* Run BITS and expect -EINVAL naming LAYER, with the output untouched. */
static void expect_refused(struct fixture *f, const struct bmx_layer_bits *bits, uint32_t layer)
{
	size_t n = (size_t)f->out_size * sizeof(float);
	uint32_t bad = UINT32_MAX;
	uint8_t *before = malloc(n);

	assert_non_null(before);
	memset(f->output, 0xa5, n);
	memcpy(before, f->output, n);
	assert_int_equal(bmx_engine_check_bits(f->engine, bits, &bad), -EINVAL);
	assert_int_equal(bad, layer);
	assert_int_equal(bmx_engine_run(f->engine, bits, 1, f->input, f->output, f->scratch),
			 -EINVAL);
	assert_memory_equal(f->output, before, n);
	free(before);
}

static void test_bad_bits(void **state)
{
	struct fixture *f = *state;
	struct bmx_layer_bits bits[BMX_MAX_LAYERS];
	const uint8_t outside[] = { 0, 1, 9, 255 };
	int tested_mask_hole = 0;

	random_input(f, 1, &(struct rng){ 13 });
	for (uint32_t l = 0; l < f->layers; l++) {
		uint16_t mask = f->model->layers[l].bits_mask;

		for (size_t i = 0; i < sizeof(outside); i++) {
			bmx_engine_default_bits(f->engine, bits);
			bits[l].w_bits = outside[i];
			expect_refused(f, bits, l);
			bmx_engine_default_bits(f->engine, bits);
			bits[l].a_bits = outside[i];
			expect_refused(f, bits, l);
		}
		for (unsigned b = BMX_MIN_BITS; b <= BMX_MAX_BITS; b++) {
			if (mask & (1u << b))
				continue;
			bmx_engine_default_bits(f->engine, bits);
			bits[l].w_bits = (uint8_t)b;
			expect_refused(f, bits, l);
			tested_mask_hole = 1;
		}
	}
	if (!tested_mask_hole)
		print_message(
			"note: every layer supports all of 2..8; no in-range hole to refuse\n");
}

/* Same input and bits: bit-identical outputs across runs and batch sizes. */
static void test_deterministic(void **state)
{
	struct fixture *f = *state;
	struct bmx_layer_bits bits[BMX_MAX_LAYERS];
	struct rng r = { 14 };
	size_t n = (size_t)MAX_BATCH * f->out_size;
	float *first = malloc(n * sizeof(float));

	assert_non_null(first);
	random_bits(f, bits, &r);
	random_input(f, MAX_BATCH, &r);
	assert_int_equal(bmx_engine_run(f->engine, bits, MAX_BATCH, f->input, first, f->scratch),
			 0);
	for (int i = 0; i < 5; i++) {
		memset(f->scratch, i * 37, bmx_engine_scratch_size(f->engine, MAX_BATCH));
		assert_int_equal(bmx_engine_run(f->engine, bits, MAX_BATCH, f->input, f->output,
						f->scratch),
				 0);
		assert_memory_equal(first, f->output, n * sizeof(float));
	}
	for (uint32_t s = 0; s < MAX_BATCH; s++) {
		assert_int_equal(bmx_engine_run(f->engine, bits, 1,
						f->input + (size_t)s * f->in_size, f->output,
						f->scratch),
				 0);
		assert_memory_equal(first + (size_t)s * f->out_size, f->output,
				    f->out_size * sizeof(float));
	}
	free(first);
}

struct thread_job {
	const struct fixture *f;
	const struct bmx_layer_bits *bits;
	const float *want;
	int mismatches;
};

static void *thread_main(void *arg)
{
	struct thread_job *job = arg;
	const struct fixture *f = job->f;
	void *scratch = scratch_new(f->engine, MAX_BATCH);
	float *out = calloc((size_t)MAX_BATCH * f->out_size, sizeof(float));

	for (int i = 0; out && i < 40; i++) {
		if (bmx_engine_run(f->engine, job->bits, MAX_BATCH, f->input, out, scratch) < 0 ||
		    memcmp(out, job->want, (size_t)MAX_BATCH * f->out_size * sizeof(float)) != 0)
			job->mismatches++;
	}
	free(out);
	free(scratch);
	return NULL;
}

static void test_threads(void **state)
{
	struct fixture *f = *state;
	struct bmx_layer_bits bits[BMX_MAX_LAYERS];
	struct rng r = { 15 };
	float *want = malloc((size_t)MAX_BATCH * f->out_size * sizeof(float));
	struct thread_job jobs[2];
	pthread_t t[2];

	assert_non_null(want);
	random_bits(f, bits, &r);
	random_input(f, MAX_BATCH, &r);
	assert_int_equal(bmx_engine_run(f->engine, bits, MAX_BATCH, f->input, want, f->scratch), 0);
	for (int i = 0; i < 2; i++) {
		jobs[i] = (struct thread_job){ f, bits, want, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, thread_main, &jobs[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(jobs[i].mismatches, 0);
	}
	free(want);
}

static double max_abs_diff(const float *a, const float *b, uint32_t n)
{
	double d = 0;

	for (uint32_t i = 0; i < n; i++)
		d = fmax(d, fabs((double)a[i] - b[i]));
	return d;
}

/* Lowering any one layer's weight or activation bits changes the output. */
static void test_bits_are_used(void **state)
{
	struct fixture *f = *state;
	struct bmx_layer_bits bits[BMX_MAX_LAYERS];
	float *base = malloc(f->out_size * sizeof(float));

	assert_non_null(base);
	random_input(f, 1, &(struct rng){ 16 });
	uniform_bits(f, bits, 8);
	assert_int_equal(bmx_engine_run(f->engine, bits, 1, f->input, base, f->scratch), 0);
	for (uint32_t l = 0; l < f->layers; l++) {
		uint8_t low = (uint8_t)(__builtin_ctz(f->model->layers[l].bits_mask));
		uint8_t w = bits[l].w_bits, a = bits[l].a_bits;

		if (low == w)
			continue;
		bits[l].w_bits = low;
		assert_int_equal(
			bmx_engine_run(f->engine, bits, 1, f->input, f->output, f->scratch), 0);
		if (max_abs_diff(base, f->output, f->out_size) == 0)
			fail_msg("layer %u: w_bits %u -> %u did not change the output", l, w, low);
		bits[l].w_bits = w;
		bits[l].a_bits = low;
		assert_int_equal(
			bmx_engine_run(f->engine, bits, 1, f->input, f->output, f->scratch), 0);
		if (max_abs_diff(base, f->output, f->out_size) == 0)
			fail_msg("layer %u: a_bits %u -> %u did not change the output", l, a, low);
		bits[l].a_bits = a;
	}
	free(base);
}

/* Mean |engine - full precision| over samples at uniform bits B. */
static double error_vs_fp(struct fixture *f, unsigned b, int samples)
{
	struct bmx_layer_bits bits[BMX_MAX_LAYERS];
	struct rng r = { 17 };
	double sum = 0;

	uniform_bits(f, bits, b);
	for (int s = 0; s < samples; s++) {
		random_input(f, 1, &r);
		assert_int_equal(
			bmx_engine_run(f->engine, bits, 1, f->input, f->output, f->scratch), 0);
		assert_int_equal(graph_double_run(f->model, bits, 1, f->input, f->want, NULL), 0);
		for (uint32_t i = 0; i < f->out_size; i++)
			sum += fabs(f->output[i] - f->want[i]);
	}
	return sum / samples;
}

static void test_precision_order(void **state)
{
	struct fixture *f = *state;
	double e8 = error_vs_fp(f, 8, 16), e4 = error_vs_fp(f, 4, 16), e2 = error_vs_fp(f, 2, 16);

	print_message("mean |y - fp| per sample: 8 bits %.4g, 4 bits %.4g, 2 bits %.4g\n", e8, e4,
		      e2);
	assert_true(e8 < e2);
	assert_true(e8 < e4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_bits),	cmocka_unit_test(test_vs_double),
		cmocka_unit_test(test_bad_bits),	cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_threads),		cmocka_unit_test(test_bits_are_used),
		cmocka_unit_test(test_precision_order),
	};
	int failed = 0;

	failed += cmocka_run_group_tests_name("tiny", tests, setup_tiny, fixture_teardown);
	failed += cmocka_run_group_tests_name("fmnist", tests, setup_fmnist, fixture_teardown);
	return failed;
}
