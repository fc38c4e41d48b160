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
				    _mm256_max_ps(_mm256_maskload_ps(x + i, keep),
						  _mm256_setzero_ps()));
	}
}

/* One output pixel: taps kh x kw, whose first is at X (C floats per pixel). */
TARGET static void maxpool_pixel(const float *x, size_t line, uint32_t C, uint32_t kh, uint32_t kw,
				 float *y)
{
	for (uint32_t c = 0; c < C; c += 8) {
		const __m256i keep = keep8(C - c);
		__m256 acc = _mm256_set1_ps(-INFINITY);

		for (uint32_t i = 0; i < kh; i++)
			for (uint32_t j = 0; j < kw; j++)
				acc = _mm256_max_ps(
					_mm256_maskload_ps(x + i * line + j * C + c, keep), acc);
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

		_mm256_maskstore_ps(y + i, keep,
				    _mm256_add_ps(_mm256_maskload_ps(a + i, keep),
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
	const __m256 mult =
		_mm256_mul_ps(_mm256_set1_ps(ep->step), _mm256_maskload_ps(ep->m + c, keep));
	__m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), mult);

	v = _mm256_add_ps(v, _mm256_maskload_ps(ep->beta + c, keep));
	if (ep->relu)
		v = _mm256_max_ps(v, _mm256_setzero_ps());
	_mm256_maskstore_ps(ep->y + r * ep->ldy + c, keep, v);
}

/*
 * Depthwise (kern_depthwise_template.h), AVX-512's scheme at 8 channels per vector: two taps
 * per vpmaddwd. Before: an int32 multiply per tap, bounds per pixel, tails through memcpy
 * (11.2 us on the bundled model's 3x3 over 7x7x96).
 */
typedef int32_t dw_i32 __attribute__((vector_size(32)));
#define DW_LANES 8u

INLINE dw_i32 dw_weights(const struct kern_depthwise *d, uint32_t tap, uint32_t c)
{
	const uint32_t C = d->s->in_c;
	const __m128i shift = _mm_cvtsi32_si128((int)(8 - d->w_bits));
	const int8_t *wp = d->w->codes + (size_t)tap * d->w->c_pad + c;
	const __m256i k = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)wp));
	const __m256i v = _mm256_sra_epi32(k, shift);

	const __m256i odd = _mm256_or_si256(_mm256_slli_epi32(v, 1), _mm256_set1_epi32(1));

	return (dw_i32)_mm256_and_si256(odd, keep8(C - c));
}

INLINE __m128i dw_bytes(const uint8_t *at)
{
	return _mm_loadl_epi64((const __m128i *)(const void *)at);
}

INLINE dw_i32 dw_step(dw_i32 acc, __m128i a, __m128i b, dw_i32 w)
{
	const __m256i u = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(a, b));

	return acc + (dw_i32)_mm256_madd_epi16(u, (__m256i)w);
}

INLINE void dw_epilogue(const struct kern_epilogue *ep, dw_i32 acc, uint32_t r, uint32_t c,
			uint32_t channels)
{
	epilogue_dw8(ep, (__m256i)acc, r, c, channels);
}

#include "kern_depthwise_template.h"

TARGET void kern_avx2_depthwise(const struct kern_depthwise *d, uint32_t r0, uint32_t r1)
{
	dw_run(d, r0, r1);
}

TARGET void kern_avx2_row_sums(const uint8_t *rows, size_t lda, uint32_t m, uint32_t k, int32_t off,
			       int32_t *sum_q)
{
	for (uint32_t r = 0; r < m; r++) {
		const uint8_t *row = rows + r * lda;
		__m256i acc = _mm256_setzero_si256();
		__m128i s;
		int32_t sum;
		uint32_t i = 0;

		for (; i + 32 <= k; i += 32) {
			const __m256i v =
				_mm256_loadu_si256((const __m256i *)(const void *)(row + i));

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
