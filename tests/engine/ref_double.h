/* SPDX-License-Identifier: MIT */
/*
 * ref_double.h — an independent double-precision implementation of the .bmx operations, written
 * from the math of docs/model-format.md and not from ops_ref.c, for the engine tests to compare
 * against. It also holds the tests' seeded random number generator.
 */
#ifndef BITMIX_TEST_REF_DOUBLE_H
#define BITMIX_TEST_REF_DOUBLE_H

#include <stddef.h>
#include <stdint.h>

/* splitmix64: reproducible, seeded per test. */
struct rng {
	uint64_t s;
};

uint64_t rng_next(struct rng *r);
double rng_unit(struct rng *r);				/* [0, 1) */
int32_t rng_int(struct rng *r, int32_t lo, int32_t hi); /* [lo, hi] */

/* Window geometry: batch, input, output, kernel, stride, pads (top, left, bottom, right), groups. */
struct dshape {
	uint32_t batch, in_h, in_w, in_c, out_h, out_w, out_c;
	uint32_t kh, kw, sh, sw, pt, pl, pb, pr, groups;
};

/* floor((in + p0 + p1 - k) / s) + 1 */
uint32_t dref_out_dim(uint32_t in, uint32_t k, uint32_t s, uint32_t p0, uint32_t p1);

/* The w-bit integer k = floor(c / 2^(8-w)) of an 8-bit code, and the real value of the weight. */
int32_t dref_weight_k(int8_t c, unsigned w);
double dref_weight_real(int8_t c, unsigned w, double s_w); /* (k + 0.5) * s_w * 2^(8-w) */

/* The code range of a-bit activations, and the code of x: clamp(round-half-even(x / step)). */
void dref_act_range(unsigned a, int act_signed, int32_t *lo, int32_t *hi);
int32_t dref_code(double x, double step, int32_t lo, int32_t hi);

/* y[n][oh][ow][o] = sum over the window and o's group of wt[o][kh][kw][ic] * x[...]; OHWI. */
void dref_conv(const struct dshape *s, const double *x, const double *wt, double *y);
void dref_maxpool(const struct dshape *s, const double *x, double *y);
void dref_avgpool(const struct dshape *s, const double *x, double *y);
void dref_global_avgpool(uint32_t batch, uint32_t hw, uint32_t c, const double *x, double *y);
void dref_softmax(uint32_t n, const double *x, double *y);

#endif
