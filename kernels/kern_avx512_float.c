/* SPDX-License-Identifier: MIT */
/*
 * kern_avx512_float.c — the AVX-512 path's float and byte helpers outside the GEMM: ReLU and
 * max-pooling on float NHWC tensors, and the row sums of activation bytes the GEMM epilogue
 * needs. They equal the reference bit for bit: vmaxps(a, b) is a > b ? a : b, which is the
 * reference max-pool's "a NaN never wins, the first of equal values stays" with a = the new
 * value and b = the running maximum, and fmaxf(x, 0) of this libm for ReLU (0 for NaN, +0 for
 * -0; tests/engine/test_kernels.c runs whole graphs against the reference).
 *
 * Memory: no alignment required; channel tails use masked loads and stores.
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#include "kern.h"

#define TARGET __attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl")))

TARGET void kern_avx512_relu(const float *x, size_t n, float *y)
{
	for (size_t i = 0; i < n; i += 16) {
		const __mmask16 keep = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);

		_mm512_mask_storeu_ps(y + i, keep,
				      _mm512_max_ps(_mm512_maskz_loadu_ps(keep, x + i),
						    _mm512_setzero_ps()));
	}
}

/* One output pixel: taps [kh0, kh1) x [kw0, kw1), whose first is at X (C floats per pixel). */
TARGET static void maxpool_pixel(const float *x, size_t line, uint32_t C, uint32_t kh, uint32_t kw,
				 float *y)
{
	for (uint32_t c = 0; c < C; c += 16) {
		const __mmask16 keep = (__mmask16)(C - c >= 16 ? 0xffff : (1u << (C - c)) - 1);
		__m512 acc = _mm512_set1_ps(-INFINITY);

		for (uint32_t i = 0; i < kh; i++)
			for (uint32_t j = 0; j < kw; j++)
				acc = _mm512_max_ps(
					_mm512_maskz_loadu_ps(keep, x + i * line + j * C + c), acc);
		_mm512_mask_storeu_ps(y + c, keep, acc);
	}
}

TARGET void kern_avx512_maxpool(const struct bmx_conv_shape *s, const float *x, float *y)
{
	kern_maxpool_walk(s, x, y, maxpool_pixel);
}

TARGET void kern_avx512_add(const float *a, const float *b, size_t n, float *y)
{
	for (size_t i = 0; i < n; i += 16) {
		const __mmask16 keep = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);

		_mm512_mask_storeu_ps(y + i, keep,
				      _mm512_add_ps(_mm512_maskz_loadu_ps(keep, a + i),
						    _mm512_maskz_loadu_ps(keep, b + i)));
	}
}

TARGET void kern_avx512_global_avgpool(uint32_t batch, uint32_t h, uint32_t w, uint32_t c,
				       const float *x, float *y)
{
	const size_t hw = (size_t)h * w;
	const __m512 area = _mm512_set1_ps((float)hw);

	for (uint32_t n = 0; n < batch; n++, x += hw * c, y += c)
		for (uint32_t ch = 0; ch < c; ch += 16) {
			const __mmask16 keep =
				(__mmask16)(c - ch >= 16 ? 0xffff : (1u << (c - ch)) - 1);
			__m512 sum = _mm512_setzero_ps();

			for (size_t p = 0; p < hw; p++)
				sum = _mm512_add_ps(sum,
						    _mm512_maskz_loadu_ps(keep, x + p * c + ch));
			_mm512_mask_storeu_ps(y + ch, keep, _mm512_div_ps(sum, area));
		}
}

TARGET void kern_avx512_row_sums(const uint8_t *rows, size_t lda, uint32_t m, uint32_t k,
				 int32_t off, int32_t *sum_q)
{
	for (uint32_t r = 0; r < m; r++) {
		const uint8_t *row = rows + r * lda;
		__m512i acc = _mm512_setzero_si512();

		for (uint32_t i = 0; i < k; i += 64) {
			const __mmask64 keep = k - i >= 64 ? ~(__mmask64)0
							   : ((__mmask64)1 << (k - i)) - 1;

			acc = _mm512_add_epi64(
				acc, _mm512_sad_epu8(_mm512_maskz_loadu_epi8(keep, row + i),
						     _mm512_setzero_si512()));
		}
		sum_q[r] = (int32_t)_mm512_reduce_add_epi64(acc) - off * (int32_t)k;
	}
}
#endif
