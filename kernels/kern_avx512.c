/* SPDX-License-Identifier: MIT */
/*
 * kern_avx512.c — the AVX-512 path (BW, VL, VNNI): weights are rebuilt from their bit-planes
 * into signed bytes with one masked byte add per plane (a 64-bit plane word is a mask
 * register), then multiplied with vpdpbusd against the unsigned activation bytes. GEMV streams
 * the planes row by row (w sequential streams, software-prefetched); GEMM rebuilds a panel of
 * KERN_PANEL channels once and reuses it over every row. Epilogues run on the int32 results in
 * registers. The identity that makes this exact is in kern.h.
 *
 * Compiled with function-level target attributes, so the file builds on any x86-64 compiler
 * flags and runs only where bmx_kernels_supported(BMX_KERNELS_AVX512). Memory: activation rows
 * are read in whole 64-byte blocks (rows are padded to kp); weights are 64-byte aligned; the
 * outputs are written with masked stores, so no tail is written past the last channel.
 */
#if defined(__x86_64__)
#include <immintrin.h>

#include "kern.h"

#define TARGET __attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")))
#define INLINE TARGET static inline __attribute__((always_inline))

/* The signed bytes b of one 64-position block at W bits; P points at plane 0's word. */
INLINE __m512i rebuild(const uint64_t *p, size_t stride, unsigned w)
{
	__m512i b = _mm512_maskz_mov_epi8(_cvtu64_mask64(p[0]), _mm512_set1_epi8((char)0x80));

	for (unsigned j = 1; j < w; j++)
		b = _mm512_mask_add_epi8(b, _cvtu64_mask64(p[j * stride]), b,
					 _mm512_set1_epi8((char)(0x80 >> j)));
	return b;
}

/* The four lane sums of A, B, C, D as one vector [sum a, sum b, sum c, sum d]. */
INLINE __m128i reduce4(__m512i a, __m512i b, __m512i c, __m512i d)
{
	__m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
	__m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
	__m512i s = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
	__m256i h = _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));

	return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/* acc from D for channels [n, n + 4) of row R, the TBN affine, ReLU, masked store. */
INLINE void epilogue4(const struct kern_gemm *g, __m128i d, uint32_t r, uint32_t n)
{
	const struct kern_epilogue *ep = &g->ep;
	const uint32_t left = g->w->n - n;
	const __mmask8 keep = (__mmask8)(left >= 4 ? 0xf : (1u << left) - 1);
	const __m128i sb = _mm_loadu_si128((const __m128i *)(g->w->sum_b + g->w_bits * g->w->n_pad + n));
	__m128i t = _mm_sub_epi32(d, _mm_mullo_epi32(_mm_set1_epi32(g->off), sb));
	__m128 mult, y;

	t = _mm_sra_epi32(t, _mm_cvtsi32_si128((int)(8 - g->w_bits)));
	t = _mm_add_epi32(_mm_add_epi32(t, t), _mm_set1_epi32(g->sum_q[r]));
	mult = _mm_mul_ps(_mm_set1_ps(ep->step), _mm_maskz_loadu_ps(keep, ep->m + n));
	y = _mm_mul_ps(_mm_cvtepi32_ps(t), mult);
	y = _mm_add_ps(y, _mm_maskz_loadu_ps(keep, ep->beta + n));
	if (ep->relu)
		y = _mm_max_ps(y, _mm_setzero_ps());
	_mm_mask_storeu_ps(ep->y + r * ep->ldy + n, keep, y);
}

/* sum over the row of u * b for channel O, streaming its W planes. */
INLINE __m512i gemv_row(const struct kern_gemm *g, const uint8_t *a, uint32_t o, unsigned w)
{
	const struct kern_planes *pl = g->w;
	const uint32_t words = pl->kp / KERN_KBLOCK;
	const uint64_t *p = pl->words + (size_t)o * words;
	__m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
	uint32_t t = 0;

	for (; t + 2 <= words; t += 2) {
		if (((uintptr_t)(p + t) & 63) < 16)
			for (unsigned j = 0; j < w; j++)
				_mm_prefetch((const char *)(p + t + j * pl->plane_words) + 1024, _MM_HINT_T0);
		acc0 = _mm512_dpbusd_epi32(acc0, _mm512_loadu_si512(a + t * 64),
					   rebuild(p + t, pl->plane_words, w));
		acc1 = _mm512_dpbusd_epi32(acc1, _mm512_loadu_si512(a + t * 64 + 64),
					   rebuild(p + t + 1, pl->plane_words, w));
	}
	if (t < words)
		acc0 = _mm512_dpbusd_epi32(acc0, _mm512_loadu_si512(a + t * 64),
					   rebuild(p + t, pl->plane_words, w));
	return _mm512_add_epi32(acc0, acc1);
}

/* Rows [0, m) with m < KERN_MR: every channel's planes are streamed once per row. */
INLINE void gemv(const struct kern_gemm *g, uint32_t n0, uint32_t n1, unsigned w)
{
	for (uint32_t r = 0; r < g->m; r++) {
		const uint8_t *a = g->a + r * g->lda;

		for (uint32_t n = n0; n < n1; n += 4) {
			__m512i s0 = gemv_row(g, a, n, w), s1 = gemv_row(g, a, n + 1, w);
			__m512i s2 = gemv_row(g, a, n + 2, w), s3 = gemv_row(g, a, n + 3, w);

			epilogue4(g, reduce4(s0, s1, s2, s3), r, n);
		}
	}
}

/* Rebuild channels [n, n + np) into PANEL, np rows of kp bytes. */
INLINE void rebuild_panel(const struct kern_planes *pl, uint32_t n, uint32_t np, unsigned w,
			  int8_t *panel)
{
	const uint32_t words = pl->kp / KERN_KBLOCK;

	for (uint32_t c = 0; c < np; c++) {
		const uint64_t *p = pl->words + (size_t)(n + c) * words;

		for (uint32_t t = 0; t < words; t++)
			_mm512_store_si512(panel + (size_t)c * pl->kp + t * 64,
					   rebuild(p + t, pl->plane_words, w));
	}
}

/*
 * The 4x4 tile of rows R (4 pointers) and panel channels N..N+3, then its epilogue. Sixteen
 * named accumulators: gcc allocates an array of vectors badly (copies and spills per step).
 */
#define TILE_ROW(i)                                                                          \
	do {                                                                                 \
		const __m512i a = _mm512_loadu_si512(rows[i] + t);                           \
		c##i##0 = _mm512_dpbusd_epi32(c##i##0, a, b0);                               \
		c##i##1 = _mm512_dpbusd_epi32(c##i##1, a, b1);                               \
		c##i##2 = _mm512_dpbusd_epi32(c##i##2, a, b2);                               \
		c##i##3 = _mm512_dpbusd_epi32(c##i##3, a, b3);                               \
	} while (0)

TARGET static void tile4x4(const struct kern_gemm *g, const uint8_t *const rows[4],
			   const int8_t *b, uint32_t r0, uint32_t n)
{
	const uint32_t kp = g->w->kp;
	const __m512i z = _mm512_setzero_si512();
	__m512i c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z;
	__m512i c20 = z, c21 = z, c22 = z, c23 = z, c30 = z, c31 = z, c32 = z, c33 = z;

	for (uint32_t t = 0; t < kp; t += 64) {
		const __m512i b0 = _mm512_load_si512(b + t), b1 = _mm512_load_si512(b + kp + t);
		const __m512i b2 = _mm512_load_si512(b + 2 * kp + t);
		const __m512i b3 = _mm512_load_si512(b + 3 * kp + t);

		TILE_ROW(0);
		TILE_ROW(1);
		TILE_ROW(2);
		TILE_ROW(3);
	}
	epilogue4(g, reduce4(c00, c01, c02, c03), r0, n);
	if (r0 + 1 < g->m)
		epilogue4(g, reduce4(c10, c11, c12, c13), r0 + 1, n);
	if (r0 + 2 < g->m)
		epilogue4(g, reduce4(c20, c21, c22, c23), r0 + 2, n);
	if (r0 + 3 < g->m)
		epilogue4(g, reduce4(c30, c31, c32, c33), r0 + 3, n);
}
#undef TILE_ROW

INLINE void gemm(const struct kern_gemm *g, uint32_t n0, uint32_t n1, int8_t *panel, unsigned w)
{
	for (uint32_t n = n0; n < n1; n += KERN_PANEL) {
		const uint32_t np = n1 - n < KERN_PANEL ? n1 - n : KERN_PANEL;

		rebuild_panel(g->w, n, np, w, panel);
		for (uint32_t r = 0; r < g->m; r += KERN_MR) {
			const uint8_t *rows[4];

			for (uint32_t i = 0; i < 4; i++)
				rows[i] = g->a + (r + i < g->m ? r + i : g->m - 1) * g->lda;
			for (uint32_t c = 0; c < np; c += KERN_NR)
				tile4x4(g, rows, panel + (size_t)c * g->w->kp, r, n + c);
		}
	}
}

/* One instance per weight bit-width, so the plane loops unroll. */
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

TARGET static void gemm_any(const struct kern_gemm *g, uint32_t n0, uint32_t n1, int8_t *panel)
{
	static void (*const by_bits[9])(const struct kern_gemm *, uint32_t, uint32_t, int8_t *) = {
		[2] = gemm_w2, [3] = gemm_w3, [4] = gemm_w4, [5] = gemm_w5,
		[6] = gemm_w6, [7] = gemm_w7, [8] = gemm_w8,
	};

	by_bits[g->w_bits](g, n0, n1, panel);
}

/* Epilogue of 16 channels [c, c + 16) of output pixel R from int32 accumulators. */
INLINE void epilogue16(const struct kern_epilogue *ep, __m512i acc, uint32_t r, uint32_t c,
		       uint32_t channels)
{
	const uint32_t left = channels - c;
	const __mmask16 keep = (__mmask16)(left >= 16 ? 0xffff : (1u << left) - 1);
	__m512 mult = _mm512_mul_ps(_mm512_set1_ps(ep->step), _mm512_maskz_loadu_ps(keep, ep->m + c));
	__m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), mult);

	y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(keep, ep->beta + c));
	if (ep->relu)
		y = _mm512_max_ps(y, _mm512_setzero_ps());
	_mm512_mask_storeu_ps(ep->y + r * ep->ldy + c, keep, y);
}

/* Taps [*k0, *k1) of output position OUT that fall inside an input of size IN. */
static void taps_inside(uint32_t out, uint32_t stride, uint32_t pad, uint32_t kernel, uint32_t in,
			uint32_t *k0, uint32_t *k1)
{
	const int64_t start = (int64_t)out * stride - pad;
	int64_t lo = start < 0 ? -start : 0, hi = (int64_t)in - start;

	hi = hi > kernel ? kernel : hi;
	*k0 = (uint32_t)lo;
	*k1 = (uint32_t)(hi < lo ? lo : hi);
}

TARGET static void depthwise(const struct kern_depthwise *d, uint32_t r0, uint32_t r1)
{
	const struct bmx_conv_shape *s = d->s;
	const uint32_t C = s->in_c, per_sample = s->out_h * s->out_w;
	const __m128i shift = _mm_cvtsi32_si128((int)(8 - d->w_bits));

	for (uint32_t r = r0; r < r1; r++) {
		const uint32_t n = r / per_sample, oh = r % per_sample / s->out_w, ow = r % s->out_w;
		const uint8_t *u = d->u + (size_t)n * s->in_h * s->in_w * C;
		uint32_t kh0, kh1, kw0, kw1;

		taps_inside(oh, s->stride_h, s->pad_top, s->kernel_h, s->in_h, &kh0, &kh1);
		taps_inside(ow, s->stride_w, s->pad_left, s->kernel_w, s->in_w, &kw0, &kw1);
		for (uint32_t c = 0; c < C; c += 16) {
			const __mmask16 keep = (__mmask16)(C - c >= 16 ? 0xffff : (1u << (C - c)) - 1);
			__m512i acc = _mm512_setzero_si512();

			for (uint32_t kh = kh0; kh < kh1; kh++)
				for (uint32_t kw = kw0; kw < kw1; kw++) {
					const size_t ih = (size_t)oh * s->stride_h + kh - s->pad_top;
					const size_t iw = (size_t)ow * s->stride_w + kw - s->pad_left;
					const uint8_t *up = u + (ih * s->in_w + iw) * C + c;
					const int8_t *wp = d->w->codes + (size_t)(kh * s->kernel_w + kw) * d->w->c_pad + c;
					__m512i q = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(keep, up)),
								     _mm512_set1_epi32(d->off));
					__m512i v = _mm512_sra_epi32(_mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *)wp)), shift);

					v = _mm512_or_si512(_mm512_slli_epi32(v, 1), _mm512_set1_epi32(1));
					acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(q, v));
				}
			epilogue16(&d->ep, acc, r, c, C);
		}
	}
}

TARGET static void quantize(const float *x, size_t n, float inv, int32_t lo, int32_t hi,
			    int32_t off, uint8_t *u)
{
	const __m512 vinv = _mm512_set1_ps(inv), vlo = _mm512_set1_ps((float)lo);
	const __m512 vhi = _mm512_set1_ps((float)hi);
	const __m512i voff = _mm512_set1_epi32(off);

	for (size_t i = 0; i < n; i += 16) {
		const __mmask16 keep = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
		__m512 t = _mm512_mul_ps(_mm512_maskz_loadu_ps(keep, x + i), vinv);

		t = _mm512_max_ps(t, vlo); /* the second operand when t is NaN, as fmaxf */
		t = _mm512_min_ps(t, vhi);
		_mm512_mask_cvtepi32_storeu_epi8(u + i, keep,
						 _mm512_add_epi32(_mm512_cvtps_epi32(t), voff));
	}
}

const struct kern_ops kern_ops_avx512 = {
	.path = BMX_KERNELS_AVX512,
	.gemm = gemm_any,
	.depthwise = depthwise,
	.quantize = quantize,
};
#endif
