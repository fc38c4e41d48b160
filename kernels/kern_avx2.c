/* SPDX-License-Identifier: MIT */
/*
 * kern_avx2.c — the AVX2 path: the same bit-plane layout and exact identity as the AVX-512
 * path (kern.h), for x86-64 CPUs without AVX-512. Plane words are expanded to byte masks with a
 * byte shuffle and compare; bytes are widened to int16 and multiplied with vpmaddwd (vpmaddubsw
 * would saturate: 2 * 255 * 128 > 32767), accumulating in int32.
 *
 * Compiled with function-level target attributes. Memory: activation rows are read in whole
 * 32-byte blocks (rows are padded to kp); epilogue tails go through small stack arrays, so no
 * byte past the last channel is read from the per-channel tables or written to the output.
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "kern.h"

#define TARGET __attribute__((target("avx2,fma")))
#define INLINE TARGET static inline __attribute__((always_inline))

/* 0xff in byte i where bit i of M is set. */
INLINE __m256i bits_to_bytes(uint32_t m)
{
	const __m256i pick = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
					      2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
	const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
	__m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)m), pick);

	return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

/* Signed bytes b of positions [32 * HALF, 32 * HALF + 32) of the block at P. */
INLINE __m256i rebuild(const uint64_t *p, size_t stride, unsigned w, unsigned half)
{
	__m256i b = _mm256_and_si256(bits_to_bytes((uint32_t)(p[0] >> (32 * half))),
				     _mm256_set1_epi8((char)0x80));

	for (unsigned j = 1; j < w; j++)
		b = _mm256_or_si256(b, _mm256_and_si256(bits_to_bytes((uint32_t)(p[j * stride] >> (32 * half))),
							_mm256_set1_epi8((char)(0x80 >> j))));
	return b;
}

/* ACC + sum of u * b over 32 bytes (widened to int16, pairs summed in int32). */
INLINE __m256i dot32(__m256i acc, __m256i u, __m256i b)
{
	__m256i lo = _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(u)),
				       _mm256_cvtepi8_epi16(_mm256_castsi256_si128(b)));
	__m256i hi = _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_extracti128_si256(u, 1)),
				       _mm256_cvtepi8_epi16(_mm256_extracti128_si256(b, 1)));

	return _mm256_add_epi32(acc, _mm256_add_epi32(lo, hi));
}

INLINE __m128i reduce4(__m256i a, __m256i b, __m256i c, __m256i d)
{
	__m256i ab = _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
	__m256i cd = _mm256_add_epi32(_mm256_unpacklo_epi32(c, d), _mm256_unpackhi_epi32(c, d));
	__m256i s = _mm256_add_epi32(_mm256_unpacklo_epi64(ab, cd), _mm256_unpackhi_epi64(ab, cd));

	return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}

/* The epilogue of channels [n, n + 4) of row R, as in kern_avx512.c. */
INLINE void epilogue4(const struct kern_gemm *g, __m128i d, uint32_t r, uint32_t n)
{
	const struct kern_epilogue *ep = &g->ep;
	const uint32_t left = g->w->n - n < 4 ? g->w->n - n : 4;
	const __m128i sb = _mm_loadu_si128((const __m128i *)(g->w->sum_b + g->w_bits * g->w->n_pad + n));
	float m[4] = { 0 }, beta[4] = { 0 }, y[4];
	__m128i t = _mm_sub_epi32(d, _mm_mullo_epi32(_mm_set1_epi32(g->off), sb));
	__m128 v;

	memcpy(m, ep->m + n, left * sizeof(float));
	memcpy(beta, ep->beta + n, left * sizeof(float));
	t = _mm_sra_epi32(t, _mm_cvtsi32_si128((int)(8 - g->w_bits)));
	t = _mm_add_epi32(_mm_add_epi32(t, t), _mm_set1_epi32(g->sum_q[r]));
	v = _mm_mul_ps(_mm_cvtepi32_ps(t), _mm_mul_ps(_mm_set1_ps(ep->step), _mm_loadu_ps(m)));
	v = _mm_add_ps(v, _mm_loadu_ps(beta));
	if (ep->relu)
		v = _mm_max_ps(v, _mm_setzero_ps());
	_mm_storeu_ps(y, v);
	memcpy(ep->y + r * ep->ldy + n, y, left * sizeof(float));
}

/* sum of u * b for channel O over the row A (8 int32 partial sums). */
INLINE __m256i gemv_row(const struct kern_gemm *g, const uint8_t *a, uint32_t o, unsigned w)
{
	const struct kern_planes *pl = g->w;
	const uint32_t words = pl->kp / KERN_KBLOCK;
	const uint64_t *p = pl->words + (size_t)o * words;
	__m256i acc = _mm256_setzero_si256();

	for (uint32_t t = 0; t < words; t++) {
		acc = dot32(acc, _mm256_loadu_si256((const __m256i *)(a + t * 64)),
			    rebuild(p + t, pl->plane_words, w, 0));
		acc = dot32(acc, _mm256_loadu_si256((const __m256i *)(a + t * 64 + 32)),
			    rebuild(p + t, pl->plane_words, w, 1));
	}
	return acc;
}

INLINE void gemv(const struct kern_gemm *g, uint32_t n0, uint32_t n1, unsigned w)
{
	for (uint32_t r = 0; r < g->m; r++)
		for (uint32_t n = n0; n < n1; n += 4) {
			const uint8_t *a = g->a + r * g->lda;

			epilogue4(g, reduce4(gemv_row(g, a, n, w), gemv_row(g, a, n + 1, w),
					     gemv_row(g, a, n + 2, w), gemv_row(g, a, n + 3, w)), r, n);
		}
}

TARGET static void tile4x4(const struct kern_gemm *g, const uint8_t *const rows[4],
			   const int8_t *b, uint32_t r0, uint32_t n)
{
	const uint32_t kp = g->w->kp;
	__m256i acc[4][4];

	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4; j++)
			acc[i][j] = _mm256_setzero_si256();
	for (uint32_t t = 0; t < kp; t += 32) {
		__m256i bj[4];

		for (int j = 0; j < 4; j++)
			bj[j] = _mm256_load_si256((const __m256i *)(b + (size_t)j * kp + t));
		for (int i = 0; i < 4; i++) {
			__m256i a = _mm256_loadu_si256((const __m256i *)(rows[i] + t));

			for (int j = 0; j < 4; j++)
				acc[i][j] = dot32(acc[i][j], a, bj[j]);
		}
	}
	for (uint32_t i = 0; i < 4 && r0 + i < g->m; i++)
		epilogue4(g, reduce4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]), r0 + i, n);
}

INLINE void gemm(const struct kern_gemm *g, uint32_t n0, uint32_t n1, int8_t *panel, unsigned w)
{
	const struct kern_planes *pl = g->w;
	const uint32_t words = pl->kp / KERN_KBLOCK;

	for (uint32_t n = n0; n < n1; n += KERN_PANEL) {
		const uint32_t np = n1 - n < KERN_PANEL ? n1 - n : KERN_PANEL;

		for (uint32_t c = 0; c < np; c++)
			for (uint32_t t = 0; t < words; t++)
				for (unsigned h = 0; h < 2; h++)
					_mm256_store_si256((__m256i *)(panel + (size_t)c * pl->kp + t * 64 + h * 32),
							   rebuild(pl->words + (size_t)(n + c) * words + t,
								   pl->plane_words, w, h));
		for (uint32_t r = 0; r < g->m; r += KERN_MR) {
			const uint8_t *rows[4];

			for (uint32_t i = 0; i < 4; i++)
				rows[i] = g->a + (r + i < g->m ? r + i : g->m - 1) * g->lda;
			for (uint32_t c = 0; c < np; c += KERN_NR)
				tile4x4(g, rows, panel + (size_t)c * pl->kp, r, n + c);
		}
	}
}

#define FOR_BITS(X) X(2) X(3) X(4) X(5) X(6) X(7) X(8)
#define DEFINE(W)                                                                            \
	TARGET static void gemm_w##W(const struct kern_gemm *g, uint32_t n0, uint32_t n1,      \
				     int8_t *panel)                                             \
	{                                                                                      \
		if (g->m < KERN_MR)                                                            \
			gemv(g, n0, n1, W);                                                    \
		else                                                                           \
			gemm(g, n0, n1, panel, W);                                             \
	}
FOR_BITS(DEFINE)
#undef DEFINE

static void gemm_any(const struct kern_gemm *g, uint32_t n0, uint32_t n1, int8_t *panel)
{
	static void (*const by_bits[9])(const struct kern_gemm *, uint32_t, uint32_t, int8_t *) = {
		[2] = gemm_w2, [3] = gemm_w3, [4] = gemm_w4, [5] = gemm_w5,
		[6] = gemm_w6, [7] = gemm_w7, [8] = gemm_w8,
	};

	by_bits[g->w_bits](g, n0, n1, panel);
}

/* Epilogue of 8 channels [c, c + 8) of pixel R (the tail through stack arrays). */
INLINE void epilogue8(const struct kern_epilogue *ep, __m256i acc, uint32_t r, uint32_t c,
		      uint32_t channels)
{
	const uint32_t left = channels - c < 8 ? channels - c : 8;
	float m[8] = { 0 }, beta[8] = { 0 }, y[8];
	__m256 v;

	memcpy(m, ep->m + c, left * sizeof(float));
	memcpy(beta, ep->beta + c, left * sizeof(float));
	v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_mul_ps(_mm256_set1_ps(ep->step), _mm256_loadu_ps(m)));
	v = _mm256_add_ps(v, _mm256_loadu_ps(beta));
	if (ep->relu)
		v = _mm256_max_ps(v, _mm256_setzero_ps());
	_mm256_storeu_ps(y, v);
	memcpy(ep->y + r * ep->ldy + c, y, left * sizeof(float));
}

static void taps_inside(uint32_t out, uint32_t stride, uint32_t pad, uint32_t kernel, uint32_t in,
			uint32_t *k0, uint32_t *k1)
{
	const int64_t start = (int64_t)out * stride - pad;
	int64_t lo = start < 0 ? -start : 0, hi = (int64_t)in - start;

	hi = hi > kernel ? kernel : hi;
	*k0 = (uint32_t)lo;
	*k1 = (uint32_t)(hi < lo ? lo : hi);
}

/* acc of 8 channels [c, c + 8) of one pixel over its in-bounds taps. */
INLINE __m256i dw_pixel8(const struct kern_depthwise *d, const uint8_t *u, uint32_t oh, uint32_t ow,
			 uint32_t c, const uint32_t k[4])
{
	const struct bmx_conv_shape *s = d->s;
	const uint32_t C = s->in_c;
	const __m128i shift = _mm_cvtsi32_si128((int)(8 - d->w_bits));
	__m256i acc = _mm256_setzero_si256();

	for (uint32_t kh = k[0]; kh < k[1]; kh++)
		for (uint32_t kw = k[2]; kw < k[3]; kw++) {
			const size_t ih = (size_t)oh * s->stride_h + kh - s->pad_top;
			const size_t iw = (size_t)ow * s->stride_w + kw - s->pad_left;
			const uint8_t *up = u + (ih * s->in_w + iw) * C + c;
			const int8_t *wp = d->w->codes + (size_t)(kh * s->kernel_w + kw) * d->w->c_pad + c;
			uint8_t tail[8] = { 0 };
			__m256i q, v;

			if (C - c < 8) {
				memcpy(tail, up, C - c);
				up = tail;
			}
			q = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)up)),
					     _mm256_set1_epi32(d->off));
			v = _mm256_sra_epi32(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)wp)), shift);
			v = _mm256_or_si256(_mm256_slli_epi32(v, 1), _mm256_set1_epi32(1));
			acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(q, v));
		}
	return acc;
}

TARGET static void depthwise(const struct kern_depthwise *d, uint32_t r0, uint32_t r1)
{
	const struct bmx_conv_shape *s = d->s;
	const uint32_t C = s->in_c, per_sample = s->out_h * s->out_w;

	for (uint32_t r = r0; r < r1; r++) {
		const uint32_t n = r / per_sample, oh = r % per_sample / s->out_w, ow = r % s->out_w;
		const uint8_t *u = d->u + (size_t)n * s->in_h * s->in_w * C;
		uint32_t k[4];

		taps_inside(oh, s->stride_h, s->pad_top, s->kernel_h, s->in_h, &k[0], &k[1]);
		taps_inside(ow, s->stride_w, s->pad_left, s->kernel_w, s->in_w, &k[2], &k[3]);
		for (uint32_t c = 0; c < C; c += 8)
			epilogue8(&d->ep, dw_pixel8(d, u, oh, ow, c, k), r, c, C);
	}
}

const struct kern_ops kern_ops_avx2 = {
	.path = BMX_KERNELS_AVX2,
	.gemm = gemm_any,
	.depthwise = depthwise,
	.quantize = kern_quantize_portable,
};
#endif
