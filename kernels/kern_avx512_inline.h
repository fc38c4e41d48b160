/* SPDX-License-Identifier: MIT */
/*
 * kern_avx512_inline.h — the pieces of the AVX-512 path that its GEMM kernels share
 * (kern_avx512.c: vpdpbusd on rebuilt bytes; kern_avx512_lut.c: table lookup at low bits):
 * rebuilding signed weight bytes from the bit-planes of kern.h, the broadcast of 4 activation
 * bytes, and the fused epilogue (TBN affine, ReLU, masked store, requantization). Included by
 * those files only; every function is always inlined into their target-attributed code.
 */
#ifndef BITMIX_KERN_AVX512_INLINE_H
#define BITMIX_KERN_AVX512_INLINE_H

#include <immintrin.h>
#include <string.h>

#include "kern.h"

#define TARGET __attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni,gfni")))
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

/*
 * A full block of 8 steps of W planes (one 64-byte line per plane, in the blocked order of
 * struct kern_planes) rebuilt at once: an 8 x 8 byte transpose of the planes' lines with
 * in-lane unpacks (bytes, words, dwords: 24 ops) leaves in each qword the same byte of the 8
 * planes, and vgf2p8affineqb (GFNI) transposes each 8 x 8 bit block, so that byte p of a
 * qword gets plane j's bit p at bit 7 - j. The blocked order puts step V's 64 weights in
 * vector V in vpdpbusd order. 32 ops for 512 weights (the plain layout needed a qword
 * transpose across lanes and a vpermb per vector: 40, 16 of them vshufi64x2 and 8 vpermb).
 */
INLINE void rebuild8(const uint64_t *p, size_t stride, unsigned w, __m512i *o0, __m512i *o1,
		     __m512i *o2, __m512i *o3, __m512i *o4, __m512i *o5, __m512i *o6, __m512i *o7)
{
	const __m512i z = _mm512_setzero_si512();
	const __m512i r0 = _mm512_loadu_si512(p), r1 = _mm512_loadu_si512(p + stride);
	const __m512i r2 = w > 2 ? _mm512_loadu_si512(p + 2 * stride) : z;
	const __m512i r3 = w > 3 ? _mm512_loadu_si512(p + 3 * stride) : z;
	const __m512i r4 = w > 4 ? _mm512_loadu_si512(p + 4 * stride) : z;
	const __m512i r5 = w > 5 ? _mm512_loadu_si512(p + 5 * stride) : z;
	const __m512i r6 = w > 6 ? _mm512_loadu_si512(p + 6 * stride) : z;
	const __m512i r7 = w > 7 ? _mm512_loadu_si512(p + 7 * stride) : z;
	/* bytes: (plane 2i, plane 2i + 1) pairs of line byte 16 L + x, x < 8 (lo) or >= 8 (hi) */
	const __m512i a0 = _mm512_unpacklo_epi8(r0, r1), a1 = _mm512_unpackhi_epi8(r0, r1);
	const __m512i b0 = _mm512_unpacklo_epi8(r2, r3), b1 = _mm512_unpackhi_epi8(r2, r3);
	const __m512i c0 = _mm512_unpacklo_epi8(r4, r5), c1 = _mm512_unpackhi_epi8(r4, r5);
	const __m512i d0 = _mm512_unpacklo_epi8(r6, r7), d1 = _mm512_unpackhi_epi8(r6, r7);
	/* dwords: planes 0..3 (e) and 4..7 (f) of line byte 16 L + 4 i + x, x < 4 */
	const __m512i e0 = _mm512_unpacklo_epi16(a0, b0), e1 = _mm512_unpackhi_epi16(a0, b0);
	const __m512i e2 = _mm512_unpacklo_epi16(a1, b1), e3 = _mm512_unpackhi_epi16(a1, b1);
	const __m512i f0 = _mm512_unpacklo_epi16(c0, d0), f1 = _mm512_unpackhi_epi16(c0, d0);
	const __m512i f2 = _mm512_unpacklo_epi16(c1, d1), f3 = _mm512_unpackhi_epi16(c1, d1);
	const __m512i unit = _mm512_set1_epi64((long long)0x8040201008040201ull);

	/* qwords: the 8 planes of line byte 16 L + 2 V + e: vector V */
#define FINISH(out, v) *out = _mm512_gf2p8affine_epi64_epi8(unit, v, 0)
	FINISH(o0, _mm512_unpacklo_epi32(e0, f0));
	FINISH(o1, _mm512_unpackhi_epi32(e0, f0));
	FINISH(o2, _mm512_unpacklo_epi32(e1, f1));
	FINISH(o3, _mm512_unpackhi_epi32(e1, f1));
	FINISH(o4, _mm512_unpacklo_epi32(e2, f2));
	FINISH(o5, _mm512_unpackhi_epi32(e2, f2));
	FINISH(o6, _mm512_unpacklo_epi32(e3, f3));
	FINISH(o7, _mm512_unpackhi_epi32(e3, f3));
#undef FINISH
}

/* The 4 activation bytes at P in every int32 lane. */
INLINE __m512i bcast4(const uint8_t *p)
{
	int32_t v;

	memcpy(&v, p, sizeof(v));
	return _mm512_set1_epi32(v);
}

/*
 * The epilogue's per-channel constants for channels [n, n + 16): off * sum_b, step * m[o] and
 * beta, loaded once per tile (8 rows) rather than once per row.
 */
struct ep16 {
	__m512i osb;
	__m512 mult, beta;
	__mmask16 keep;
};

INLINE struct ep16 ep16_of(const struct kern_gemm *g, uint32_t n)
{
	const struct kern_epilogue *ep = &g->ep;
	const uint32_t left = g->w->n > n ? g->w->n - n : 0;
	const __mmask16 keep = (__mmask16)(left >= 16 ? 0xffff : (1u << left) - 1);
	const __m512i sb = _mm512_load_si512(g->w->sum_b + g->w_bits * g->w->n_pad + n);

	const __m512 m = _mm512_maskz_loadu_ps(keep, ep->m + n);

	return (struct ep16){
		.osb = _mm512_mullo_epi32(_mm512_set1_epi32(g->off), sb),
		.mult = _mm512_mul_ps(_mm512_set1_ps(ep->step), m),
		.beta = _mm512_maskz_loadu_ps(keep, ep->beta + n),
		.keep = keep,
	};
}

/* The codes u = q(x) + off of 16 floats, as bmx_ref_quantize (vcvtps2dq rounds like rintf). */
INLINE __m512i codes16(__m512 x, float inv, int32_t lo, int32_t hi, int32_t off)
{
	__m512 t = _mm512_mul_ps(x, _mm512_set1_ps(inv));

	t = _mm512_max_ps(t, _mm512_set1_ps((float)lo)); /* the second operand for NaN, as fmaxf */
	t = _mm512_min_ps(t, _mm512_set1_ps((float)hi));
	return _mm512_add_epi32(_mm512_cvtps_epi32(t), _mm512_set1_epi32(off));
}

/*
 * Store 16 codes (int32 lanes 0..255) as bytes at U, lanes outside KEEP untouched: a full
 * vector packs in a register and stores plainly (the masked narrowing store to memory, vpmovdb
 * m128{k}, is slow here).
 */
INLINE void store_codes16(uint8_t *u, __mmask16 keep, __m512i codes)
{
	if (keep == 0xffff)
		_mm_storeu_si128((__m128i *)(void *)u, _mm512_cvtepi32_epi8(codes));
	else
		_mm512_mask_cvtepi32_storeu_epi8(u, keep, codes);
}

/*
 * Where the next layer reads the codes of rows [r, r + COUNT) (channel 0; NULL without a fused
 * requantization): two divisions for the first row, then a walk over the pixels.
 */
INLINE void requant_rows(const struct kern_epilogue *ep, uint32_t r, unsigned count, uint8_t **at)
{
	const struct kern_requant *rq = ep->rq;
	uint32_t s, h, x;

	if (!rq) {
		for (unsigned i = 0; i < count; i++)
			at[i] = NULL;
		return;
	}
	r += ep->row0;
	s = r / rq->hw;
	h = r % rq->hw / rq->w;
	x = r % rq->w;
	for (unsigned i = 0; i < count; i++) {
		at[i] = rq->u + rq->sample * s + rq->origin + rq->line * h + rq->pixel * x;
		if (++x == rq->w) {
			x = 0;
			if (++h * rq->w == rq->hw) {
				h = 0;
				s++;
			}
		}
	}
}

/*
 * The exact accumulator ACC = sum (2k + 1) q of channels [n, n + 16) of row R through the TBN
 * affine, ReLU, masked store, and the next layer's codes at Q + n when requantization is fused
 * (requant_rows()).
 */
INLINE void epilogue_acc16(const struct kern_gemm *g, const struct ep16 *c, __m512i acc, uint32_t r,
			   uint32_t n, uint8_t *q)
{
	const struct kern_epilogue *ep = &g->ep;
	__m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), c->mult);

	y = _mm512_add_ps(y, c->beta);
	if (ep->relu)
		y = _mm512_max_ps(y, _mm512_setzero_ps());
	_mm512_mask_storeu_ps(ep->y + r * ep->ldy + n, c->keep, y);
	if (q)
		store_codes16(q + n, c->keep,
			      codes16(y, ep->rq->inv, ep->rq->lo, ep->rq->hi, ep->rq->off));
}

/* acc from D = sum u * b (the identity of kern.h), then epilogue_acc16(). */
INLINE void epilogue_gemm16(const struct kern_gemm *g, const struct ep16 *c, __m512i d, uint32_t r,
			    uint32_t n, uint8_t *q)
{
	__m512i t = _mm512_sub_epi32(d, c->osb);

	if (!c->keep)
		return;
	t = _mm512_sra_epi32(t, _mm_cvtsi32_si128((int)(8 - g->w_bits)));
	t = _mm512_add_epi32(_mm512_add_epi32(t, t), _mm512_set1_epi32(g->sum_q[r]));
	epilogue_acc16(g, c, t, r, n, q);
}

/*
 * The first tap of each of a direct convolution's rows [r0, r0 + COUNT) in its padded input
 * (rows past m repeat the last one); tap (kh, kw) is (kh * padded width + kw) * in_c bytes
 * further. Two divisions for the first row, then a walk over the output pixels.
 */
INLINE void direct_rows_of(const struct kern_gemm *g, uint32_t r0, uint32_t count,
			   const uint8_t **first)
{
	const struct bmx_conv_shape *s = g->direct->s;
	const uint32_t per_sample = s->out_h * s->out_w, r = g->direct->row0 + r0;
	const size_t ph = s->in_h + s->pad_top + s->pad_bottom;
	const size_t pw = s->in_w + s->pad_left + s->pad_right;
	uint32_t n = r / per_sample, oh = r % per_sample / s->out_w, ow = r % s->out_w;
	const uint8_t *at = g->direct->u;

	for (uint32_t i = 0; i < count; i++) {
		if (r0 + i < g->m)
			at = g->direct->u +
			     ((n * ph + (size_t)oh * s->stride_h) * pw + (size_t)ow * s->stride_w) *
				     s->in_c;
		first[i] = at;
		if (++ow == s->out_w) {
			ow = 0;
			if (++oh == s->out_h) {
				oh = 0;
				n++;
			}
		}
	}
}

#endif
