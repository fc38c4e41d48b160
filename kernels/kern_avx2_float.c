/* SPDX-License-Identifier: MIT */
/*
 * kern_avx2_float.c — the AVX2 path's kernels outside the GEMM (avx2 and avxvnni share
 * them): depthwise convolution, and the 8-lane twins of kern_avx512_float.c (same argument for
 * bit-exactness): the quantizer, ReLU, max-pooling, ADD, global average pooling and the row
 * sums of activation bytes. Without them the AVX2 path spent a third of the bundled model's
 * time in the portable quantizer's libm fmaxf/fminf calls and in the reference pools.
 *
 * vmaxps(a, b) is a > b ? a : b: NaN or equal zeros give b, which is fmaxf(x, 0) of this libm
 * for ReLU (0 for NaN, +0 for -0), the quantizer's "NaN -> lo", and the reference max-pool's "a
 * NaN never wins, the first of equal values stays" with a = the new value. vcvtps2dq rounds to
 * nearest even like rintf in the default rounding mode. Sums run in the reference's order.
 *
 * Memory: no alignment required; channel tails use vmaskmovps (masked lanes neither read nor
 * written), byte tails are scalar; depthwise reads 8 bytes per tap, which may run into the
 * next pixel or the padded input's 64 bytes of slack (their weights are 0).
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kern.h"

#define TARGET __attribute__((target("avx2,fma")))
#define INLINE TARGET static inline __attribute__((always_inline))

/* All-ones in the first LEFT (< 8 keeps all) int32 lanes. */
INLINE __m256i keep8(size_t left)
{
	const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);

	return _mm256_cmpgt_epi32(_mm256_set1_epi32(left >= 8 ? 8 : (int)left), idx);
}

INLINE __m256i quantize8(const float *x, __m256 vinv, __m256 vlo, __m256 vhi, __m256i voff)
{
	__m256 t = _mm256_mul_ps(_mm256_loadu_ps(x), vinv);

	t = _mm256_max_ps(t, vlo); /* the second operand when t is NaN, as fmaxf */
	t = _mm256_min_ps(t, vhi);
	return _mm256_add_epi32(_mm256_cvtps_epi32(t), voff);
}

TARGET void kern_avx2_quantize(const float *x, size_t n, float inv, int32_t lo, int32_t hi,
			       int32_t off, uint8_t *u)
{
	const __m256 vinv = _mm256_set1_ps(inv), vlo = _mm256_set1_ps((float)lo);
	const __m256 vhi = _mm256_set1_ps((float)hi);
	const __m256i voff = _mm256_set1_epi32(off);
	/* packs interleave the 128-bit lanes: dwords 0, 4, 1, 5, ... put them back in order */
	const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
	size_t i = 0;

	for (; i + 32 <= n; i += 32) {
		/* codes are 0..255: the signed int16 and unsigned byte packs saturate nothing */
		const __m256i a = _mm256_packs_epi32(quantize8(x + i, vinv, vlo, vhi, voff),
						     quantize8(x + i + 8, vinv, vlo, vhi, voff));
		const __m256i b = _mm256_packs_epi32(quantize8(x + i + 16, vinv, vlo, vhi, voff),
						     quantize8(x + i + 24, vinv, vlo, vhi, voff));

		_mm256_storeu_si256((__m256i *)(void *)(u + i),
				    _mm256_permutevar8x32_epi32(_mm256_packus_epi16(a, b), order));
	}
	for (; i + 8 <= n; i += 8) {
		const __m256i a = _mm256_packs_epi32(quantize8(x + i, vinv, vlo, vhi, voff),
						     _mm256_setzero_si256());
		const __m256i b = _mm256_packus_epi16(a, a);
		const int32_t w0 = _mm_cvtsi128_si32(_mm256_castsi256_si128(b));
		const int32_t w1 = _mm_cvtsi128_si32(_mm256_extracti128_si256(b, 1));

		memcpy(u + i, &w0, 4);
		memcpy(u + i + 4, &w1, 4);
	}
	kern_quantize_portable(x + i, n - i, inv, lo, hi, off, u + i);
}

TARGET void kern_avx2_relu(const float *x, size_t n, float *y)
{
	for (size_t i = 0; i < n; i += 8) {
		const __m256i keep = keep8(n - i);

		_mm256_maskstore_ps(y + i, keep,
				    _mm256_max_ps(_mm256_maskload_ps(x + i, keep), _mm256_setzero_ps()));
	}
}

/* One output pixel: taps kh x kw, whose first is at X (C floats per pixel). */
TARGET static void maxpool_pixel(const float *x, size_t line, uint32_t C, uint32_t kh,
				 uint32_t kw, float *y)
{
	for (uint32_t c = 0; c < C; c += 8) {
		const __m256i keep = keep8(C - c);
		__m256 acc = _mm256_set1_ps(-INFINITY);

		for (uint32_t i = 0; i < kh; i++)
			for (uint32_t j = 0; j < kw; j++)
				acc = _mm256_max_ps(_mm256_maskload_ps(x + i * line + j * C + c, keep), acc);
		_mm256_maskstore_ps(y + c, keep, acc);
	}
}

TARGET void kern_avx2_maxpool(const struct bmx_conv_shape *s, const float *x, float *y)
{
	kern_maxpool_walk(s, x, y, maxpool_pixel);
}

TARGET void kern_avx2_add(const float *a, const float *b, size_t n, float *y)
{
	for (size_t i = 0; i < n; i += 8) {
		const __m256i keep = keep8(n - i);

		_mm256_maskstore_ps(y + i, keep, _mm256_add_ps(_mm256_maskload_ps(a + i, keep),
							       _mm256_maskload_ps(b + i, keep)));
	}
}

TARGET void kern_avx2_global_avgpool(uint32_t batch, uint32_t h, uint32_t w, uint32_t c,
				     const float *x, float *y)
{
	const size_t hw = (size_t)h * w;
	const __m256 area = _mm256_set1_ps((float)hw);

	for (uint32_t n = 0; n < batch; n++, x += hw * c, y += c)
		for (uint32_t ch = 0; ch < c; ch += 8) {
			const __m256i keep = keep8(c - ch);
			__m256 sum = _mm256_setzero_ps();

			for (size_t p = 0; p < hw; p++)
				sum = _mm256_add_ps(sum, _mm256_maskload_ps(x + p * c + ch, keep));
			_mm256_maskstore_ps(y + ch, keep, _mm256_div_ps(sum, area));
		}
}

/* Epilogue of 8 channels [c, c + 8) of output pixel R from int32 accumulators. */
INLINE void epilogue_dw8(const struct kern_epilogue *ep, __m256i acc, uint32_t r, uint32_t c,
			 uint32_t channels)
{
	const uint32_t left = channels - c < 8 ? channels - c : 8;
	const __m256i keep = keep8(left);
	const __m256 mult = _mm256_mul_ps(_mm256_set1_ps(ep->step), _mm256_maskload_ps(ep->m + c, keep));
	__m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), mult);

	v = _mm256_add_ps(v, _mm256_maskload_ps(ep->beta + c, keep));
	if (ep->relu)
		v = _mm256_max_ps(v, _mm256_setzero_ps());
	_mm256_maskstore_ps(ep->y + r * ep->ldy + c, keep, v);
}

/*
 * Depthwise on the padded input (every tap inside, padding q = 0), AVX-512's scheme at 8
 * channels: two taps per vpmaddwd, the bytes of taps t and t + 1 interleaved and widened to
 * int16 pairs (u_t, u_t+1) per channel against the pairs (v_t, v_t+1) of decoded weights
 * v = 2k + 1 (255 * 255 * 2 per lane; exact), and sum q v = sum u v - off sum v, sum v over all
 * taps being one constant per channel. Channels past the layer's have v = 0, so 8-byte loads
 * may read the next pixel's bytes (or the input's 64 bytes of slack). Before: an int32
 * multiply per tap, bounds per pixel, tails through memcpy (11.2 us on the bundled model's 3x3
 * over 7x7x96).
 */
#define DW_DECODED_MAX 256u /* vectors of constants per chunk of channels (3x3 over 96: 60) */

INLINE __m256i dw_weights8(const struct kern_depthwise *d, uint32_t tap, uint32_t c)
{
	const uint32_t C = d->s->in_c;
	const __m128i shift = _mm_cvtsi32_si128((int)(8 - d->w_bits));
	const int8_t *wp = d->w->codes + (size_t)tap * d->w->c_pad + c;
	const __m256i k = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)wp));
	const __m256i v = _mm256_sra_epi32(k, shift);

	return _mm256_and_si256(_mm256_or_si256(_mm256_slli_epi32(v, 1), _mm256_set1_epi32(1)),
				keep8(C - c));
}

/* The int16 pairs (v_t, v_t+1) of channels [c, c + 8); tap T + 1 == taps is a zero weight. */
INLINE __m256i dw_pair(const struct kern_depthwise *d, uint32_t t, uint32_t c)
{
	const __m256i v0 = dw_weights8(d, t, c);
	const __m256i v1 = t + 1 < d->w->taps ? dw_weights8(d, t + 1, c) : _mm256_setzero_si256();

	return _mm256_or_si256(_mm256_and_si256(v0, _mm256_set1_epi32(0xffff)),
			       _mm256_slli_epi32(v1, 16));
}

INLINE __m256i dw_step(__m256i acc, __m128i a, __m128i b, __m256i w)
{
	return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_unpacklo_epi8(a, b)), w));
}

/* The weight pair P of group G (I in the chunk of N groups): decoded once (DEC) or here. */
INLINE __m256i dw_w(const struct kern_depthwise *d, const __m256i *dec, uint32_t p, uint32_t g,
		    uint32_t i, uint32_t n)
{
	return dec ? dec[p * n + i] : dw_pair(d, 2 * p, g * 8);
}

/* off * sum over all taps of v, channels [8 g, 8 g + 8). */
INLINE __m256i dw_off_sum_v(const struct kern_depthwise *d, uint32_t g)
{
	__m256i sv = _mm256_setzero_si256();

	for (uint32_t t = 0; t < d->w->taps; t++)
		sv = _mm256_add_epi32(sv, dw_weights8(d, t, g * 8));
	return _mm256_mullo_epi32(sv, _mm256_set1_epi32(d->off));
}

/* Rows [r0, r1), groups [g0, g1) of 8 channels; OSV and DEC hold that chunk's constants. */
INLINE void depthwise_rows(const struct kern_depthwise *d, uint32_t r0, uint32_t r1, uint32_t g0,
			   uint32_t g1, const __m256i *dec, const __m256i *osv)
{
	const struct bmx_conv_shape *s = d->s;
	const uint32_t C = s->in_c, per_sample = s->out_h * s->out_w;
	const size_t ph = s->in_h + s->pad_top + s->pad_bottom;
	const size_t line = (s->in_w + s->pad_left + s->pad_right) * (size_t)C;
	uint32_t n = r0 / per_sample, oh = r0 % per_sample / s->out_w, ow = r0 % s->out_w;

	for (uint32_t r = r0; r < r1; r++) {
		const uint8_t *base = d->u + (n * ph + (size_t)oh * s->stride_h) * line +
				      (size_t)ow * s->stride_w * C;

		for (uint32_t g = g0, c = g0 * 8; g < g1; g++, c += 8) {
			__m256i acc = _mm256_setzero_si256();
			__m128i held = _mm_setzero_si128();
			uint32_t t = 0;

			for (uint32_t kh = 0; kh < s->kernel_h; kh++)
				for (uint32_t kw = 0; kw < s->kernel_w; kw++, t++) {
					const uint8_t *at = base + kh * line + (size_t)kw * C + c;
					const __m128i x = _mm_loadl_epi64((const __m128i *)(const void *)at);

					if (t & 1)
						acc = dw_step(acc, held, x,
							      dw_w(d, dec, t / 2, g, g - g0, g1 - g0));
					else
						held = x;
				}
			if (t & 1)
				acc = dw_step(acc, held, _mm_setzero_si128(),
					      dw_w(d, dec, t / 2, g, g - g0, g1 - g0));
			epilogue_dw8(&d->ep, _mm256_sub_epi32(acc, osv[g - g0]), r, c, C);
		}
		if (++ow == s->out_w) { /* the next output pixel, without divisions */
			ow = 0;
			if (++oh == s->out_h) {
				oh = 0;
				n++;
			}
		}
	}
}

TARGET void kern_avx2_depthwise(const struct kern_depthwise *d, uint32_t r0, uint32_t r1)
{
	const uint32_t taps = d->w->taps, groups = (d->s->in_c + 7) / 8, pairs = (taps + 1) / 2;
	/* kernels over 511 taps rebuild their weight pairs at every use */
	const int decode = pairs <= DW_DECODED_MAX;
	const uint32_t chunk = decode ? DW_DECODED_MAX / pairs : DW_DECODED_MAX;
	__m256i dec[DW_DECODED_MAX], osv[DW_DECODED_MAX];

	for (uint32_t g0 = 0; g0 < groups; g0 += chunk) {
		const uint32_t g1 = groups - g0 > chunk ? g0 + chunk : groups;

		for (uint32_t g = g0; g < g1; g++) {
			osv[g - g0] = dw_off_sum_v(d, g);
			for (uint32_t p = 0; decode && p < pairs; p++)
				dec[p * (g1 - g0) + g - g0] = dw_pair(d, 2 * p, g * 8);
		}
		depthwise_rows(d, r0, r1, g0, g1, decode ? dec : NULL, osv);
	}
}

TARGET void kern_avx2_row_sums(const uint8_t *rows, size_t lda, uint32_t m, uint32_t k,
			       int32_t off, int32_t *sum_q)
{
	for (uint32_t r = 0; r < m; r++) {
		const uint8_t *row = rows + r * lda;
		__m256i acc = _mm256_setzero_si256();
		__m128i s;
		int32_t sum;
		uint32_t i = 0;

		for (; i + 32 <= k; i += 32) {
			const __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(row + i));

			acc = _mm256_add_epi64(acc, _mm256_sad_epu8(v, _mm256_setzero_si256()));
		}
		s = _mm_add_epi64(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
		sum = (int32_t)(_mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1));
		for (; i < k; i++)
			sum += row[i];
		sum_q[r] = sum - off * (int32_t)k;
	}
}
#endif
