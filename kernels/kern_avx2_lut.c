/* SPDX-License-Identifier: MIT */
/*
 * kern_avx2_lut.c — the AVX2 path's GEMM for 2-bit weights by table lookup (after T-MAC, Wei et
 * al., EuroSys 2025), exact, the twin of kern_avx512_lut.c on 256-bit vectors. vpmaddubsw does
 * 32 products per instruction; one vpshufb looks up 32 sums of 4 activations, each selected by
 * 4 bits of one weight bit-plane, and so does 64 products of 2-bit weights.
 *
 * Activations: the tables of kern_avx512_lut.c, the same bytes (kern_ops.lut_tables): per 16
 * positions 64 bytes, group L's 16-byte table in lane L (e -> sum of u[4 L + i] over the bits i
 * of e), built here with 256-bit shuffles. Weights: for 16 channels the planes' plain words
 * (the paired order holds them as they are: no rebuild) are turned into shuffle indices,
 * [16-position step][8-channel block][64 bytes], byte 16 L + 2 c + j the nibble of plane j,
 * channel c, group L. Per row, block and step two shuffles (groups 0-1 and 2-3, one 128-bit
 * lane each) are added into one byte accumulator per block, whose lanes then hold the sums of
 * groups 0 + 2 and 1 + 3: every step adds at most 2 x 4 u_max to a byte, so the byte sums are
 * folded every kern_gemm.lut_flush / 2 steps (u_max <= 31 keeps that at least 1) by one
 * vpmaddubsw with (-2, 1) per plane pair (k = -2 b0 + b1) into int16 sums per channel and
 * lane. Then sum u k is the sum of the two lanes and the epilogue is the GEMM's, on k-valued
 * sums (sum q k = sum u k - off sum k).
 *
 * Tiles: 4 rows x 16 channels: 8 byte accumulators, 4 index vectors and a row's 2 tables in
 * the 16 registers. Memory: tables and panels 32-byte aligned, as the engine allocates them;
 * a row's tables are read 64 bytes per step up to K rounded to 16 positions (zeros past K), a
 * direct convolution's kernel_w * in_c / 16 steps per kernel row (in_c % 16 == 0).
 */
#if defined(__x86_64__)
#include "kern_avx2_inline.h"

#define LUT_ROWS 4u
#define LUT_STEP 16u /* positions per step: 4 groups of 4, one per 128-bit lane of a table */

/* Lane l of the tables of groups 2 H + l: byte e picks u[4 (2 H + l) + i] where bit I is set. */
INLINE __m256i table_select(unsigned h, unsigned i)
{
	uint8_t b[32];

	for (unsigned l = 0; l < 2; l++)
		for (unsigned e = 0; e < 16; e++)
			b[16 * l + e] = e >> i & 1 ? (uint8_t)(4 * (2 * h + l) + i) : 0x80;
	return _mm256_loadu_si256((const __m256i *)(const void *)b);
}

TARGET void kern_avx2_lut_tables(const uint8_t *u, size_t lda, uint32_t m, uint32_t k, uint32_t k16,
				 uint8_t *t)
{
	__m256i sel[2][4];

	for (unsigned h = 0; h < 2; h++)
		for (unsigned i = 0; i < 4; i++)
			sel[h][i] = table_select(h, i);
	for (uint32_t r = 0; r < m; r++) {
		const uint8_t *row = u + r * lda;
		uint8_t *out = t + (size_t)r * k16 * 4;

		for (uint32_t p = 0; p < k16; p += LUT_STEP) {
			const uint32_t left = p < k ? k - p : 0;
			uint8_t tail[16] = { 0 };
			__m256i b;

			if (left >= 16) {
				b = _mm256_broadcastsi128_si256(
					_mm_loadu_si128((const __m128i *)(const void *)(row + p)));
			} else {
				memcpy(tail, row + p, left);
				b = _mm256_broadcastsi128_si256(
					_mm_loadu_si128((const __m128i *)(const void *)tail));
			}
			for (unsigned h = 0; h < 2; h++) {
				const __m256i t01 =
					_mm256_add_epi8(_mm256_shuffle_epi8(b, sel[h][0]),
							_mm256_shuffle_epi8(b, sel[h][1]));
				const __m256i t23 =
					_mm256_add_epi8(_mm256_shuffle_epi8(b, sel[h][2]),
							_mm256_shuffle_epi8(b, sel[h][3]));

				_mm256_store_si256((__m256i *)(void *)(out + 4 * p + 32 * h),
						   _mm256_add_epi8(t01, t23));
			}
		}
	}
}

/*
 * The shuffle indices of 8 channels (half H of a 16-channel word) for groups 2 Q and 2 Q + 1 of
 * one step, from plane 0's words W0 and plane 1's W1 of those groups: lane l = (W0[l], W1[l]),
 * then byte 2 c + j <- the nibble of channel 8 H + c in plane j's word (its byte 4 H + c / 2,
 * the low nibble for even c).
 */
INLINE __m256i lut_index(const uint64_t w0[2], const uint64_t w1[2], unsigned h)
{
	const __m256i z = _mm256_set_epi64x((long long)w1[1], (long long)w0[1], (long long)w1[0],
					    (long long)w0[0]);
	const __m256i pick =
		_mm256_add_epi8(_mm256_set1_epi8((char)(4 * h)),
				_mm256_set_epi32(0x0b030b03, 0x0a020a02, 0x09010901, 0x08000800,
						 0x0b030b03, 0x0a020a02, 0x09010901, 0x08000800));
	const __m256i odd_c = _mm256_set1_epi32((int)0xffff0000);
	const __m256i s = _mm256_shuffle_epi8(z, pick), nib = _mm256_set1_epi8(0x0f);

	return _mm256_blendv_epi8(_mm256_and_si256(s, nib),
				  _mm256_and_si256(_mm256_srli_epi16(s, 4), nib), odd_c);
}

/*
 * The 2-bit indices of the 16 channels of group G for STEPS16 steps into PANEL: [step][block
 * h][64 bytes: groups 0-1, then 2-3]. Plane words past the group's steps (K's tail) are 0.
 */
INLINE void lut_panel(const struct kern_planes *pl, uint32_t g, uint32_t steps16, uint8_t *panel)
{
	const uint32_t steps = pl->kp / KERN_KSTEP;
	const uint64_t *p0 = pl->words, *p1 = pl->words + pl->plane_words;

	for (uint32_t t = 0; t < steps16; t++) {
		uint64_t w0[4], w1[4];

		for (uint32_t l = 0; l < 4; l++) {
			const uint32_t s = 4 * t + l;
			const size_t at = s < steps ? kern_plane_word(pl, g, s) : 0;

			w0[l] = s < steps ? p0[at] : 0;
			w1[l] = s < steps ? p1[at] : 0;
		}
		for (unsigned h = 0; h < 2; h++)
			for (unsigned q = 0; q < 2; q++)
				_mm256_store_si256((__m256i *)(void *)(panel +
								       ((size_t)t * 2 + h) * 64 +
								       32 * q),
						   lut_index(w0 + 2 * q, w1 + 2 * q, h));
	}
}

/* Plane 0 counts -2, plane 1 counts 1 (vpmaddubsw on byte pairs: one word per channel). */
#define COEF_PLANES 0x01fe

/*
 * The byte sums of the tile, folded into SUMS ([row][block][16 words]) and cleared. ADD: add to
 * SUMS, else store.
 */
#define LUT_FOLD(i, b)                                                                             \
	do {                                                                                       \
		__m256i *s_ = (__m256i *)(void *)(sums + ((i)*2 + (b)) * 16);                      \
		const __m256i v_ = _mm256_maddubs_epi16(c##i##b, coef);                            \
                                                                                                   \
		_mm256_store_si256(s_, folded ? _mm256_add_epi16(_mm256_load_si256(s_), v_) : v_); \
		c##i##b = z;                                                                       \
	} while (0)
#define LUT_FLUSH()             \
	do {                    \
		LUT_FOLD(0, 0); \
		LUT_FOLD(0, 1); \
		LUT_FOLD(1, 0); \
		LUT_FOLD(1, 1); \
		LUT_FOLD(2, 0); \
		LUT_FOLD(2, 1); \
		LUT_FOLD(3, 0); \
		LUT_FOLD(3, 1); \
		since = 0;      \
		folded = 1;     \
	} while (0)
#define LUT_ROW(i)                                                                                 \
	do {                                                                                       \
		const __m256i ta = _mm256_load_si256((const __m256i *)(const void *)(a##i + o));   \
		const __m256i tb =                                                                 \
			_mm256_load_si256((const __m256i *)(const void *)(a##i + o + 32));         \
                                                                                                   \
		c##i##0 = _mm256_add_epi8(c##i##0, _mm256_add_epi8(_mm256_shuffle_epi8(ta, x00),   \
								   _mm256_shuffle_epi8(tb, x01))); \
		c##i##1 = _mm256_add_epi8(c##i##1, _mm256_add_epi8(_mm256_shuffle_epi8(ta, x10),   \
								   _mm256_shuffle_epi8(tb, x11))); \
	} while (0)
#define LUT_STEPS(steps_)                                                                         \
	do {                                                                                      \
		const uint8_t *const a0 = rp[0], *const a1 = rp[1], *const a2 = rp[2];            \
		const uint8_t *const a3 = rp[3];                                                  \
		const uint8_t *const pend = pp + (size_t)(steps_)*128;                            \
                                                                                                  \
		for (size_t o = 0; pp < pend; pp += 128, o += 64) {                               \
			const __m256i x00 = _mm256_load_si256((const __m256i *)(const void *)pp); \
			const __m256i x01 =                                                       \
				_mm256_load_si256((const __m256i *)(const void *)(pp + 32));      \
			const __m256i x10 =                                                       \
				_mm256_load_si256((const __m256i *)(const void *)(pp + 64));      \
			const __m256i x11 =                                                       \
				_mm256_load_si256((const __m256i *)(const void *)(pp + 96));      \
                                                                                                  \
			LUT_ROW(0);                                                               \
			LUT_ROW(1);                                                               \
			LUT_ROW(2);                                                               \
			LUT_ROW(3);                                                               \
			if (++since == flush)                                                     \
				LUT_FLUSH();                                                      \
		}                                                                                 \
	} while (0)

/* Rows [r0, r0 + LUT_ROWS) times the 16 channels of the panel from N, then the epilogue. */
TARGET static void lut_tile(const struct kern_gemm *g, const uint8_t *panel, uint32_t r0,
			    uint32_t n, const struct ep8 e[2])
{
	const __m256i z = _mm256_setzero_si256(), coef = _mm256_set1_epi16(COEF_PLANES);
	__m256i c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
	int16_t sums[LUT_ROWS * 2 * 16] __attribute__((aligned(32)));
	const unsigned flush = g->lut_flush / 2;
	const uint8_t *pp = panel, *rp[LUT_ROWS];
	const uint32_t rows = r0 + LUT_ROWS <= g->m ? LUT_ROWS : g->m - r0;
	unsigned since = 0, folded = 0;

	if (!g->direct) {
		for (uint32_t i = 0; i < LUT_ROWS; i++)
			rp[i] = g->lut + (r0 + (i < rows ? i : rows - 1)) * g->lut_ld;
		LUT_STEPS((g->w->k + LUT_STEP - 1) / LUT_STEP);
	} else {
		const struct bmx_conv_shape *s = g->direct->s;
		const size_t line = (size_t)(s->in_w + s->pad_left + s->pad_right) * s->in_c;
		const uint8_t *first[LUT_ROWS];

		rows_of(g, r0, LUT_ROWS, first);
		for (uint32_t i = 0; i < LUT_ROWS; i++)
			first[i] = g->lut + 4 * (size_t)(first[i] - g->direct->u);
		/* a kernel row's taps are kernel_w adjacent pixels: one run of steps */
		for (uint32_t kh = 0; kh < s->kernel_h; kh++) {
			for (uint32_t i = 0; i < LUT_ROWS; i++)
				rp[i] = first[i] + 4 * kh * line;
			LUT_STEPS(s->kernel_w * s->in_c / LUT_STEP);
		}
	}
	LUT_FLUSH();
	for (uint32_t i = 0; i < rows; i++)
		for (unsigned h = 0; h < 2; h++) {
			const __m256i v = _mm256_load_si256(
				(const __m256i *)(const void *)(sums + (i * 2 + h) * 16));
			const __m128i t = _mm_add_epi16(_mm256_castsi256_si128(v),
							_mm256_extracti128_si256(v, 1));

			epilogue8(g, &e[h], _mm256_cvtepi16_epi32(t), r0 + i, n + 8 * h);
		}
}
#undef LUT_FOLD
#undef LUT_FLUSH
#undef LUT_ROW
#undef LUT_STEPS

/*
 * Channels [n0, n1) a group of 16 at a time, only as far as the layer has channels. The panel
 * takes 8 bytes per position of K rounded up to 16, within the task's 2 * KERN_PANEL * kp bytes.
 */
TARGET void kern_avx2_gemm_lut(const struct kern_gemm *g, uint32_t n0, uint32_t n1, int8_t *panel)
{
	const struct kern_planes *pl = g->w;
	const uint32_t end = n1 < pl->n ? n1 : pl->n;
	const uint32_t steps16 = (pl->k + LUT_STEP - 1) / LUT_STEP;
	uint8_t *idx = (uint8_t *)panel;

	for (uint32_t n = n0; n < end; n += KERN_GROUP) {
		struct ep8 e[2];

		lut_panel(pl, n / KERN_GROUP, steps16, idx);
		ep8_init(g, n, &e[0], 1);
		ep8_init(g, n + 8, &e[1], 1);
		for (uint32_t r = 0; r < g->m; r += LUT_ROWS)
			lut_tile(g, idx, r, n, e);
	}
}
#endif
