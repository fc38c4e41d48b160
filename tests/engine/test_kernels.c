/* SPDX-License-Identifier: MIT */
/*
 * test_kernels.c — every fast kernel path (AVX-512, AVX-VNNI, AVX2: those this CPU runs) against
 * the reference engine, bit for bit: random small models of one or two quantized layers (LINEAR,
 * CONV2D with odd sizes, strides, pads and 1x1 shapes, depthwise, grouped), with and without a
 * ReLU after them (the fused epilogue), signed and unsigned activations, inputs with NaN, inf and
 * -0, at every weight bits and activation bits from 2 to 8 and batches from 1 to 5 (LINEAR
 * layers also at 1 and 16), run sequentially and split over a parallel-for. Also: path names,
 * parsing and the env override.
 */
#include <errno.h>
#include <math.h>
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

#define MAX_BATCH 16   /* the largest batch a test runs */
#define RANDOM_BATCH 5 /* random batches are 1..RANDOM_BATCH */

/* Which (w, a) compare_paths() runs, and at which batches. */
enum pairs {
	ALL_PAIRS = 0, /* every (w, a), a random batch of 1..RANDOM_BATCH each */
	DIAGONAL = 1,  /* w == a only */
	LOW_BITS = 2,  /* w = 2 (the table-lookup GEMM's) and every a, at batch 1 and at 16 */
};
#define MASK_ALL 0x01fc
#define NBITS 7

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t below(struct rng *r, uint32_t n)
{
	return (uint32_t)(rnd(r) % n);
}

static float uniform(struct rng *r, float lo, float hi)
{
	return lo + (hi - lo) * (float)((double)(rnd(r) >> 40) / 16777216.0);
}

/* One quantized layer's description for add_layer(). */
struct layer_desc {
	uint32_t out_c, kh, kw, stride, pad, groups; /* kh == 0: LINEAR */
	int tbn_prev, act_signed;
};

static int add_layer(struct bmx_writer *w, struct rng *r, int input, const struct layer_desc *d)
{
	uint32_t h, wd, c, prev_nbits = d->tbn_prev >= 0 ? NBITS : 1;
	struct bmx_node_spec s = {
		.op = d->kh ? BMX_OP_CONV2D : BMX_OP_LINEAR,
		.inputs = { input, -1 },
		.out_c = d->out_c,
		.kernel_h = (uint16_t)d->kh,
		.kernel_w = (uint16_t)d->kw,
		.stride_h = (uint16_t)d->stride,
		.stride_w = (uint16_t)(d->stride + (d->kw > 1)),
		.pad_top = (uint16_t)d->pad,
		.pad_left = (uint16_t)(d->pad ? d->pad - 1 : 0),
		.pad_bottom = (uint16_t)(d->pad + 1 < d->kh ? d->pad + 1 : d->pad),
		.pad_right = (uint16_t)d->pad,
		.groups = d->groups,
		.name = "l",
		.bits_mask = MASK_ALL,
		.tbn_prev = d->tbn_prev,
		.act_signed = (uint8_t)d->act_signed,
	};
	int8_t *wt;
	float ws[512], as[NBITS], *tbn;
	size_t k, n;
	int node;

	assert_int_equal(bmx_writer_shape(w, input, &h, &wd, &c), 0);
	k = d->kh ? (size_t)d->kh * d->kw * (c / (d->groups ? d->groups : 1)) : (size_t)h * wd * c;
	n = (size_t)d->out_c * k;
	wt = malloc(n);
	tbn = malloc(sizeof(float) * prev_nbits * NBITS * 2 * d->out_c);
	assert_true(wt && tbn && d->out_c <= 512);
	for (size_t i = 0; i < n; i++)
		wt[i] = (int8_t)(below(r, 8) == 0 ? (below(r, 2) ? 127 : -128)
						  : (int)below(r, 256) - 128);
	for (uint32_t o = 0; o < d->out_c; o++)
		ws[o] = uniform(r, 0.5f, 1.5f) / (64.0f * sqrtf((float)k));
	for (uint32_t i = 0; i < NBITS; i++)
		as[i] = uniform(r, 0.5f, 2.0f) / (float)((1u << (i + 2)) - 1);
	for (size_t i = 0; i < (size_t)prev_nbits * NBITS * 2 * d->out_c; i++)
		tbn[i] = below(r, 8) == 0 ? -0.0f : uniform(r, -1.0f, 1.0f);
	s.weights = wt;
	s.w_scale = ws;
	s.a_step = as;
	s.tbn = tbn;
	node = bmx_writer_add(w, &s);
	free(wt);
	free(tbn);
	assert_true(node >= 0);
	return node;
}

/* A parallel-for that runs the tasks in reverse order on the calling thread. */
static void for_each_reversed(void *ctx, unsigned n, void (*fn)(void *arg, unsigned task),
			      void *arg)
{
	unsigned *calls = ctx;

	for (unsigned t = n; t-- > 0;)
		fn(arg, t);
	*calls += 1;
}

static void *scratch_new(const struct bmx_engine *e)
{
	size_t size = (bmx_engine_scratch_size(e, MAX_BATCH) + 63) / 64 * 64;
	void *p = aligned_alloc(64, size ? size : 64);

	assert_non_null(p);
	return p;
}

/* B, or the layer's highest bit-width if it does not support B. */
static uint8_t supported(const struct bmx_layer_view *v, unsigned b)
{
	return (uint8_t)(v->bit_index[b] >= 0 ? b : v->bits[v->nbits - 1]);
}

/*
 * Run MODEL on REF and on PATH at every (w, a) (DIAGONAL: only w == a), uniform over its layers
 * as far as each supports it, at each of the N_BATCHES BATCHES (none: one random batch per
 * pair); the outputs must be equal bit for bit.
 */
static void compare_batches(const void *file, size_t size, enum bmx_kernels_path path,
			    struct rng *r, int diagonal, const uint32_t *batches, size_t n_batches)
{
	struct bmx_model *m = NULL;
	struct bmx_engine *ref = NULL, *fast = NULL;
	struct bmx_error err = { { 0 } };
	struct bmx_layer_bits bits[64];
	unsigned calls = 0;
	const struct bmx_parallel par = { for_each_reversed, &calls, 3 };
	void *s_ref, *s_fast;
	float *in, *want, *got;
	size_t in_n, out_n;

	if (bmx_model_load_memory(file, size, &m, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(bmx_engine_new_path(m, BMX_KERNELS_REF, &ref), 0);
	assert_int_equal(bmx_engine_new_path(m, path, &fast), 0);
	assert_int_equal(bmx_engine_path(fast), path);
	s_ref = scratch_new(ref);
	s_fast = scratch_new(fast);
	in_n = MAX_BATCH * bmx_model_input_size(m);
	out_n = MAX_BATCH * bmx_model_output_size(m);
	in = malloc(in_n * sizeof(float));
	want = malloc(out_n * sizeof(float));
	got = malloc(out_n * sizeof(float));
	assert_true(in && want && got);
	for (size_t i = 0; i < in_n; i++) {
		/* samples past RANDOM_BATCH repeat the first ones in reverse, drawing nothing more */
		const size_t first = RANDOM_BATCH * bmx_model_input_size(m);
		uint32_t pick = i < first ? below(r, 64) : 64;

		in[i] = pick == 0   ? NAN
			: pick == 1 ? INFINITY
			: pick == 2 ? -INFINITY
			: pick == 3 ? -0.0f
			: pick < 64 ? uniform(r, -3.0f, 6.0f)
				    : in[first - 1 - i % first];
	}
	/*
	 * Sample 0 all zeros: acc = 0, so y = 0 * mult + beta is -0 where mult < 0 and beta = -0,
	 * and a fused ReLU must keep fmaxf's choice for -0.
	 */
	memset(in, 0, bmx_model_input_size(m) * sizeof(float));
	for (unsigned w = 2; w <= (diagonal == LOW_BITS ? 2u : 8u); w++)
		for (unsigned a = diagonal == DIAGONAL ? w : 2;
		     a <= (diagonal == DIAGONAL ? w : 8u); a++)
			for (size_t b = 0; b < (n_batches ? n_batches : 1); b++) {
				const uint32_t batch = n_batches ? batches[b]
								 : 1 + below(r, RANDOM_BATCH);
				const size_t n = batch * bmx_model_output_size(m);

				assert_true(m->layer_count <= 64);
				for (uint32_t l = 0; l < m->layer_count; l++)
					bits[l] = (struct bmx_layer_bits){
						supported(&m->views[l], w),
						supported(&m->views[l], a)
					};
				assert_int_equal(bmx_engine_run(ref, bits, batch, in, want, s_ref),
						 0);

				assert_int_equal(bmx_engine_run(fast, bits, batch, in, got, s_fast),
						 0);
				if (memcmp(want, got, n * sizeof(float)) != 0) {
					for (size_t i = 0; i < n; i++)
						if (memcmp(&want[i], &got[i], sizeof(float)) != 0)
							fail_msg(
								"%s w%u a%u batch %u: out[%zu] = %a, reference %a",
								bmx_kernels_name(path), w, a, batch,
								i, (double)got[i], (double)want[i]);
				}
				memset(got, 0, n * sizeof(float));
				assert_int_equal(bmx_engine_run_parallel(fast, bits, batch, in, got,
									 s_fast, &par),
						 0);
				assert_memory_equal(want, got, n * sizeof(float));
			}
	free(in);
	free(want);
	free(got);
	free(s_ref);
	free(s_fast);
	bmx_engine_free(ref);
	bmx_engine_free(fast);
	bmx_model_free(m);
}

/* compare_batches() at the pairs and batches of PAIRS (enum pairs). */
static void compare_paths(const void *file, size_t size, enum bmx_kernels_path path, struct rng *r,
			  int pairs)
{
	static const uint32_t one_and_16[] = { 1, 16 };

	if (pairs == LOW_BITS)
		compare_batches(file, size, path, r, pairs, one_and_16, 2);
	else
		compare_batches(file, size, path, r, pairs, NULL, 0);
}

/* A model INPUT(h, w, c) -> layer [-> RELU] [-> layer2 -> RELU], into FILE and SIZE. */
static void build_model(struct rng *r, uint32_t h, uint32_t wd, uint32_t c,
			const struct layer_desc *d, int relu, int second, void **file, size_t *size)
{
	struct bmx_writer *w = bmx_writer_new("k", h, wd, c, MASK_ALL);
	int x;

	assert_non_null(w);
	x = add_layer(w, r, 0, d);
	if (relu) {
		struct bmx_node_spec s = { .op = BMX_OP_RELU, .inputs = { x, -1 } };

		x = bmx_writer_add(w, &s);
	}
	if (second) {
		struct layer_desc d2 = { 3 + below(r, 30), d->kh ? 3 : 0, 3, 1, 1, 1, 0, 0 };
		struct bmx_node_spec s = { .op = BMX_OP_RELU, .inputs = { 0, -1 } };

		x = add_layer(w, r, x, &d2);
		s.inputs[0] = x;
		x = bmx_writer_add(w, &s);
	}
	assert_true(x >= 0);
	assert_int_equal(bmx_writer_finish(w, file, size), 0);
	bmx_writer_free(w);
}

static void check_model(enum bmx_kernels_path path, struct rng *r, uint32_t h, uint32_t wd,
			uint32_t c, const struct layer_desc *d, int relu, int second, int diagonal)
{
	void *file = NULL;
	size_t size;

	build_model(r, h, wd, c, d, relu, second, &file, &size);
	compare_paths(file, size, path, r, diagonal);
	free(file);
}

static void each_path(void (*fn)(enum bmx_kernels_path path, struct rng *r))
{
	static const enum bmx_kernels_path paths[] = { BMX_KERNELS_AVX512, BMX_KERNELS_AVXVNNI,
						       BMX_KERNELS_AVX2 };
	struct rng r = { 7 };

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (!bmx_kernels_supported(paths[i])) {
			print_message("skipping %s: not supported by this CPU\n",
				      bmx_kernels_name(paths[i]));
			continue;
		}
		fn(paths[i], &r);
	}
}

static void linear_cases(enum bmx_kernels_path path, struct rng *r)
{
	static const uint32_t ks[] = { 1, 3, 63, 64, 65, 130, 257, 1031 };

	for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
		struct layer_desc d = { 1 + below(r, 45), 0, 0, 1, 0, 1, -1, (int)(i & 1) };

		check_model(path, r, 1, 1, ks[i], &d, (int)(i % 3 != 0), i == 4, 0);
	}
}

static void test_linear(void **state)
{
	(void)state;
	each_path(linear_cases);
}

/*
 * Batch-1 LINEAR layers (GEMV: on AVX2 and AVX-VNNI by table lookup on the planes) and the same
 * layers at batch 16 (GEMM), at every (w, a): reductions of odd and even step counts (the
 * paired plane order's pad step), past one sweep of 64 step pairs (516, 1028, 2052 positions),
 * channels that leave a partial panel or fill whole ones, signed and unsigned inputs.
 */
static void gemv_cases(enum bmx_kernels_path path, struct rng *r)
{
	static const uint32_t ks[] = { 4, 8, 28, 64, 132, 516, 1028, 2052, 13 };
	static const uint32_t ns[] = { 1, 17, 32, 33, 100, 64, 130, 16, 48 };
	static const uint32_t batches[] = { 1, 16 };

	for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
		struct layer_desc d = { ns[i], 0, 0, 1, 0, 1, -1, (int)(i & 1) };
		void *file = NULL;
		size_t size;

		build_model(r, 1, 1, ks[i], &d, (int)(i % 3 != 0), i == 5, &file, &size);
		compare_batches(file, size, path, r, 0, batches, 2);
		free(file);
	}
}

static void test_gemv(void **state)
{
	(void)state;
	each_path(gemv_cases);
}

static void conv_cases(enum bmx_kernels_path path, struct rng *r)
{
	for (int i = 0; i < 10; i++) {
		const uint32_t k = 1 + 2 * below(r, 2) + (i == 9 ? 4 : 0);
		struct layer_desc d = { 1 + below(r, 40),    k, k,  1 + below(r, 2),
					below(r, k / 2 + 1), 1, -1, i & 1 };
		const uint32_t h = k + below(r, 8), wd = k + 1 + below(r, 7);

		check_model(path, r, h, wd, 1 + below(r, 70), &d, i % 3 != 0, i == 2 || i == 7, 0);
	}
}

static void test_conv(void **state)
{
	(void)state;
	each_path(conv_cases);
}

/*
 * Convolutions over a multiple of 4 input channels: the AVX-512 path reads their windows in
 * place (no im2col) and makes row sums from pixel sums. Kernels 1..5 with strides and the
 * asymmetric pads of add_layer() (taps outside on every side), output channels that leave a
 * last panel of 1..16 channels (the 16-wide tile) or a full one, 3 + 3 + 1, 2 + 2 and 3 + 2
 * groups of 16, 400 channels (split by channels over the parallel-for's tasks), inputs of one
 * pixel row.
 */
static void direct_cases(enum bmx_kernels_path path, struct rng *r)
{
	static const uint32_t in_c[] = { 4, 8, 12, 48, 20, 64, 4, 36, 8, 16, 12 };
	static const uint32_t out_c[] = { 48, 17, 40, 32, 1, 80, 16, 33, 112, 64, 400 };

	for (size_t i = 0; i < sizeof(in_c) / sizeof(in_c[0]); i++) {
		const uint32_t k = 1 + (uint32_t)i % 5;
		struct layer_desc d = { out_c[i],	 k, k,	1 + (uint32_t)(i % 3 == 1),
					(uint32_t)i % k, 1, -1, (int)(i & 1) };
		const uint32_t h = i == 6 ? 1 : k + below(r, 9), wd = k + 1 + below(r, 8);

		if (i == 6) /* one input row: every tap row but the middle one is outside */
			d.kh = 1;
		check_model(path, r, h, wd, in_c[i], &d, i % 3 != 2, i == 3, 0);
	}
}

/*
 * Stem-like convolutions over in_c % 4 != 0 channels (im2col rows from the padded input; rows
 * of up to 16 bytes per kernel row get their sums while copied): 3x3 over 1 channel, 7x7/2 over
 * 3, 5x5 over 2, 3x3 over 5, 2x2 over 6, 3x1 over 3; batch and pads vary.
 */
static void stem_cases(enum bmx_kernels_path path, struct rng *r)
{
	static const uint32_t in_c[] = { 1, 3, 2, 5, 6, 3 }, kh[] = { 3, 7, 5, 3, 2, 3 };
	static const uint32_t kw[] = { 3, 7, 5, 3, 2, 1 }, out_c[] = { 48, 64, 17, 40, 5, 33 };

	for (size_t i = 0; i < sizeof(in_c) / sizeof(in_c[0]); i++) {
		const uint32_t kmin = kh[i] < kw[i] ? kh[i] : kw[i];
		struct layer_desc d = { out_c[i],	    kh[i], kw[i], 1 + (uint32_t)(i == 1),
					(uint32_t)i % kmin, 1,	   -1,	  (int)(i & 1) };

		check_model(path, r, kh[i] + 3 + below(r, 8), kw[i] + 2 + below(r, 8), in_c[i], &d,
			    i != 2, i == 0, 0);
	}
}

static void test_stem_conv(void **state)
{
	(void)state;
	each_path(stem_cases);
}

static void test_direct_conv(void **state)
{
	(void)state;
	each_path(direct_cases);
}

/* 1x1 convolutions over 64 and 128 channels take the no-im2col path; batch 1 of 1x1 is GEMV. */
static void pointwise_cases(enum bmx_kernels_path path, struct rng *r)
{
	struct layer_desc d = { 33, 1, 1, 1, 0, 1, -1, 0 };

	d.stride = 1;
	check_model(path, r, 5, 3, 64, &d, 1, 0, 0);
	d.out_c = 17;
	d.act_signed = 1;
	check_model(path, r, 3, 2, 128, &d, 0, 0, 0);
	check_model(path, r, 1, 1, 128, &d, 1, 0, 0);
}

static void test_pointwise(void **state)
{
	(void)state;
	each_path(pointwise_cases);
}

/*
 * Chains of layers where each one's output (after its ReLU, or not) is the next quantized
 * layer's only input, so that a path with fused requantization writes the next layer's codes
 * from the epilogue: into a padded input (3x3, direct or im2col), an unpadded 1x1's rows, a
 * depthwise input and a LINEAR's rows; signed and unsigned activations.
 */
static void requant_chain(enum bmx_kernels_path path, struct rng *r, int pairs)
{
	static const struct layer_desc chain[] = {
		{ 48, 3, 3, 1, 1, 1, -1, 0 },  /* + ReLU, -> a 1x1's rows */
		{ 20, 1, 1, 1, 0, 1, -1, 0 },  /* -> padded, read in place (20 % 4 == 0) */
		{ 32, 3, 3, 1, 1, 1, -1, 1 },  /* + ReLU, -> a depthwise's padded input */
		{ 32, 3, 3, 1, 1, 32, -1, 0 }, /* depthwise: its own epilogue never requantizes */
		{ 6, 3, 3, 1, 1, 1, -1, 1 },   /* + ReLU, -> padded, im2col (6 channels) */
		{ 10, 3, 3, 1, 1, 1, -1, 0 },  /* -> a LINEAR's rows */
		{ 13, 0, 0, 1, 0, 1, -1, 0 },  /* + ReLU, -> a LINEAR's rows */
		{ 7, 0, 0, 1, 0, 1, -1, 1 },
	};
	struct bmx_writer *w = bmx_writer_new("chain", 6, 48, 8, MASK_ALL);
	void *file = NULL;
	size_t size;
	int x = 0;

	assert_non_null(w);
	for (size_t i = 0; i < sizeof(chain) / sizeof(chain[0]); i++) {
		x = add_layer(w, r, x, &chain[i]);
		if (i % 2 == 0) {
			struct bmx_node_spec s = { .op = BMX_OP_RELU, .inputs = { x, -1 } };

			x = bmx_writer_add(w, &s);
		}
	}
	assert_true(x >= 0);
	assert_int_equal(bmx_writer_finish(w, &file, &size), 0);
	bmx_writer_free(w);
	compare_paths(file, size, path, r, pairs);
	free(file);
}

static void requant_cases(enum bmx_kernels_path path, struct rng *r)
{
	requant_chain(path, r, ALL_PAIRS);
}

static void test_requant_chains(void **state)
{
	(void)state;
	each_path(requant_cases);
}

static void grouped_cases(enum bmx_kernels_path path, struct rng *r)
{
	static const uint32_t channels[] = { 1, 8, 16, 21, 40 };

	for (size_t i = 0; i < sizeof(channels) / sizeof(channels[0]); i++) {
		const uint32_t c = channels[i], k = 1 + 2 * below(r, 2);
		struct layer_desc d = { c, k,  k,	    1 + below(r, 2), below(r, k / 2 + 1),
					c, -1, (int)(i & 1) };

		check_model(path, r, 4 + below(r, 6), 5 + below(r, 5), c, &d, (int)(i & 1), 0, 0);
	}
	/*
	 * 5x5 taps over 320 channels: the AVX-512 path's constants in two chunks of channels;
	 * 23x23 taps: too many weight pairs to decode once, rebuilt at every use.
	 */
	struct layer_desc big = { 320, 5, 5, 1, 2, 320, -1, 1 },
			  wide = { 16, 23, 23, 1, 11, 16, -1, 0 };

	check_model(path, r, 6, 7, 320, &big, 1, 0, 1);
	check_model(path, r, 24, 25, 16, &wide, 1, 0, 1);
	/* Grouped but not depthwise: stays on the reference kernels inside a fast engine. */
	struct layer_desc g = { 12, 3, 3, 1, 1, 3, -1, 0 };

	check_model(path, r, 5, 5, 6, &g, 1, 0, 0);
}

static void test_depthwise_grouped(void **state)
{
	(void)state;
	each_path(grouped_cases);
}

/*
 * Inputs big enough (>= 32768 values) that quantizing, im2col and row sums are split over the
 * parallel-for too: a 1x1 convolution (GEMM straight on the input), a 3x3 one, a depthwise one.
 */
static void large_cases(enum bmx_kernels_path path, struct rng *r)
{
	struct layer_desc pw = { 8, 1, 1, 1, 0, 1, -1, 0 }, conv = { 5, 3, 3, 1, 1, 1, -1, 1 };
	struct layer_desc dw = { 60, 3, 3, 1, 1, 60, -1, 0 };

	check_model(path, r, 24, 24, 64, &pw, 1, 0, 1);
	check_model(path, r, 24, 23, 60, &conv, 0, 0, 1);
	check_model(path, r, 25, 24, 60, &dw, 1, 0, 1);
}

static void test_large_inputs(void **state)
{
	(void)state;
	each_path(large_cases);
}

/* Whole graphs: residual adds, ReLU after ADD, max and average pools, depthwise, softmax. */
static void whole_cases(enum bmx_kernels_path path, struct rng *r)
{
	static const char *const archs[] = { "tiny", "fmnist" };

	for (size_t i = 0; i < sizeof(archs) / sizeof(archs[0]); i++) {
		void *file = NULL;
		size_t size;

		assert_int_equal(bmx_build_arch(archs[i], 3 + i, archs[i], &file, &size), 0);
		compare_paths(file, size, path, r, i > 0);
		free(file);
	}
}

static void test_whole_models(void **state)
{
	(void)state;
	each_path(whole_cases);
}

/*
 * Max-pooling with padding on every side and windows cut by the input's edge (3x3 stride 2 pad
 * 1 over a convolution's output, and 2x2 stride 2 over the 9x11 model input with its NaN,
 * infinities and zeros of both signs, where vmaxps's operand order decides), then ADD, global
 * average and LINEAR: the vectorized float ops against the reference's.
 */
static void pool_cases(enum bmx_kernels_path path, struct rng *r)
{
	static const uint16_t k[] = { 3, 2 }, pad[] = { 1, 0 };

	for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
		struct bmx_writer *w = bmx_writer_new("p", 9, 11, 20, MASK_ALL);
		struct layer_desc conv = { 20, 3, 3, 1, 1, 1, -1, 0 },
				  fc = { 7, 0, 0, 1, 0, 1, -1, 0 };
		struct bmx_node_spec pool = { .op = BMX_OP_MAXPOOL,
					      .kernel_h = k[i],
					      .kernel_w = k[i],
					      .stride_h = 2,
					      .stride_w = 2,
					      .pad_top = pad[i],
					      .pad_left = pad[i],
					      .pad_bottom = pad[i],
					      .pad_right = pad[i] };
		struct bmx_node_spec add = { .op = BMX_OP_ADD },
				     gap = { .op = BMX_OP_GLOBAL_AVGPOOL };
		void *file = NULL;
		size_t size;
		int x, p;

		assert_non_null(w);
		/* the second pools the model input itself: NaN, infinities, -0 and +0 mixed */
		x = i == 0 ? add_layer(w, r, 0, &conv) : 0;
		pool.inputs[0] = x;
		pool.inputs[1] = -1;
		assert_true((p = bmx_writer_add(w, &pool)) >= 0);
		conv.kh = conv.kw = 1; /* same shape, for the ADD */
		conv.pad = 0;
		x = add_layer(w, r, p, &conv);
		add.inputs[0] = x;
		add.inputs[1] = p;
		assert_true((x = bmx_writer_add(w, &add)) >= 0);
		gap.inputs[0] = x;
		gap.inputs[1] = -1;
		assert_true((x = bmx_writer_add(w, &gap)) >= 0);
		x = add_layer(w, r, x, &fc);
		assert_int_equal(bmx_writer_set_output(w, x), 0);
		assert_int_equal(bmx_writer_finish(w, &file, &size), 0);
		bmx_writer_free(w);
		compare_paths(file, size, path, r, 1);
		free(file);
	}
}

static void test_pools(void **state)
{
	(void)state;
	each_path(pool_cases);
}

/*
 * The table-lookup GEMM (2-bit weights, activation codes up to 63; kern_avx512_lut.c), forced
 * onto every layer it serves (BITMIX_LOWBIT=on), at w = 2 and every a (a = 7, 8 and sums past
 * int16 fall back to the dot kernels), batch 1 (a direct convolution's rows; a LINEAR is GEMV)
 * and 16: convolutions read in place over in_c = 16, 32, 48, 64 (taps 2x2 to 5x5, strides,
 * pads, out_c leaving tiles of 1..32 channels and row tiles of 1..10 rows), over in_c % 16 != 0
 * (im2col rows), 1x1 straight on the input and strided, stems, LINEARs with K = 5 .. 1031, and
 * a chain whose epilogues requantize for the next layer.
 */
static void lowbit_cases(enum bmx_kernels_path path, struct rng *r)
{
	static const uint32_t in_c[] = { 16, 32, 48, 64, 48, 20, 64, 1, 3, 16 };
	static const uint32_t k[] = { 3, 3, 3, 5, 2, 3, 1, 3, 7, 3 };
	static const uint32_t out_c[] = { 17, 48, 40, 100, 33, 9, 64, 48, 24, 1 };
	static const uint32_t ks[] = { 5, 130, 1031 };

	for (size_t i = 0; i < sizeof(in_c) / sizeof(in_c[0]); i++) {
		struct layer_desc d = { out_c[i],	    k[i], k[i], 1 + (uint32_t)(i % 4 == 1),
					(uint32_t)i % k[i], 1,	  -1,	(int)(i & 1) };
		/* Case 1 has a second (random) layer: wide enough for its taps after a stride of 3. */
		const uint32_t h = k[i] + below(r, 9), wd = k[i] + (i == 1 ? 9 : 1) + below(r, 8);

		check_model(path, r, i == 9 ? k[i] : h, i == 9 ? k[i] + 1 : wd, in_c[i], &d,
			    i % 3 != 2, i == 1, LOW_BITS);
	}
	for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
		struct layer_desc d = { 1 + below(r, 45), 0, 0, 1, 0, 1, -1, (int)(i & 1) };

		check_model(path, r, 1, 1, ks[i], &d, (int)(i != 1), 0, LOW_BITS);
	}
	requant_chain(path, r, LOW_BITS);
}

static void test_lowbit_kernels(void **state)
{
	(void)state;
	assert_int_equal(setenv("BITMIX_LOWBIT", "on", 1), 0);
	each_path(lowbit_cases);
	unsetenv("BITMIX_LOWBIT");
}

static void test_path_names(void **state)
{
	enum bmx_kernels_path p;

	(void)state;
	assert_int_equal(bmx_kernels_parse("avx512", &p), 0);
	assert_int_equal(p, BMX_KERNELS_AVX512);
	assert_int_equal(bmx_kernels_parse("ref", &p), 0);
	assert_int_equal(p, BMX_KERNELS_REF);
	assert_int_equal(bmx_kernels_parse("avx3", &p), -EINVAL);
	assert_string_equal(bmx_kernels_name(BMX_KERNELS_AVX2), "avx2");
	assert_int_equal(bmx_kernels_parse("avxvnni", &p), 0);
	assert_int_equal(p, BMX_KERNELS_AVXVNNI);
	/* AVX-VNNI without AVX-512 is the second choice, plain AVX2 the third */
	assert_int_equal(bmx_kernels_resolve(BMX_KERNELS_AVXVNNI),
			 bmx_kernels_supported(BMX_KERNELS_AVXVNNI) ? BMX_KERNELS_AVXVNNI
			 : bmx_kernels_supported(BMX_KERNELS_AVX2)  ? BMX_KERNELS_AVX2
								    : BMX_KERNELS_REF);
	assert_int_equal(bmx_kernels_resolve(BMX_KERNELS_REF), BMX_KERNELS_REF);
	assert_int_equal(setenv("BITMIX_KERNELS", "ref", 1), 0);
	assert_int_equal(bmx_kernels_resolve(BMX_KERNELS_AUTO), BMX_KERNELS_REF);
	assert_int_equal(setenv("BITMIX_KERNELS", "avx2", 1), 0);
	assert_int_equal(bmx_kernels_resolve(BMX_KERNELS_AUTO),
			 bmx_kernels_supported(BMX_KERNELS_AVX2) ? BMX_KERNELS_AVX2
								 : BMX_KERNELS_REF);
	/* An explicit request wins over the environment. */
	assert_int_equal(bmx_kernels_resolve(BMX_KERNELS_REF), BMX_KERNELS_REF);
	assert_int_equal(unsetenv("BITMIX_KERNELS"), 0);
	p = bmx_kernels_resolve(BMX_KERNELS_AUTO);
	assert_true(p != BMX_KERNELS_AUTO);
	assert_true(bmx_kernels_supported(p));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_names),     cmocka_unit_test(test_linear),
		cmocka_unit_test(test_gemv),	       cmocka_unit_test(test_conv),
		cmocka_unit_test(test_pointwise),      cmocka_unit_test(test_requant_chains),
		cmocka_unit_test(test_lowbit_kernels), cmocka_unit_test(test_direct_conv),
		cmocka_unit_test(test_stem_conv),      cmocka_unit_test(test_depthwise_grouped),
		cmocka_unit_test(test_large_inputs),   cmocka_unit_test(test_whole_models),
		cmocka_unit_test(test_pools),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
