/* SPDX-License-Identifier: MIT */
/*
 * ops_ref.c — the portable reference kernels (ops_ref.h): plain loops that follow the
 * "Arithmetic" section of docs/model-format.md statement by statement, so that every float
 * result is defined to the bit (built with -ffp-contract=off; the order of float operations
 * below is the normative one).
 *
 * Memory: tensors are dense NHWC (conv weights OHWI) with no alignment requirement; inputs and
 * outputs must not overlap, except that add/relu/relu6 may run in place.
 */
#include <math.h>

#include "ops_ref.h"

void bmx_ref_act_range(unsigned a_bits, int act_signed, int32_t *lo, int32_t *hi)
{
	if (act_signed) {
		*lo = -(INT32_C(1) << (a_bits - 1));
		*hi = (INT32_C(1) << (a_bits - 1)) - 1;
	} else {
		*lo = 0;
		*hi = (INT32_C(1) << a_bits) - 1;
	}
}

void bmx_ref_decode_weights(const int8_t *codes, size_t n, unsigned w_bits, int16_t *v)
{
	for (size_t i = 0; i < n; i++)
		v[i] = bmx_ref_weight_value(codes[i], w_bits);
}

void bmx_ref_quantize(const float *x, size_t n, float step, int32_t lo, int32_t hi, int16_t *q)
{
	const float inv = 1.0f / step;
	const float flo = (float)lo, fhi = (float)hi;

	for (size_t i = 0; i < n; i++) {
		float t = x[i] * inv;

		t = fmaxf(t, flo); /* NaN -> lo */
		t = fminf(t, fhi);
		q[i] = (int16_t)rintf(t);
	}
}

uint32_t bmx_ref_out_dim(uint32_t in, uint32_t kernel, uint32_t stride, uint32_t pad0,
			 uint32_t pad1)
{
	uint64_t span = (uint64_t)in + pad0 + pad1;

	if (stride == 0 || span < kernel)
		return 0;
	return (uint32_t)((span - kernel) / stride + 1);
}

void bmx_ref_conv_shape_finish(struct bmx_conv_shape *s)
{
	s->out_h = bmx_ref_out_dim(s->in_h, s->kernel_h, s->stride_h, s->pad_top, s->pad_bottom);
	s->out_w = bmx_ref_out_dim(s->in_w, s->kernel_w, s->stride_w, s->pad_left, s->pad_right);
}

/* The kernel taps [*k0, *k1) of output position OUT that land inside an input of size IN. */
static void window_range(uint32_t out, uint32_t stride, uint32_t pad, uint32_t kernel, uint32_t in,
			 uint32_t *k0, uint32_t *k1)
{
	int64_t start = (int64_t)out * stride - pad;
	int64_t lo = start < 0 ? -start : 0;
	int64_t hi = (int64_t)in - start;

	if (hi > kernel)
		hi = kernel;
	if (hi < lo)
		hi = lo;
	*k0 = (uint32_t)lo;
	*k1 = (uint32_t)hi;
}

/* sum_i a[i] * b[i], exact in int32 (the loader caps n at 32768 and |a * b| at 255 * 255). */
static int32_t dot_i16(const int16_t *a, const int16_t *b, uint32_t n)
{
	int32_t sum = 0;

	for (uint32_t i = 0; i < n; i++)
		sum += (int32_t)a[i] * b[i];
	return sum;
}

/* One output position (n, oh, ow) for every output channel; Q points at sample n. */
static void conv2d_acc_pixel(const struct bmx_conv_shape *s, const int16_t *q, const int16_t *v,
			     uint32_t oh, uint32_t ow, int32_t *acc)
{
	const uint32_t cin_g = s->in_c / s->groups, cout_g = s->out_c / s->groups;
	const int64_t ih0 = (int64_t)oh * s->stride_h - s->pad_top;
	const int64_t iw0 = (int64_t)ow * s->stride_w - s->pad_left;
	uint32_t kh0, kh1, kw0, kw1;

	window_range(oh, s->stride_h, s->pad_top, s->kernel_h, s->in_h, &kh0, &kh1);
	window_range(ow, s->stride_w, s->pad_left, s->kernel_w, s->in_w, &kw0, &kw1);

	for (uint32_t o = 0; o < s->out_c; o++) {
		const uint32_t g = o / cout_g;
		int32_t sum = 0;

		for (uint32_t kh = kh0; kh < kh1; kh++) {
			for (uint32_t kw = kw0; kw < kw1; kw++) {
				size_t pix = (size_t)(ih0 + kh) * s->in_w + (size_t)(iw0 + kw);
				const int16_t *qp = q + pix * s->in_c + (size_t)g * cin_g;
				const int16_t *vp =
					v +
					(((size_t)o * s->kernel_h + kh) * s->kernel_w + kw) * cin_g;

				sum += dot_i16(vp, qp, cin_g);
			}
		}
		acc[o] = sum;
	}
}

void bmx_ref_conv2d_acc(const struct bmx_conv_shape *s, const int16_t *q, const int16_t *v,
			int32_t *acc)
{
	const size_t in_sample = (size_t)s->in_h * s->in_w * s->in_c;

	for (uint32_t n = 0; n < s->batch; n++) {
		const int16_t *qn = q + n * in_sample;

		for (uint32_t oh = 0; oh < s->out_h; oh++)
			for (uint32_t ow = 0; ow < s->out_w; ow++) {
				conv2d_acc_pixel(s, qn, v, oh, ow, acc);
				acc += s->out_c;
			}
	}
}

void bmx_ref_linear_acc(uint32_t batch, uint32_t k, uint32_t n_out, const int16_t *q,
			const int16_t *v, int32_t *acc)
{
	for (uint32_t n = 0; n < batch; n++) {
		const int16_t *qn = q + (size_t)n * k;

		for (uint32_t o = 0; o < n_out; o++) {
			acc[(size_t)n * n_out + o] = dot_i16(v + (size_t)o * k, qn, k);
		}
	}
}

void bmx_ref_tbn_epilogue(const int32_t *acc, size_t n_pix, uint32_t c, float step, const float *m,
			  const float *beta, float *y)
{
	for (size_t p = 0; p < n_pix; p++) {
		for (uint32_t o = 0; o < c; o++) {
			const float mult = step * m[o];
			float t = (float)acc[o] * mult;

			y[o] = t + beta[o];
		}
		acc += c;
		y += c;
	}
}

/* Pools: one output channel vector per (n, oh, ow); AVERAGE picks avgpool over maxpool. */
static void pool_pixel(const struct bmx_conv_shape *s, const float *x, uint32_t oh, uint32_t ow,
		       int average, float *y)
{
	const float area = (float)(s->kernel_h * s->kernel_w);
	const int64_t ih0 = (int64_t)oh * s->stride_h - s->pad_top;
	const int64_t iw0 = (int64_t)ow * s->stride_w - s->pad_left;

	for (uint32_t c = 0; c < s->in_c; c++) {
		float acc = average ? 0.0f : -INFINITY;

		for (uint32_t kh = 0; kh < s->kernel_h; kh++) {
			for (uint32_t kw = 0; kw < s->kernel_w; kw++) {
				int64_t ih = ih0 + kh, iw = iw0 + kw;
				int inside = ih >= 0 && ih < s->in_h && iw >= 0 && iw < s->in_w;
				float val;

				if (average) {
					val = inside ? x[((size_t)ih * s->in_w + (size_t)iw) *
								 s->in_c +
							 c]
						     : 0.0f;
					acc = acc + val;
				} else if (inside) {
					val = x[((size_t)ih * s->in_w + (size_t)iw) * s->in_c + c];
					if (val > acc)
						acc = val;
				}
			}
		}
		y[c] = average ? acc / area : acc;
	}
}

static void pool(const struct bmx_conv_shape *s, const float *x, int average, float *y)
{
	const size_t in_sample = (size_t)s->in_h * s->in_w * s->in_c;

	for (uint32_t n = 0; n < s->batch; n++)
		for (uint32_t oh = 0; oh < s->out_h; oh++)
			for (uint32_t ow = 0; ow < s->out_w; ow++) {
				pool_pixel(s, x + n * in_sample, oh, ow, average, y);
				y += s->in_c;
			}
}

void bmx_ref_maxpool(const struct bmx_conv_shape *s, const float *x, float *y)
{
	pool(s, x, 0, y);
}

void bmx_ref_avgpool(const struct bmx_conv_shape *s, const float *x, float *y)
{
	pool(s, x, 1, y);
}

void bmx_ref_global_avgpool(uint32_t batch, uint32_t h, uint32_t w, uint32_t c, const float *x,
			    float *y)
{
	const size_t hw = (size_t)h * w;
	const float area = (float)hw;

	for (uint32_t n = 0; n < batch; n++) {
		const float *xn = x + n * hw * c;

		for (uint32_t ch = 0; ch < c; ch++) {
			float sum = 0.0f;

			for (size_t p = 0; p < hw; p++)
				sum = sum + xn[p * c + ch];
			y[(size_t)n * c + ch] = sum / area;
		}
	}
}

void bmx_ref_add(const float *a, const float *b, size_t n, float *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = a[i] + b[i];
}

/*
 * max(x, 0) as docs/model-format.md defines it: +0 for -0 and for NaN. Written out rather than
 * fmaxf(): IEEE's maxNum leaves the sign of a zero result open, and clang's fmaxf() returns -0
 * for fmaxf(-0, 0) where glibc's returns +0, so the oracle would depend on the compiler.
 */
static inline float relu(float x)
{
	return x > 0.0f ? x : 0.0f;
}

void bmx_ref_relu(const float *x, size_t n, float *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = relu(x[i]);
}

void bmx_ref_relu6(const float *x, size_t n, float *y)
{
	for (size_t i = 0; i < n; i++) {
		float t = relu(x[i]);

		y[i] = t < 6.0f ? t : 6.0f;
	}
}

void bmx_ref_softmax(uint32_t batch, uint32_t n, const float *x, float *y)
{
	for (uint32_t b = 0; b < batch; b++, x += n, y += n) {
		float max = -INFINITY, sum = 0.0f;

		for (uint32_t i = 0; i < n; i++)
			if (x[i] > max)
				max = x[i];
		for (uint32_t i = 0; i < n; i++) {
			y[i] = expf(x[i] - max);
			sum = sum + y[i];
		}
		for (uint32_t i = 0; i < n; i++)
			y[i] = y[i] / sum;
	}
}

uint32_t bmx_ref_argmax(const float *x, uint32_t n)
{
	uint32_t best = 0;

	for (uint32_t i = 1; i < n; i++)
		if (x[i] > x[best] || (x[best] != x[best] && x[i] == x[i]))
			best = i;
	return best;
}
