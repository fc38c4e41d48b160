/* SPDX-License-Identifier: MIT */
/*
 * test_ops.c — the reference kernels (kernels/ops_ref.h) against the independent double model
 * (ref_double.h), op by op, on random shapes (odd sizes, strides, asymmetric pads, groups,
 * depthwise, batch 1 and 3) and at every (w_bits, a_bits) in 2..8 x 2..8. Integer accumulators
 * must match exactly; float outputs within 1e-5 of the output's magnitude.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ops_ref.h"
#include "ref_double.h"

#define REL_TOL 1e-5

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	assert_non_null(p);
	return p;
}

/* |got - want| <= REL_TOL * scale for every element, scale = max |want| (at least FLOOR). */
static void assert_close(const float *got, const double *want, size_t n, double floor_scale)
{
	double scale = floor_scale;

	for (size_t i = 0; i < n; i++)
		scale = fmax(scale, fabs(want[i]));
	for (size_t i = 0; i < n; i++) {
		if (fabs(got[i] - want[i]) > REL_TOL * scale)
			fail_msg("element %zu: got %.9g, want %.9g (scale %.3g)", i, got[i],
				 want[i], scale);
	}
}

static void test_weight_decode(void **state)
{
	int8_t codes[256];
	int16_t v[256];

	(void)state;
	for (int i = 0; i < 256; i++)
		codes[i] = (int8_t)(i - 128);
	for (unsigned w = 2; w <= 8; w++) {
		bmx_ref_decode_weights(codes, 256, w, v);
		for (int i = 0; i < 256; i++) {
			int32_t k = dref_weight_k(codes[i], w);

			assert_int_equal(v[i], 2 * k + 1);
			assert_int_equal(bmx_ref_weight_value(codes[i], w), v[i]);
			assert_true(k >= -(1 << (w - 1)) && k <= (1 << (w - 1)) - 1);
			/* v * 2^(7-w) is the real value in units of s_w: (k + 0.5) * 2^(8-w) */
			assert_true(ldexp(v[i], 7 - (int)w) == dref_weight_real(codes[i], w, 1.0));
		}
	}
}

static void check_quantize(unsigned a, int act_signed, struct rng *r)
{
	enum { N = 512 };
	float x[N];
	int16_t q[N];
	int32_t lo, hi, dlo, dhi;
	const float step = (float)(0.01 + rng_unit(r) * 0.5);

	bmx_ref_act_range(a, act_signed, &lo, &hi);
	dref_act_range(a, act_signed, &dlo, &dhi);
	assert_int_equal(lo, dlo);
	assert_int_equal(hi, dhi);

	for (int i = 0; i < N; i++) {
		double off = (rng_unit(r) - 0.5) * 0.6; /* well inside the rounding interval */

		x[i] = (float)((rng_int(r, lo - 3, hi + 3) + off) * step);
	}
	x[0] = NAN;
	x[1] = INFINITY;
	x[2] = -INFINITY;
	x[3] = 0.0f;
	bmx_ref_quantize(x, N, step, lo, hi, q);
	assert_int_equal(q[0], lo);
	assert_int_equal(q[1], hi);
	assert_int_equal(q[2], lo);
	for (int i = 3; i < N; i++)
		assert_int_equal(q[i], dref_code(x[i], step, lo, hi));
}

static void test_quantize(void **state)
{
	struct rng r = { 1 };

	(void)state;
	for (unsigned a = 2; a <= 8; a++)
		for (int sgn = 0; sgn <= 1; sgn++)
			check_quantize(a, sgn, &r);
}

/* Exact halves round to even: with a power-of-two step x * (1/step) is exact. */
static void test_quantize_half_even(void **state)
{
	const float x[] = { 0.5f * 0.25f,  1.5f * 0.25f,  2.5f * 0.25f,	 -0.5f * 0.25f,
			    -1.5f * 0.25f, -2.5f * 0.25f, 254.5f * 0.25f };
	const int16_t want[] = { 0, 2, 2, 0, -2, -2, 254 };
	int16_t q[7];

	(void)state;
	bmx_ref_quantize(x, 7, 0.25f, -128, 255, q);
	for (int i = 0; i < 7; i++)
		assert_int_equal(q[i], want[i]);
}

/* One layer's random parameters and input, sized for shape S. */
struct layer_case {
	size_t n_in, n_w, n_out, red;
	float *x, step, *s_w, *g, *beta, *m, *y;
	int8_t *codes;
	int16_t *q, *v;
	int32_t *acc;
	double *xd, *wd, *yd;
};

static void case_alloc(struct layer_case *c, const struct dshape *s, struct rng *r)
{
	c->red = (size_t)s->kh * s->kw * (s->in_c / s->groups);
	c->n_in = (size_t)s->batch * s->in_h * s->in_w * s->in_c;
	c->n_w = c->red * s->out_c;
	c->n_out = (size_t)s->batch * s->out_h * s->out_w * s->out_c;
	c->x = xcalloc(c->n_in, sizeof(float));
	c->q = xcalloc(c->n_in, sizeof(int16_t));
	c->xd = xcalloc(c->n_in, sizeof(double));
	c->codes = xcalloc(c->n_w, 1);
	c->v = xcalloc(c->n_w, sizeof(int16_t));
	c->wd = xcalloc(c->n_w, sizeof(double));
	c->s_w = xcalloc(s->out_c, sizeof(float));
	c->g = xcalloc(s->out_c, sizeof(float));
	c->beta = xcalloc(s->out_c, sizeof(float));
	c->m = xcalloc(s->out_c, sizeof(float));
	c->acc = xcalloc(c->n_out, sizeof(int32_t));
	c->y = xcalloc(c->n_out, sizeof(float));
	c->yd = xcalloc(c->n_out, sizeof(double));
	for (size_t i = 0; i < c->n_w; i++)
		c->codes[i] = (int8_t)rng_int(r, -128, 127);
	for (uint32_t o = 0; o < s->out_c; o++) {
		c->s_w[o] = (float)(0.001 + 0.02 * rng_unit(r));
		c->g[o] = (float)((rng_unit(r) < 0.5 ? -1 : 1) * (0.5 + 1.5 * rng_unit(r)));
		c->beta[o] = (float)(rng_unit(r) * 2 - 1);
	}
}

static void case_free(struct layer_case *c)
{
	free(c->x);
	free(c->q);
	free(c->xd);
	free(c->codes);
	free(c->v);
	free(c->wd);
	free(c->s_w);
	free(c->g);
	free(c->beta);
	free(c->m);
	free(c->acc);
	free(c->y);
	free(c->yd);
}

/* Random input near code multiples; quantize it with ops_ref and check the codes. */
static void case_quantize(struct layer_case *c, unsigned a, int act_signed, struct rng *r)
{
	int32_t lo, hi;

	c->step = (float)(0.02 + 0.3 * rng_unit(r));
	dref_act_range(a, act_signed, &lo, &hi);
	for (size_t i = 0; i < c->n_in; i++)
		c->x[i] =
			(float)((rng_int(r, lo - 1, hi + 1) + (rng_unit(r) - 0.5) * 0.5) * c->step);
	bmx_ref_quantize(c->x, c->n_in, c->step, lo, hi, c->q);
	for (size_t i = 0; i < c->n_in; i++)
		assert_int_equal(c->q[i], dref_code(c->x[i], c->step, lo, hi));
}

/* Check acc exactly against the double model's integer sum, then y against the real sum. */
static void case_check(struct layer_case *c, const struct dshape *s, unsigned w)
{
	uint32_t oc = s->out_c;
	double beta_max = 0;

	for (size_t i = 0; i < c->n_in; i++)
		c->xd[i] = c->q[i];
	for (size_t i = 0; i < c->n_w; i++)
		c->wd[i] = 2 * dref_weight_k(c->codes[i], w) + 1;
	dref_conv(s, c->xd, c->wd, c->yd);
	for (size_t i = 0; i < c->n_out; i++)
		if ((double)c->acc[i] != c->yd[i])
			fail_msg("acc %zu: got %d, want %.0f (w=%u)", i, c->acc[i], c->yd[i], w);

	for (size_t i = 0; i < c->n_in; i++)
		c->xd[i] = c->q[i] * (double)c->step;
	for (size_t i = 0; i < c->n_w; i++)
		c->wd[i] = dref_weight_real(c->codes[i], w, c->s_w[i / c->red]);
	dref_conv(s, c->xd, c->wd, c->yd);
	for (size_t i = 0; i < c->n_out; i++) {
		c->yd[i] = c->yd[i] * c->g[i % oc] + c->beta[i % oc];
		beta_max = fmax(beta_max, fabs(c->beta[i % oc]));
	}
	assert_close(c->y, c->yd, c->n_out, beta_max);
}

static void fold(struct layer_case *c, uint32_t oc, unsigned w)
{
	for (uint32_t o = 0; o < oc; o++)
		c->m[o] = (c->s_w[o] * ldexpf(1.0f, 7 - (int)w)) * c->g[o];
}

static void check_conv(const struct dshape *s, unsigned w, unsigned a, int act_signed,
		       struct rng *r)
{
	struct layer_case c;
	struct bmx_conv_shape cs = {
		.batch = s->batch,
		.in_h = s->in_h,
		.in_w = s->in_w,
		.in_c = s->in_c,
		.out_c = s->out_c,
		.kernel_h = s->kh,
		.kernel_w = s->kw,
		.stride_h = s->sh,
		.stride_w = s->sw,
		.pad_top = s->pt,
		.pad_left = s->pl,
		.pad_bottom = s->pb,
		.pad_right = s->pr,
		.groups = s->groups,
	};

	bmx_ref_conv_shape_finish(&cs);
	assert_int_equal(cs.out_h, s->out_h);
	assert_int_equal(cs.out_w, s->out_w);
	case_alloc(&c, s, r);
	case_quantize(&c, a, act_signed, r);
	bmx_ref_decode_weights(c.codes, c.n_w, w, c.v);
	bmx_ref_conv2d_acc(&cs, c.q, c.v, c.acc);
	fold(&c, s->out_c, w);
	bmx_ref_tbn_epilogue(c.acc, c.n_out / s->out_c, s->out_c, c.step, c.m, c.beta, c.y);
	case_check(&c, s, w);
	case_free(&c);
}

/* A random geometry: odd sizes, kernel up to 5, stride 1..3, pads below the kernel, groups. */
static struct dshape random_shape(struct rng *r)
{
	struct dshape s = { 0 };
	uint32_t cig = (uint32_t)rng_int(r, 1, 5), cog = (uint32_t)rng_int(r, 1, 4);

	s.groups = (uint32_t)rng_int(r, 1, 3);
	s.batch = rng_unit(r) < 0.5 ? 1 : 3;
	s.in_c = cig * s.groups;
	s.out_c = cog * s.groups;
	s.kh = (uint32_t)rng_int(r, 1, 5);
	s.kw = (uint32_t)rng_int(r, 1, 5);
	s.sh = (uint32_t)rng_int(r, 1, 3);
	s.sw = (uint32_t)rng_int(r, 1, 3);
	s.pt = (uint32_t)rng_int(r, 0, (int32_t)s.kh - 1);
	s.pb = (uint32_t)rng_int(r, 0, (int32_t)s.kh - 1);
	s.pl = (uint32_t)rng_int(r, 0, (int32_t)s.kw - 1);
	s.pr = (uint32_t)rng_int(r, 0, (int32_t)s.kw - 1);
	s.in_h = s.kh + (uint32_t)rng_int(r, 0, 8);
	s.in_w = s.kw + (uint32_t)rng_int(r, 0, 8);
	return s;
}

static void finish_shape(struct dshape *s)
{
	s->out_h = dref_out_dim(s->in_h, s->kh, s->sh, s->pt, s->pb);
	s->out_w = dref_out_dim(s->in_w, s->kw, s->sw, s->pl, s->pr);
}

/* batch, in_h, in_w, in_c, out_h, out_w (filled in), out_c, kh, kw, sh, sw, pt, pl, pb, pr, groups */
static const struct dshape conv_shapes[] = {
	{ 1, 7, 9, 3, 0, 0, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1 },
	{ 3, 8, 7, 4, 0, 0, 6, 3, 3, 2, 2, 0, 1, 1, 2, 2 },  /* stride 2, asymmetric pads */
	{ 3, 11, 5, 6, 0, 0, 6, 3, 3, 2, 2, 1, 1, 1, 1, 6 }, /* depthwise, stride 2 */
	{ 1, 5, 5, 8, 0, 0, 8, 5, 3, 1, 1, 2, 0, 1, 1, 8 },  /* depthwise 5x3 */
	{ 3, 6, 6, 5, 0, 0, 7, 1, 1, 1, 1, 0, 0, 0, 0, 1 },  /* pointwise */
	{ 1, 4, 13, 3, 0, 0, 4, 2, 4, 3, 2, 1, 0, 0, 3, 1 },
	{ 3, 3, 3, 12, 0, 0, 9, 3, 3, 1, 1, 0, 0, 0, 0, 3 },  /* groups 3, 1x1 output */
	{ 1, 28, 28, 1, 0, 0, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1 }, /* fmnist's first conv */
};

static void test_conv_all_bits(void **state)
{
	struct rng r = { 2 };

	(void)state;
	for (size_t i = 0; i < sizeof(conv_shapes) / sizeof(conv_shapes[0]) + 6; i++) {
		struct dshape s = i < sizeof(conv_shapes) / sizeof(conv_shapes[0])
					  ? conv_shapes[i]
					  : random_shape(&r);

		finish_shape(&s);
		for (unsigned w = 2; w <= 8; w++)
			for (unsigned a = 2; a <= 8; a++)
				check_conv(&s, w, a, (int)((w + a + i) & 1), &r);
	}
}

static void check_linear(uint32_t batch, uint32_t k, uint32_t n_out, unsigned w, unsigned a,
			 int act_signed, struct rng *r)
{
	struct dshape s = { batch, 1, 1, k, 1, 1, n_out, 1, 1, 1, 1, 0, 0, 0, 0, 1 };
	struct layer_case c;

	case_alloc(&c, &s, r);
	case_quantize(&c, a, act_signed, r);
	bmx_ref_decode_weights(c.codes, c.n_w, w, c.v);
	bmx_ref_linear_acc(batch, k, n_out, c.q, c.v, c.acc);
	fold(&c, n_out, w);
	bmx_ref_tbn_epilogue(c.acc, batch, n_out, c.step, c.m, c.beta, c.y);
	case_check(&c, &s, w);
	case_free(&c);
}

static void test_linear_all_bits(void **state)
{
	struct rng r = { 3 };

	(void)state;
	for (unsigned w = 2; w <= 8; w++)
		for (unsigned a = 2; a <= 8; a++) {
			check_linear(1, 37, 11, w, a, (int)(a & 1), &r);
			check_linear(3, 100, 10, w, a, (int)(w & 1), &r);
			check_linear(3, 1, 1, w, a, 0, &r);
		}
}

/* The epilogue's operations and their order, to the bit. */
static void test_epilogue_bits(void **state)
{
	struct rng r = { 4 };
	int32_t acc[64];
	float m[8], beta[8], y[64];

	(void)state;
	for (int i = 0; i < 64; i++)
		acc[i] = rng_int(&r, -20000000, 20000000); /* beyond 2^24: (float)acc rounds */
	for (int o = 0; o < 8; o++) {
		m[o] = (float)(rng_unit(&r) * 1e-3);
		beta[o] = (float)(rng_unit(&r) - 0.5);
	}
	bmx_ref_tbn_epilogue(acc, 8, 8, 0.137f, m, beta, y);
	for (int i = 0; i < 64; i++) {
		volatile float mult = 0.137f * m[i % 8];
		volatile float t = (float)acc[i] * mult;
		volatile float want = t + beta[i % 8];

		assert_memory_equal(&y[i], (const void *)&want, sizeof(float));
	}
}

static void check_pools(const struct dshape *s, struct rng *r)
{
	struct bmx_conv_shape cs = {
		.batch = s->batch,
		.in_h = s->in_h,
		.in_w = s->in_w,
		.in_c = s->in_c,
		.out_h = s->out_h,
		.out_w = s->out_w,
		.out_c = s->in_c,
		.kernel_h = s->kh,
		.kernel_w = s->kw,
		.stride_h = s->sh,
		.stride_w = s->sw,
		.pad_top = s->pt,
		.pad_left = s->pl,
		.pad_bottom = s->pb,
		.pad_right = s->pr,
		.groups = 1,
	};
	size_t n_in = (size_t)s->batch * s->in_h * s->in_w * s->in_c;
	size_t n_out = (size_t)s->batch * s->out_h * s->out_w * s->in_c;
	float *x = xcalloc(n_in, sizeof(float)), *y = xcalloc(n_out, sizeof(float));
	double *xd = xcalloc(n_in, sizeof(double)), *yd = xcalloc(n_out, sizeof(double));

	for (size_t i = 0; i < n_in; i++)
		xd[i] = x[i] = (float)(rng_unit(r) * 8 - 5);
	bmx_ref_maxpool(&cs, x, y);
	dref_maxpool(s, xd, yd);
	for (size_t i = 0; i < n_out; i++)
		assert_true(y[i] == yd[i]);
	bmx_ref_avgpool(&cs, x, y);
	dref_avgpool(s, xd, yd);
	assert_close(y, yd, n_out, 1.0);

	bmx_ref_global_avgpool(s->batch, s->in_h, s->in_w, s->in_c, x, y);
	dref_global_avgpool(s->batch, s->in_h * s->in_w, s->in_c, xd, yd);
	assert_close(y, yd, (size_t)s->batch * s->in_c, 1.0);
	free(x);
	free(y);
	free(xd);
	free(yd);
}

static void test_pools(void **state)
{
	struct rng r = { 5 };

	(void)state;
	for (int i = 0; i < 40; i++) {
		struct dshape s = random_shape(&r);

		s.out_c = s.in_c;
		finish_shape(&s);
		check_pools(&s, &r);
	}
}

static void test_elementwise(void **state)
{
	enum { N = 257 };
	struct rng r = { 6 };
	float a[N], b[N], y[N];

	(void)state;
	for (int i = 0; i < N; i++) {
		a[i] = (float)(rng_unit(&r) * 16 - 8);
		b[i] = (float)(rng_unit(&r) * 16 - 8);
	}
	bmx_ref_add(a, b, N, y);
	for (int i = 0; i < N; i++)
		assert_true(y[i] == (float)((double)a[i] + (double)b[i]));
	bmx_ref_relu(a, N, y);
	for (int i = 0; i < N; i++)
		assert_true(y[i] == (a[i] > 0 ? a[i] : 0.0f));
	bmx_ref_relu6(a, N, y);
	for (int i = 0; i < N; i++)
		assert_true(y[i] == (a[i] > 6 ? 6.0f : a[i] > 0 ? a[i] : 0.0f));
	a[0] = NAN;
	bmx_ref_relu(a, 1, y);
	assert_true(y[0] == 0.0f);
	bmx_ref_add(a, b, N, a); /* in place */
	assert_true(isnan(a[0]));
}

static void test_softmax_argmax(void **state)
{
	enum { B = 3, N = 10 };
	struct rng r = { 7 };
	float x[B * N], y[B * N];
	double xd[N], yd[N];

	(void)state;
	for (int i = 0; i < B * N; i++)
		x[i] = (float)(rng_unit(&r) * 40 - 20);
	bmx_ref_softmax(B, N, x, y);
	for (int b = 0; b < B; b++) {
		double sum = 0;

		for (int i = 0; i < N; i++)
			xd[i] = x[b * N + i];
		dref_softmax(N, xd, yd);
		assert_close(y + b * N, yd, N, 1.0);
		for (int i = 0; i < N; i++)
			sum += y[b * N + i];
		assert_true(fabs(sum - 1) < 1e-5);
		assert_int_equal(bmx_ref_argmax(y + b * N, N), bmx_ref_argmax(x + b * N, N));
	}
	const float ties[] = { 1, 3, 3, 2 }, nans[] = { NAN, -1, NAN, 5, 5 };
	assert_int_equal(bmx_ref_argmax(ties, 4), 1);
	assert_int_equal(bmx_ref_argmax(nans, 5), 3);
	assert_int_equal(bmx_ref_argmax(nans, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_weight_decode),
		cmocka_unit_test(test_quantize),
		cmocka_unit_test(test_quantize_half_even),
		cmocka_unit_test(test_conv_all_bits),
		cmocka_unit_test(test_linear_all_bits),
		cmocka_unit_test(test_epilogue_bits),
		cmocka_unit_test(test_pools),
		cmocka_unit_test(test_elementwise),
		cmocka_unit_test(test_softmax_argmax),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
