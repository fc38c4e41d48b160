/* SPDX-License-Identifier: MIT */
/*
 * kern_avx2_inline.h — the pieces of the AVX2 path that its GEMM kernels share (kern_avx2.c:
 * rebuilt bytes and the GEMV by table lookup; kern_avx2_lut.c: the GEMM by table lookup at low
 * bits): the fused epilogue's per-channel constants and its store, and where a row's
 * activations start (im2col rows, or a convolution window read in place). Included by those
 * files only; every function is always inlined into their target-attributed code.
 */
#ifndef BITMIX_KERN_AVX2_INLINE_H
#define BITMIX_KERN_AVX2_INLINE_H

#include <immintrin.h>
#include <string.h>

#include "kern.h"

#define TARGET __attribute__((target("avx2,fma")))
#define INLINE TARGET static inline __attribute__((always_inline))

/* All-ones in the first LEFT (< 8 keeps all) int32 lanes. */
INLINE __m256i keep8(uint32_t left)
{
	const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);

	return _mm256_cmpgt_epi32(_mm256_set1_epi32(left >= 8 ? 8 : (int)left), idx);
}

/*
 * The epilogue's per-channel constants for channels [n, n + 8): off * sum_b, step * m[o] and
 * beta, loaded once per panel rather than once per row (the stem's 12-byte rows spent most of
 * their time on them), tails through masked loads.
 */
struct ep8 {
	__m256i osb, keep;
	__m256 mult, beta;
	__m128i shift; /* 8 - w for D = sum u b; 0 for D = sum u k (K_VALUED) */
	uint32_t left; /* real channels, 0..8 */
};

/*
 * K_VALUED: the kernel summed u * k rather than u * b = u * k * 2^(8-w); then
 * sum q k = D - off * (sum b >> (8 - w)), the same value (sum b is a multiple of 2^(8-w)).
 */
INLINE void ep8_init(const struct kern_gemm *g, uint32_t n, struct ep8 *c, int k_valued)
{
	const struct kern_epilogue *ep = &g->ep;
	const __m128i shift = _mm_cvtsi32_si128((int)(8 - g->w_bits));
	const int32_t *sum_b = g->w->sum_b + g->w_bits * g->w->n_pad + n;
	__m256i sb = _mm256_load_si256((const __m256i *)(const void *)sum_b);

	if (k_valued)
		sb = _mm256_sra_epi32(sb, shift);
	c->shift = k_valued ? _mm_setzero_si128() : shift;
	c->left = g->w->n > n ? (g->w->n - n < 8 ? g->w->n - n : 8) : 0;
	c->keep = keep8(c->left);
	c->osb = _mm256_mullo_epi32(_mm256_set1_epi32(g->off), sb);
	c->mult = _mm256_mul_ps(_mm256_set1_ps(ep->step), _mm256_maskload_ps(ep->m + n, c->keep));
	c->beta = _mm256_maskload_ps(ep->beta + n, c->keep);
}

/* acc from D for channels [n, n + 8) of row R, the TBN affine, ReLU, store (masked in tails). */
INLINE void epilogue8(const struct kern_gemm *g, const struct ep8 *c, __m256i d, uint32_t r,
		      uint32_t n)
{
	const struct kern_epilogue *ep = &g->ep;
	float *y = ep->y + r * ep->ldy + n;
	__m256i t = _mm256_sub_epi32(d, c->osb);
	__m256 v;

	if (!c->left)
		return;
	t = _mm256_sra_epi32(t, c->shift);
	t = _mm256_add_epi32(_mm256_add_epi32(t, t), _mm256_set1_epi32(g->sum_q[r]));
	v = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(t), c->mult), c->beta);
	if (ep->relu)
		v = _mm256_max_ps(v, _mm256_setzero_ps());
	if (c->left == 8)
		_mm256_storeu_ps(y, v);
	else
		_mm256_maskstore_ps(y, c->keep, v);
}

/*
 * The first tap of each of a direct convolution's rows [r0, r0 + COUNT) in its padded input
 * (rows past m repeat the last one); tap (kh, kw) is (kh * padded width + kw) * in_c bytes
 * further. Else the rows' starts in A.
 */
INLINE void rows_of(const struct kern_gemm *g, uint32_t r0, unsigned count, const uint8_t **first)
{
	const struct bmx_conv_shape *s = g->direct ? g->direct->s : NULL;

	for (uint32_t i = 0; i < count; i++) {
		const uint32_t ri = r0 + i < g->m ? r0 + i : g->m - 1;

		if (s) {
			const uint32_t per_sample = s->out_h * s->out_w, r = g->direct->row0 + ri;
			const uint32_t n = r / per_sample, oh = r % per_sample / s->out_w,
				       ow = r % s->out_w;
			const size_t ph = s->in_h + s->pad_top + s->pad_bottom;
			const size_t pw = s->in_w + s->pad_left + s->pad_right;

			first[i] = g->direct->u + ((n * ph + (size_t)oh * s->stride_h) * pw +
						   (size_t)ow * s->stride_w) *
							  s->in_c;
		} else {
			first[i] = g->a + ri * g->lda;
		}
	}
}

#endif
