/* SPDX-License-Identifier: MIT */
/*
 * kern_avx512_lut.c — the AVX-512 path's GEMM for 2-bit weights by table lookup (after T-MAC,
 * Wei et al., EuroSys 2025), exact: vpdpbusd does 64 products per instruction at any width,
 * while one vpshufb looks up 64 sums of 4 activations, each selected by 4 bits of one weight
 * bit-plane, and so does 128 products of 2-bit weights with one byte add to accumulate them.
 *
 * Activations: for each group of 4 positions of a row (or of a padded input pixel, for
 * convolutions read in place), a 16-byte table e -> sum of u[4g + i] over the bits i of e
 * (kern_avx512_lut_tables()); codes u <= 63, so a table byte is at most 252. Weights: a panel
 * of 16 or 32 channels is rebuilt from the bit-planes into shuffle indices, [step of 16
 * positions][8 channels][64 bytes]: byte 16 L + 2 c + j holds, in its low nibble, plane j's
 * bits of channel c at the 4 positions of group L of the step. One shuffle of a row's 64
 * table bytes (the step's 4 groups, one per 128-bit lane) by those indices gives 64 partial
 * sums P_j; byte adds collect them for as many steps as 255 allows (kern_gemm.lut_flush), and
 * one vpmaddubsw per 8 channels with coefficients (-2, 1) for the planes (the top plane is the
 * sign: k = -2 b0 + b1) folds them into int16 sums per channel and lane. Then sum u k = the
 * sum over the 4 lanes, sum q k = sum u k - off sum k, and acc = 2 sum q k + sum q, the
 * reference's accumulator; the epilogue is kern_avx512_inline.h's. docs/kernels.md ("Low-bit
 * kernels") has the measurements: about 1.5x vpdpbusd's products per second in the loop, 1.1-
 * 1.35x for the whole kernel, so the engine takes it only where that pays for the tables.
 *
 * Memory: tables and panels 64-byte aligned; a row's tables are read 64 bytes per step up to
 * K rounded to 16 positions (the tables hold zeros past K), a direct convolution's kernel_w *
 * in_c / 16 steps per kernel row (the engine sends only in_c % 16 == 0 here). The int16 sums
 * live in a 2.5 KiB stack block, so that the 20 byte accumulators and the index vectors stay
 * in registers.
 */
#if defined(__x86_64__)
#include "kern_avx512_inline.h"

/*
 * Rows per tile: 5 for 4 blocks of 8 channels, 10 for 2 (20 byte accumulators, 4 or 2 index
 * vectors and a table: no spills; 6 x 4 spilled three accumulators and ran slower).
 */
#define LUT_ROWS(nb) ((nb) > 2 ? 5u : 10u)
#define LUT_MAX_ROWS 10u
#define LUT_STEP 16u /* positions per step: 4 groups of 4, one per 128-bit lane */
/* Bytes ahead each of the GEMV's W plane streams is prefetched (kern_avx512.c's measure). */
#define PREFETCH_LUT(w) (8192u / (w))

/*
 * Tables of the 4 groups of 4 positions in U16 (one per 128-bit lane): lane L, byte e gets
 * the sum of u[4 L + i] over the bits i of e. SEL[i] picks u[4 L + i] where bit i of e is set.
 */
INLINE __m512i tables16(__m128i u16, const __m512i sel[4])
{
	const __m512i b = _mm512_broadcast_i32x4(u16);
	const __m512i t01 =
		_mm512_add_epi8(_mm512_shuffle_epi8(b, sel[0]), _mm512_shuffle_epi8(b, sel[1]));
	const __m512i t23 =
		_mm512_add_epi8(_mm512_shuffle_epi8(b, sel[2]), _mm512_shuffle_epi8(b, sel[3]));

	return _mm512_add_epi8(t01, t23);
}

/* SEL[i] for tables16(): in lane L, byte e picks u[4 L + i] where bit i of e is set, else 0. */
INLINE void table_selectors(__m512i sel[4])
{
	const __m512i e = _mm512_set_epi32(0x0f0e0d0c, 0x0b0a0908, 0x07060504, 0x03020100,
					   0x0f0e0d0c, 0x0b0a0908, 0x07060504, 0x03020100,
					   0x0f0e0d0c, 0x0b0a0908, 0x07060504, 0x03020100,
					   0x0f0e0d0c, 0x0b0a0908, 0x07060504, 0x03020100);
	const __m512i lane4 = _mm512_set_epi32(0x0c0c0c0c, 0x0c0c0c0c, 0x0c0c0c0c, 0x0c0c0c0c,
					       0x08080808, 0x08080808, 0x08080808, 0x08080808,
					       0x04040404, 0x04040404, 0x04040404, 0x04040404, 0, 0,
					       0, 0);

	for (int i = 0; i < 4; i++) {
		const __mmask64 bit = _mm512_test_epi8_mask(e, _mm512_set1_epi8((char)(1 << i)));

		sel[i] = _mm512_mask_add_epi8(_mm512_set1_epi8((char)0x80), bit, lane4,
					      _mm512_set1_epi8((char)i));
	}
}

TARGET void kern_avx512_lut_tables(const uint8_t *u, size_t lda, uint32_t m, uint32_t k,
				   uint32_t k16, uint8_t *t)
{
	__m512i sel[4];

	table_selectors(sel);
	for (uint32_t r = 0; r < m; r++) {
		const uint8_t *row = u + r * lda;
		uint8_t *out = t + (size_t)r * k16 * 4;

		for (uint32_t p = 0; p < k16; p += LUT_STEP) {
			const uint32_t left = p < k ? k - p : 0;
			const __mmask16 keep = (__mmask16)(left >= 16 ? 0xffff : (1u << left) - 1);

			_mm512_store_si512(out + 4 * p,
					   tables16(_mm_maskz_loadu_epi8(keep, row + p), sel));
		}
	}
}

/*
 * The shuffle indices of 8 channels (half H of a 16-channel plain word) for one step, from the
 * plain words of its 4 groups in plane 0 (W0) and plane 1 (W1): lane L = (W0[L], W1[L]), then
 * byte 16 L + 2 c + j <- the nibble of channel 8 H + c in plane j's word (byte 4 H + c / 2,
 * low nibble for even c).
 */
INLINE __m512i lut_index(const uint64_t w0[4], const uint64_t w1[4], unsigned h)
{
	const __m512i pair = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0);
	const __m512i z = _mm512_permutex2var_epi64(
		_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)w0)), pair,
		_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)w1)));
	/* byte 2 c + j of each lane <- lane byte 8 j + 4 h + c / 2 */
	const __m512i pick =
		_mm512_add_epi8(_mm512_set1_epi8((char)(4 * h)),
				_mm512_set_epi32(0x0b030b03, 0x0a020a02, 0x09010901, 0x08000800,
						 0x0b030b03, 0x0a020a02, 0x09010901, 0x08000800,
						 0x0b030b03, 0x0a020a02, 0x09010901, 0x08000800,
						 0x0b030b03, 0x0a020a02, 0x09010901, 0x08000800));
	const __m512i s = _mm512_shuffle_epi8(z, pick), nib = _mm512_set1_epi8(0x0f);

	return _mm512_mask_blend_epi8(0xccccccccccccccccull, _mm512_and_si512(s, nib),
				      _mm512_and_si512(_mm512_srli_epi16(s, 4), nib));
}

/*
 * Rebuild the 2-bit indices of channels [n, n + 16 NG) for STEPS16 steps into PANEL:
 * [step][8-channel block of the panel][64 bytes]. The planes' words are rebuilt into signed
 * bytes as the vpdpbusd kernels do (8 steps at once in the blocked order, else one), whose
 * sign bits (plane 0) and next bits (plane 1) vpmovb2m turns back into plain words; words past
 * the layer's K are 0.
 */
INLINE void lut_panel(const struct kern_planes *pl, uint32_t n, uint32_t ng, uint32_t steps16,
		      uint8_t *panel)
{
	const uint32_t steps = pl->kp / KERN_KSTEP, blocks = 2 * ng;
	const size_t stride = pl->plane_words;

	for (uint32_t gi = 0; gi < ng; gi++) {
		const uint64_t *p = pl->words + (size_t)(n / KERN_GROUP + gi) * steps;

		for (uint32_t s = 0; s < steps16 * 4; s += 8) {
			uint64_t w0[8], w1[8];
			__m512i b[8];

			if (s + 8 <= steps) {
				rebuild8(p + s, stride, 2, &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
					 &b[6], &b[7]);
			} else {
				for (uint32_t v = 0; v < 8; v++)
					b[v] = s + v < steps ? rebuild(p + s + v, stride, 2)
							     : _mm512_setzero_si512();
			}
			for (uint32_t v = 0; v < 8; v++) {
				w0[v] = _cvtmask64_u64(_mm512_movepi8_mask(b[v]));
				w1[v] = _cvtmask64_u64(
					_mm512_movepi8_mask(_mm512_add_epi8(b[v], b[v])));
			}
			for (uint32_t t = 0; t < 2 && s / 4 + t < steps16; t++)
				for (unsigned h = 0; h < 2; h++)
					_mm512_store_si512(panel + ((size_t)(s / 4 + t) * blocks +
								    2 * gi + h) *
									   64,
							   lut_index(w0 + 4 * t, w1 + 4 * t, h));
		}
	}
}

/* Plane 0 counts -2, plane 1 counts 1 (vpmaddubsw on byte pairs: one word per channel). */
#define COEF_PLANES 0x01fe

/*
 * STEPS steps of the NR rows' tables (row i's at a_i + o) against the panel at PP, for NB
 * (2 or 4) blocks of 8 channels: one shuffle and one byte add per row and block, the byte sums
 * folded into the int16 sums per channel and lane SUMS every FLUSH steps (LUT_FLUSH; exact
 * while |sum k u| <= 2 * 63 * K fits, which the engine checks: engine_fast_lut_serves()).
 */
#define LUT_ROW(i)                                                                      \
	do {                                                                            \
		const __m512i t = _mm512_load_si512(a##i + o);                          \
		c##i##0 = _mm512_add_epi8(c##i##0, _mm512_shuffle_epi8(t, x0));         \
		c##i##1 = _mm512_add_epi8(c##i##1, _mm512_shuffle_epi8(t, x1));         \
		if (nb > 2) {                                                           \
			c##i##2 = _mm512_add_epi8(c##i##2, _mm512_shuffle_epi8(t, x2)); \
			c##i##3 = _mm512_add_epi8(c##i##3, _mm512_shuffle_epi8(t, x3)); \
		}                                                                       \
	} while (0)
#define FOLD(i, b)                                                                                 \
	do {                                                                                       \
		int16_t *s_ = sums + ((i)*4 + (b)) * 32;                                           \
		const __m512i v_ = _mm512_maddubs_epi16(c##i##b, coef);                            \
                                                                                                   \
		_mm512_store_si512(s_, folded ? _mm512_add_epi16(_mm512_load_si512(s_), v_) : v_); \
		c##i##b = z;                                                                       \
	} while (0)
#define FOLD_ROW(i)                 \
	do {                        \
		FOLD(i, 0);         \
		FOLD(i, 1);         \
		if (nb > 2) {       \
			FOLD(i, 2); \
			FOLD(i, 3); \
		}                   \
	} while (0)
#define LUT_FLUSH()                  \
	do {                         \
		FOLD_ROW(0);         \
		FOLD_ROW(1);         \
		FOLD_ROW(2);         \
		FOLD_ROW(3);         \
		FOLD_ROW(4);         \
		if (nr > 5) {        \
			FOLD_ROW(5); \
			FOLD_ROW(6); \
			FOLD_ROW(7); \
			FOLD_ROW(8); \
			FOLD_ROW(9); \
		}                    \
		since = 0;           \
		folded = 1;          \
	} while (0)
#define LUT_STEPS(steps_)                                                              \
	do {                                                                           \
		const uint8_t *const a0 = rp[0], *const a1 = rp[1], *const a2 = rp[2]; \
		const uint8_t *const a3 = rp[3], *const a4 = rp[4], *const a5 = rp[5]; \
		const uint8_t *const a6 = rp[6], *const a7 = rp[7], *const a8 = rp[8]; \
		const uint8_t *const a9 = rp[9];                                       \
		const uint8_t *const pend = pp + (size_t)(steps_)*nb * 64;             \
                                                                                       \
		for (size_t o = 0; pp < pend; pp += nb * 64, o += 64) {                \
			const __m512i x0 = _mm512_load_si512(pp);                      \
			const __m512i x1 = _mm512_load_si512(pp + 64);                 \
			const __m512i x2 = nb > 2 ? _mm512_load_si512(pp + 128) : z;   \
			const __m512i x3 = nb > 2 ? _mm512_load_si512(pp + 192) : z;   \
                                                                                       \
			LUT_ROW(0);                                                    \
			LUT_ROW(1);                                                    \
			LUT_ROW(2);                                                    \
			LUT_ROW(3);                                                    \
			LUT_ROW(4);                                                    \
			if (nr > 5) {                                                  \
				LUT_ROW(5);                                            \
				LUT_ROW(6);                                            \
				LUT_ROW(7);                                            \
				LUT_ROW(8);                                            \
				LUT_ROW(9);                                            \
			}                                                              \
			if (++since == flush)                                          \
				LUT_FLUSH();                                           \
		}                                                                      \
	} while (0)

/*
 * The sums of 16 channels (two 8-channel blocks at S, a word per channel and lane) added over
 * their lanes, as int32 in channel order.
 */
INLINE __m512i channel_sums16(const int16_t *s)
{
	const __m512i a = _mm512_load_si512(s), b = _mm512_load_si512(s + 32);
	/* lanes (x0 + x2, x1 + x3) of a, then of b */
	const __m512i h = _mm512_add_epi16(_mm512_shuffle_i32x4(a, b, 0x44),
					   _mm512_shuffle_i32x4(a, b, 0xee));
	/* lanes 0, 1: the totals of a and b */
	const __m512i t = _mm512_add_epi16(_mm512_shuffle_i32x4(h, h, 0x88),
					   _mm512_shuffle_i32x4(h, h, 0xdd));

	return _mm512_cvtepi16_epi32(_mm512_castsi512_si256(t));
}

/* Rows [r0, r0 + LUT_ROWS(NB)) times the panel's NB blocks of 8 channels from N, then the epilogue. */
INLINE void lut_tile(const struct kern_gemm *g, const uint8_t *panel, uint32_t r0, uint32_t n,
		     const unsigned nb)
{
	const __m512i z = _mm512_setzero_si512();
	const __m512i coef = _mm512_set1_epi16(COEF_PLANES);
	__m512i c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z;
	__m512i c20 = z, c21 = z, c22 = z, c23 = z, c30 = z, c31 = z, c32 = z, c33 = z;
	__m512i c40 = z, c41 = z, c42 = z, c43 = z, c50 = z, c51 = z, c52 = z, c53 = z;
	__m512i c60 = z, c61 = z, c62 = z, c63 = z, c70 = z, c71 = z, c72 = z, c73 = z;
	__m512i c80 = z, c81 = z, c82 = z, c83 = z, c90 = z, c91 = z, c92 = z, c93 = z;
	const uint32_t nr = LUT_ROWS(nb);
	int16_t sums[LUT_MAX_ROWS * 4 * 32] __attribute__((aligned(64)));
	const unsigned flush = g->lut_flush;
	const uint8_t *pp = panel, *rp[LUT_MAX_ROWS] = { NULL };
	const uint32_t rows = r0 + nr <= g->m ? nr : g->m - r0;
	unsigned since = 0, folded = 0;
	uint8_t *q[LUT_MAX_ROWS];

	if (!g->direct) {
		for (uint32_t i = 0; i < nr; i++)
			rp[i] = g->lut + (r0 + (i < rows ? i : rows - 1)) * g->lut_ld;
		LUT_STEPS((g->w->k + LUT_STEP - 1) / LUT_STEP);
	} else {
		const struct bmx_conv_shape *s = g->direct->s;
		const size_t line = (size_t)(s->in_w + s->pad_left + s->pad_right) * s->in_c;
		const uint8_t *first[LUT_MAX_ROWS];

		direct_rows_of(g, r0, nr, first);
		for (uint32_t i = 0; i < nr; i++)
			first[i] = g->lut + 4 * (size_t)(first[i] - g->direct->u);
		/* a kernel row's taps are kernel_w adjacent pixels: one run of steps */
		for (uint32_t kh = 0; kh < s->kernel_h; kh++) {
			for (uint32_t i = 0; i < nr; i++)
				rp[i] = first[i] + 4 * kh * line;
			LUT_STEPS(s->kernel_w * s->in_c / LUT_STEP);
		}
	}
	LUT_FLUSH();
	requant_rows(&g->ep, r0, rows, q);
	for (unsigned h = 0; h < nb / 2; h++) {
		const uint32_t c = n + 16 * h;
		const struct ep16 e = ep16_of(g, c);
		const __m512i sum_k = _mm512_srai_epi32(
			_mm512_load_si512(g->w->sum_b + g->w_bits * g->w->n_pad + c), 8 - 2);
		const __m512i off_k = _mm512_mullo_epi32(_mm512_set1_epi32(g->off), sum_k);

		if (!e.keep)
			continue;
		for (uint32_t i = 0; i < rows; i++) {
			__m512i t = _mm512_sub_epi32(channel_sums16(sums + (i * 4 + 2 * h) * 32),
						     off_k);

			t = _mm512_add_epi32(_mm512_add_epi32(t, t),
					     _mm512_set1_epi32(g->sum_q[r0 + i]));
			epilogue_acc16(g, &e, t, r0 + i, c, q[i]);
		}
	}
}
#undef LUT_ROW
#undef FOLD
#undef FOLD_ROW
#undef LUT_FLUSH
#undef LUT_STEPS

TARGET static void lut_tile16(const struct kern_gemm *g, const uint8_t *panel, uint32_t r0,
			      uint32_t n)
{
	lut_tile(g, panel, r0, n, 2);
}

TARGET static void lut_tile32(const struct kern_gemm *g, const uint8_t *panel, uint32_t r0,
			      uint32_t n)
{
	lut_tile(g, panel, r0, n, 4);
}

/*
 * Channels [n0, n1) in panels of 32 (16 for a last 16 or fewer), only as far as the layer has
 * channels. The panel takes 16 bytes per position of K rounded up to 16, within the task's
 * 2 * KERN_PANEL * kp bytes.
 */
TARGET void kern_avx512_gemm_lut(const struct kern_gemm *g, uint32_t n0, uint32_t n1, int8_t *panel)
{
	const struct kern_planes *pl = g->w;
	const uint32_t end = n1 < pl->n ? n1 : pl->n;
	const uint32_t steps16 = (pl->k + LUT_STEP - 1) / LUT_STEP;
	uint8_t *idx = (uint8_t *)panel;

	for (uint32_t n = n0; n < end;) {
		const uint32_t ng = end - n > KERN_GROUP ? 2 : 1;

		lut_panel(pl, n, ng, steps16, idx);
		for (uint32_t r = 0; r < g->m; r += LUT_ROWS(2 * ng)) {
			if (ng == 2)
				lut_tile32(g, idx, r, n);
			else
				lut_tile16(g, idx, r, n);
		}
		n += ng * KERN_GROUP;
	}
}
/*
 * GEMV (M = 1) by table lookup on the planes in the blocked order, for few weight bits: the
 * rebuild of kern_avx512.c's GEMV costs the same per weight at any bit-width (a byte transpose
 * and vgf2p8affineqb per 8 steps, then vpdpbusd), so at 2 bits it is compute-bound; the lookup
 * costs per plane byte. A blocked line (8 steps of one plane and 16 channels) holds in byte
 * 16 L + 2 V + e the nibbles of channels 4 L + 2 e (low) and 4 L + 2 e + 1 (high) at step V
 * (kern.h), so with the 8 steps' tables in two vectors (128 bytes, step V's at 16 V) the index
 * 16 V + nibble picks the right table: one vpermi2b per 64 nibbles. The tables hold u - min u
 * (each entry <= 4 x 63: the caller checks the row's range), the looked-up bytes are summed
 * as u16 lanes mod 2^16 beside their odd bytes (A += L, B += L >> 8: the even byte's sum is
 * A - (B << 8), exact while each is below 2^16: LUT_GEMV_CHUNK blocks of at most 252), then
 * summed over V and the planes combined: D = -128 S_0 + sum_j 2^(7 - j) S_j. Steps past the
 * last full block keep the plain layout and are looked up one channel at a time.
 */
#define LUT_GEMV_CHUNK 128u

/* Channels 4 L + r of R[r] (each lane L: 4 int32 partial sums) summed, in channel order. */
INLINE __m512i sum4x4(const __m512i r[4])
{
	const __m512i t0 = _mm512_unpacklo_epi32(r[0], r[1]),
		      t1 = _mm512_unpackhi_epi32(r[0], r[1]);
	const __m512i t2 = _mm512_unpacklo_epi32(r[2], r[3]),
		      t3 = _mm512_unpackhi_epi32(r[2], r[3]);

	return _mm512_add_epi32(
		_mm512_add_epi32(_mm512_unpacklo_epi64(t0, t2), _mm512_unpackhi_epi64(t0, t2)),
		_mm512_add_epi32(_mm512_unpacklo_epi64(t1, t3), _mm512_unpackhi_epi64(t1, t3)));
}

/* vpermi2b is AVX512_VBMI, which every CPU with the path's GFNI has (Ice Lake, Zen 4 on) */
#define TARGET_VBMI \
	__attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni,gfni,avx512vbmi")))

TARGET_VBMI static inline __attribute__((always_inline)) void gemv_lut(const struct kern_gemm *g,
								       uint32_t n0, uint32_t n1,
								       const unsigned w, uint8_t lo,
								       uint8_t *tab)
{
	const struct kern_planes *pl = g->w;
	const uint32_t steps = pl->kp / KERN_KSTEP, blocks = steps / 8;
	const size_t stride = pl->plane_words;
	const __m512i nib = _mm512_set1_epi8(0x0f), ones = _mm512_set1_epi16(1);
	/* byte 16 L + 2 V + e of a line: 16 V, the offset of step V's table */
	const __m512i vsel = _mm512_set_epi64(0x7070606050504040ll, 0x3030202010100000ll,
					      0x7070606050504040ll, 0x3030202010100000ll,
					      0x7070606050504040ll, 0x3030202010100000ll,
					      0x7070606050504040ll, 0x3030202010100000ll);
	struct kern_gemm gb = *g;
	__m512i sel[4];

	table_selectors(sel);
	/* the tables of every step (16 bytes each, 4 per vector) of u - lo; 0 past K */
	for (uint32_t p = 0; p < steps * KERN_KSTEP; p += 16) {
		const uint32_t left = p < pl->k ? pl->k - p : 0;
		const __mmask16 keep = (__mmask16)(left >= 16 ? 0xffff : (1u << left) - 1);
		const __m128i u = _mm_maskz_loadu_epi8(keep, g->a + p);

		_mm512_store_si512(tab + 4 * p,
				   tables16(_mm_subs_epu8(u, _mm_set1_epi8((char)lo)), sel));
	}
	gb.off -= lo; /* D = sum (u - lo) b + lo * sum b */
	for (uint32_t n = n0; n < n1; n += KERN_GROUP) {
		const uint64_t *p = pl->words + (size_t)(n / KERN_GROUP) * steps;
		__m512i d = _mm512_setzero_si512();
		int32_t tail[16] = { 0 };
		uint8_t *q;

		for (uint32_t b0 = 0; b0 < blocks; b0 += LUT_GEMV_CHUNK) {
			const uint32_t b1 = blocks - b0 < LUT_GEMV_CHUNK ? blocks
									 : b0 + LUT_GEMV_CHUNK;
			__m512i acc[8][4];

			for (unsigned j = 0; j < w; j++)
				for (unsigned i = 0; i < 4; i++)
					acc[j][i] = _mm512_setzero_si512();
			for (uint32_t b = b0; b < b1; b++) {
				const __m512i t0 = _mm512_load_si512(tab + 128 * (size_t)b);
				const __m512i t1 = _mm512_load_si512(tab + 128 * (size_t)b + 64);

				for (unsigned j = 0; j < w; j++) {
					const uint64_t *line = p + 8 * (size_t)b + j * stride;
					const __m512i x = _mm512_loadu_si512(line);
					/* (x & 0x0f) | vsel, and the same of x >> 4 */
					const __m512i il =
						_mm512_ternarylogic_epi64(x, nib, vsel, 0xea);
					const __m512i ih = _mm512_ternarylogic_epi64(
						_mm512_srli_epi16(x, 4), nib, vsel, 0xea);
					const __m512i l = _mm512_permutex2var_epi8(t0, il, t1);
					const __m512i h = _mm512_permutex2var_epi8(t0, ih, t1);

					_mm_prefetch((const char *)line + PREFETCH_LUT(w),
						     _MM_HINT_T0);
					acc[j][0] = _mm512_add_epi16(acc[j][0], l);
					acc[j][1] = _mm512_add_epi16(acc[j][1],
								     _mm512_srli_epi16(l, 8));
					acc[j][2] = _mm512_add_epi16(acc[j][2], h);
					acc[j][3] = _mm512_add_epi16(acc[j][3],
								     _mm512_srli_epi16(h, 8));
				}
			}
			for (unsigned j = 0; j < w; j++) {
				/* u16 lanes (L, V): channels 4 L + 0, 4 L + 2 (low), 4 L + 1, 4 L + 3 */
				const __m512i r[4] = {
					_mm512_madd_epi16(
						_mm512_sub_epi16(acc[j][0],
								 _mm512_slli_epi16(acc[j][1], 8)),
						ones),
					_mm512_madd_epi16(
						_mm512_sub_epi16(acc[j][2],
								 _mm512_slli_epi16(acc[j][3], 8)),
						ones),
					_mm512_madd_epi16(acc[j][1], ones),
					_mm512_madd_epi16(acc[j][3], ones),
				};
				const __m512i sj = _mm512_slli_epi32(sum4x4(r), 7 - j);

				d = j ? _mm512_add_epi32(d, sj) : _mm512_sub_epi32(d, sj);
			}
		}
		for (uint32_t s = 8 * blocks; s < steps; s++) /* the plain tail */
			for (unsigned j = 0; j < w; j++)
				for (unsigned c = 0; c < 16; c++) {
					const int32_t v =
						tab[16 * s + (p[s + j * stride] >> (4 * c) & 15)];

					tail[c] += j ? v << (7 - j) : -(v << 7);
				}
		d = _mm512_add_epi32(d, _mm512_loadu_si512(tail));
		const struct ep16 c = ep16_of(&gb, n);

		requant_rows(&g->ep, 0, 1, &q);
		epilogue_gemm16(&gb, &c, d, 0, n, q);
	}
}

TARGET_VBMI int kern_avx512_gemv_lut(const struct kern_gemm *g, uint32_t n0, uint32_t n1,
				     unsigned w, uint8_t *tab)
{
	__m512i mn = _mm512_set1_epi8((char)0xff), mx = _mm512_setzero_si512();
	uint8_t lo, hi;

	for (uint32_t i = 0; i < g->w->k; i += 64) {
		const uint32_t left = g->w->k - i;
		const __mmask64 keep = left >= 64 ? ~0ull : (1ull << left) - 1;
		const __m512i v = _mm512_maskz_loadu_epi8(keep, g->a + i);

		mn = _mm512_min_epu8(mn, _mm512_mask_mov_epi8(mn, keep, v));
		mx = _mm512_max_epu8(mx, v);
	}
	/* bytewise min and max of the vectors: fold halves down to one byte */
	mn = _mm512_min_epu8(mn, _mm512_shuffle_i64x2(mn, mn, 0x4e));
	mx = _mm512_max_epu8(mx, _mm512_shuffle_i64x2(mx, mx, 0x4e));
	mn = _mm512_min_epu8(mn, _mm512_shuffle_i64x2(mn, mn, 0xb1));
	mx = _mm512_max_epu8(mx, _mm512_shuffle_i64x2(mx, mx, 0xb1));
	mn = _mm512_min_epu8(mn, _mm512_bsrli_epi128(mn, 8));
	mx = _mm512_max_epu8(mx, _mm512_bsrli_epi128(mx, 8));
	mn = _mm512_min_epu8(mn, _mm512_bsrli_epi128(mn, 4));
	mx = _mm512_max_epu8(mx, _mm512_bsrli_epi128(mx, 4));
	mn = _mm512_min_epu8(mn, _mm512_bsrli_epi128(mn, 2));
	mx = _mm512_max_epu8(mx, _mm512_bsrli_epi128(mx, 2));
	mn = _mm512_min_epu8(mn, _mm512_bsrli_epi128(mn, 1));
	mx = _mm512_max_epu8(mx, _mm512_bsrli_epi128(mx, 1));
	lo = (uint8_t)_mm_cvtsi128_si32(_mm512_castsi512_si128(mn));
	hi = (uint8_t)_mm_cvtsi128_si32(_mm512_castsi512_si128(mx));
	if (!__builtin_cpu_supports("avx512vbmi") || g->w->k == 0 || hi - lo > 63)
		return -1;
	switch (w) {
	case 2:
		gemv_lut(g, n0, n1, 2, lo, tab);
		return 0;
	case 3:
		gemv_lut(g, n0, n1, 3, lo, tab);
		return 0;
	case 4:
		gemv_lut(g, n0, n1, 4, lo, tab);
		return 0;
	default:
		return -1;
	}
}
#endif
