/* SPDX-License-Identifier: MIT */
/*
 * kern_avx512.c — the AVX-512 path (BW, VL, VNNI, GFNI): weights are rebuilt from their
 * bit-planes into signed bytes, 8 steps at a time by a byte transpose and vgf2p8affineqb (the
 * planes in the blocked order of kern.h), else with one masked byte add per plane (a 64-bit
 * plane word is a mask register), laid out as vpdpbusd wants them (16 channels x 4
 * positions), and multiplied with 4 broadcast activation bytes. GEMV streams the planes (w
 * sequential streams, prefetched); GEMM rebuilds a panel of up to 48 channels once and reuses
 * it over every row in 8 x 48 (or 32, 16) tiles, the rows being im2col rows or, for
 * convolutions, windows read in place from the padded input (kern_direct). Depthwise takes two
 * taps per vpdpwssd on the padded input. Epilogues run on the int32 results in registers and
 * may also write the next layer's codes (kern_requant). The exact identity is in kern.h.
 *
 * Compiled with function-level target attributes, so the file builds on any x86-64 compiler
 * flags and runs only where bmx_kernels_supported(BMX_KERNELS_AVX512). Memory: activation rows
 * are read 4 bytes at a time up to kp (rows are padded to kp; a window's taps hold in_c bytes
 * each, in_c % 4 == 0); depthwise reads 16 bytes per tap, which may run into the next pixel or
 * the input's 64 bytes of slack (their weights are 0); weights and panels are 64-byte aligned;
 * outputs are written with masked stores, so nothing is written past the last channel.
 */
#if defined(__x86_64__)
#include "kern_avx512_inline.h"

/*
 * How far ahead GEMV prefetches each of its W plane streams: about 8 KiB in flight in all
 * (measured on the 4096 x 4096 GEMV from DRAM, one core: 1 KiB per plane was best at 8 bits,
 * 2-4 KiB at 4 and 2 bits, 0.25 -> 0.20 ms at 4 bits).
 */
#define PREFETCH_BYTES(w) (8192u / (w))

/*
 * One row (M = 1): each 16-channel group's planes are streamed once, rebuilt in registers and
 * multiplied at once; four accumulators hide vpdpbusd's latency.
 */
INLINE void gemv(const struct kern_gemm *g, uint32_t n0, uint32_t n1, unsigned w)
{
	const struct kern_planes *pl = g->w;
	const uint32_t steps = pl->kp / KERN_KSTEP;
	const size_t stride = pl->plane_words;

	for (uint32_t n = n0; n < n1; n += KERN_GROUP) {
		const uint64_t *p = pl->words + (size_t)(n / KERN_GROUP) * steps;
		__m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
		uint32_t s = 0;

		for (; w >= 2 && s + 8 <= steps; s += 8) {
			const uint8_t *a = g->a + 4 * s;
			__m512i b0, b1, b2, b3, b4, b5, b6, b7;

			for (unsigned j = 0; j < w; j++) /* 64 bytes of each plane per iteration */
				_mm_prefetch((const char *)(p + s + j * stride) + PREFETCH_BYTES(w),
					     _MM_HINT_T0);
			rebuild8(p + s, stride, w, &b0, &b1, &b2, &b3, &b4, &b5, &b6, &b7);
			a0 = _mm512_dpbusd_epi32(a0, bcast4(a), b0);
			a1 = _mm512_dpbusd_epi32(a1, bcast4(a + 4), b1);
			a2 = _mm512_dpbusd_epi32(a2, bcast4(a + 8), b2);
			a3 = _mm512_dpbusd_epi32(a3, bcast4(a + 12), b3);
			a0 = _mm512_dpbusd_epi32(a0, bcast4(a + 16), b4);
			a1 = _mm512_dpbusd_epi32(a1, bcast4(a + 20), b5);
			a2 = _mm512_dpbusd_epi32(a2, bcast4(a + 24), b6);
			a3 = _mm512_dpbusd_epi32(a3, bcast4(a + 28), b7);
		}
		for (; s + 4 <= steps; s += 4) {
			if (((uintptr_t)(p + s) & 63) < 32)
				for (unsigned j = 0; j < w; j++)
					_mm_prefetch((const char *)(p + s + j * stride) +
							     PREFETCH_BYTES(w),
						     _MM_HINT_T0);
			a0 = _mm512_dpbusd_epi32(a0, bcast4(g->a + 4 * s),
						 rebuild(p + s, stride, w));
			a1 = _mm512_dpbusd_epi32(a1, bcast4(g->a + 4 * s + 4),
						 rebuild(p + s + 1, stride, w));
			a2 = _mm512_dpbusd_epi32(a2, bcast4(g->a + 4 * s + 8),
						 rebuild(p + s + 2, stride, w));
			a3 = _mm512_dpbusd_epi32(a3, bcast4(g->a + 4 * s + 12),
						 rebuild(p + s + 3, stride, w));
		}
		for (; s < steps; s++)
			a0 = _mm512_dpbusd_epi32(a0, bcast4(g->a + 4 * s),
						 rebuild(p + s, stride, w));
		const struct ep16 c = ep16_of(g, n);

		a0 = _mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3));
		uint8_t *q;

		requant_rows(&g->ep, 0, 1, &q);
		epilogue_gemm16(g, &c, a0, 0, n, q);
	}
}

/*
 * Rebuild the NG groups of channels [n, n + 16 NG) into PANEL: [step][group][64 bytes], so that
 * a tile's NG loads of one step are adjacent.
 */
INLINE void rebuild_panel(const struct kern_planes *pl, uint32_t n, unsigned w, int8_t *panel,
			  uint32_t ng)
{
	const uint32_t steps = pl->kp / KERN_KSTEP;
	const size_t stride = pl->plane_words, row = (size_t)ng * 64;

	for (uint32_t gi = 0; gi < ng; gi++) {
		const uint64_t *p = pl->words + (size_t)(n / KERN_GROUP + gi) * steps;
		int8_t *out = panel + (size_t)gi * 64;
		uint32_t s = 0;

		for (; s + 8 <= steps; s += 8) {
			__m512i b[8];

			rebuild8(p + s, stride, w, &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &b[6],
				 &b[7]);
			for (unsigned i = 0; i < 8; i++)
				_mm512_store_si512(out + (s + i) * row, b[i]);
		}
		for (; s < steps; s++)
			_mm512_store_si512(out + s * row, rebuild(p + s, stride, w));
	}
}

/*
 * STEPS reduction steps of the 8 rows RP (each read from its own start) against the panel
 * from step S0, for NG (1..3) groups of 16 channels: 8 x NG named accumulators (gcc allocates
 * an array of vectors badly), 8 broadcasts and NG adjacent loads per 8 NG vpdpbusd. Three
 * groups (24 accumulators, 28 of the 32 registers) amortize the broadcasts best; one group
 * keeps only 8 vpdpbusd in flight, under their latency times throughput. The rows are read
 * at one offset O from 8 bases and the panel through one pointer, so that the loop's
 * addresses fit the general registers (an array of row pointers indexed by the step made gcc
 * keep some of them in vector registers). Each step also prefetches one line of [PF, PF_END),
 * the next panel's words in one plane (gemm()).
 */
#define TILE_ROW(i)                                                    \
	do {                                                           \
		const __m512i a = bcast4(a##i + o);                    \
		c##i##0 = _mm512_dpbusd_epi32(c##i##0, a, b0);         \
		if (ng > 1)                                            \
			c##i##1 = _mm512_dpbusd_epi32(c##i##1, a, b1); \
		if (ng > 2)                                            \
			c##i##2 = _mm512_dpbusd_epi32(c##i##2, a, b2); \
	} while (0)
#define TILE_STEPS(s0, steps_)                                                         \
	do {                                                                           \
		const int8_t *pp = panel + (size_t)(s0)*ng * 64;                       \
		const int8_t *const pend = pp + (size_t)(steps_)*ng * 64;              \
		const uint8_t *const a0 = rp[0], *const a1 = rp[1], *const a2 = rp[2]; \
		const uint8_t *const a3 = rp[3], *const a4 = rp[4], *const a5 = rp[5]; \
		const uint8_t *const a6 = rp[6], *const a7 = rp[7];                    \
                                                                                       \
		for (size_t o = 0; pp < pend; pp += ng * 64, o += 4) {                 \
			if (pf < pf_end) {                                             \
				_mm_prefetch(pf, _MM_HINT_T0);                         \
				pf += 64;                                              \
			}                                                              \
			const __m512i b0 = _mm512_load_si512(pp);                      \
			const __m512i b1 = ng > 1 ? _mm512_load_si512(pp + 64) : z;    \
			const __m512i b2 = ng > 2 ? _mm512_load_si512(pp + 128) : z;   \
                                                                                       \
			TILE_ROW(0);                                                   \
			TILE_ROW(1);                                                   \
			TILE_ROW(2);                                                   \
			TILE_ROW(3);                                                   \
			TILE_ROW(4);                                                   \
			TILE_ROW(5);                                                   \
			TILE_ROW(6);                                                   \
			TILE_ROW(7);                                                   \
		}                                                                      \
	} while (0)
#define TILE_OUT(i)                                                                             \
	do {                                                                                    \
		if (r0 + i < g->m) {                                                            \
			epilogue_gemm16(g, &e0, c##i##0, r0 + i, n, q[i]);                      \
			if (ng > 1)                                                             \
				epilogue_gemm16(g, &e1, c##i##1, r0 + i, n + KERN_GROUP, q[i]); \
			if (ng > 2)                                                             \
				epilogue_gemm16(g, &e2, c##i##2, r0 + i, n + 2 * KERN_GROUP,    \
						q[i]);                                          \
		}                                                                               \
	} while (0)

/* Rows [r0, r0 + 8) times the panel's NG groups of channels from N; prefetches [PF, PF_END). */
INLINE void tile(const struct kern_gemm *g, const int8_t *panel, uint32_t r0, uint32_t n,
		 const unsigned ng, const char *pf, const char *pf_end)
{
	const uint32_t steps = g->w->kp / KERN_KSTEP;
	const __m512i z = _mm512_setzero_si512();
	__m512i c00 = z, c01 = z, c02 = z, c10 = z, c11 = z, c12 = z, c20 = z, c21 = z, c22 = z;
	__m512i c30 = z, c31 = z, c32 = z, c40 = z, c41 = z, c42 = z, c50 = z, c51 = z, c52 = z;
	__m512i c60 = z, c61 = z, c62 = z, c70 = z, c71 = z, c72 = z;
	const uint8_t *rp[8];
	uint8_t *q[8];
	struct ep16 e0, e1, e2;

	requant_rows(&g->ep, r0, r0 + 8 <= g->m ? 8 : g->m - r0, q);
	if (!g->direct) {
		for (uint32_t i = 0; i < 8; i++)
			rp[i] = g->a + (r0 + i < g->m ? r0 + i : g->m - 1) * g->lda;
		TILE_STEPS(0, steps);
	} else {
		const struct bmx_conv_shape *s = g->direct->s;
		const uint32_t cs = s->in_c / KERN_KSTEP; /* steps per tap */
		const size_t line = (size_t)(s->in_w + s->pad_left + s->pad_right) * s->in_c;
		const uint8_t *first[8];

		direct_rows_of(g, r0, 8, first);
		for (uint32_t kh = 0; kh < s->kernel_h; kh++)
			for (uint32_t kw = 0; kw < s->kernel_w; kw++) {
				const size_t tap = kh * line + (size_t)kw * s->in_c;

				for (uint32_t i = 0; i < 8; i++)
					rp[i] = first[i] + tap;
				TILE_STEPS((kh * s->kernel_w + kw) * cs, cs);
			}
	}
	e0 = ep16_of(g, n);
	if (ng > 1)
		e1 = ep16_of(g, n + KERN_GROUP);
	if (ng > 2)
		e2 = ep16_of(g, n + 2 * KERN_GROUP);
	TILE_OUT(0);
	TILE_OUT(1);
	TILE_OUT(2);
	TILE_OUT(3);
	TILE_OUT(4);
	TILE_OUT(5);
	TILE_OUT(6);
	TILE_OUT(7);
}
#undef TILE_ROW
#undef TILE_STEPS
#undef TILE_OUT

TARGET static void tile8x16(const struct kern_gemm *g, const int8_t *panel, uint32_t r0, uint32_t n,
			    const char *pf, const char *pf_end)
{
	tile(g, panel, r0, n, 1, pf, pf_end);
}

TARGET static void tile8x32(const struct kern_gemm *g, const int8_t *panel, uint32_t r0, uint32_t n,
			    const char *pf, const char *pf_end)
{
	tile(g, panel, r0, n, 2, pf, pf_end);
}

TARGET static void tile8x48(const struct kern_gemm *g, const int8_t *panel, uint32_t r0, uint32_t n,
			    const char *pf, const char *pf_end)
{
	tile(g, panel, r0, n, 3, pf, pf_end);
}

/* How many groups of 16 channels the panel at N takes, of the channels up to END. */
static uint32_t panel_groups(uint32_t n, uint32_t end)
{
	const uint32_t left = n < end ? (end - n + KERN_GROUP - 1) / KERN_GROUP : 0;

	return left >= 3 && left != 4 ? 3 : left >= 2 ? 2 : left;
}

/*
 * The channels [n0, n1) in panels of 3 groups of 16 (2 + 2 for 4 groups left, then 2 or 1),
 * only as far as the layer has channels: 48 channels are one 48-wide panel, not 32 + 32 with
 * a quarter of the multiplies on padding. The scratch panel holds 4 groups. While the tiles
 * multiply a panel, tile t prefetches plane t's words of the next panel, a line per step
 * (with 8 tiles or more at 8 bits, all of them), so that its rebuild does not wait on L3 or
 * DRAM with no multiply running: 64 x 4096 x 4096 at 8 bits, 2.76-2.79 -> 2.45-2.51 ms on
 * one core (bench/kernels --shape 64,4096,4096); a burst of prefetches before each tile, or
 * rebuilding the next panel in pieces between tiles, gained nothing.
 */
INLINE void gemm(const struct kern_gemm *g, uint32_t n0, uint32_t n1, int8_t *panel, unsigned w)
{
	typedef void tile_fn(const struct kern_gemm *, const int8_t *, uint32_t, uint32_t,
			     const char *, const char *);
	static tile_fn *const tiles[4] = { NULL, tile8x16, tile8x32, tile8x48 };
	const struct kern_planes *pl = g->w;
	const uint32_t end = n1 < pl->n ? n1 : pl->n, steps = pl->kp / KERN_KSTEP;

	for (uint32_t n = n0; n < end;) {
		const uint32_t ng = panel_groups(n, end), next = n + ng * KERN_GROUP;
		const size_t ahead = (size_t)panel_groups(next, end) * steps * sizeof(uint64_t);
		const uint64_t *p = pl->words + (size_t)(next / KERN_GROUP) * steps;

		rebuild_panel(pl, n, w, panel, ng);
		for (uint32_t r = 0, t = 0; r < g->m; r += 8, t++) {
			const char *pf = (const char *)(p + (t < w ? t : 0) * pl->plane_words);

			tiles[ng](g, panel, r, n, pf, t < w ? pf + ahead : pf);
		}
		n = next;
	}
}

/*
 * The GEMV takes table lookup (kern_avx512_lut.c) up to this many weight bits, where its cost
 * per plane byte beats the rebuild's per weight (docs/kernels.md).
 */
#define GEMV_LUT_MAX_W 2u

/* One instance per weight bit-width, so the plane loops unroll. */
#define FOR_BITS(X) X(2) X(3) X(4) X(5) X(6) X(7) X(8)
#define DEFINE(W)                                                                         \
	TARGET static void gemm_w##W(const struct kern_gemm *g, uint32_t n0, uint32_t n1, \
				     int8_t *panel)                                       \
	{                                                                                 \
		if (g->m == 1 && !g->direct) {                                            \
			if (W > GEMV_LUT_MAX_W ||                                         \
			    kern_avx512_gemv_lut(g, n0, n1, W, (uint8_t *)panel) < 0)     \
				gemv(g, n0, n1, W);                                       \
		} else                                                                    \
			gemm(g, n0, n1, panel, W);                                        \
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
	__m512 mult =
		_mm512_mul_ps(_mm512_set1_ps(ep->step), _mm512_maskz_loadu_ps(keep, ep->m + c));
	__m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), mult);

	y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(keep, ep->beta + c));
	if (ep->relu)
		y = _mm512_max_ps(y, _mm512_setzero_ps());
	_mm512_mask_storeu_ps(ep->y + r * ep->ldy + c, keep, y);
}

/* Depthwise (kern_depthwise_template.h) at 16 channels per vector, two taps per vpdpwssd. */
typedef int32_t dw_i32 __attribute__((vector_size(64)));
#define DW_LANES 16u

INLINE dw_i32 dw_weights(const struct kern_depthwise *d, uint32_t tap, uint32_t c)
{
	const uint32_t C = d->s->in_c;
	const __mmask16 keep = (__mmask16)(C - c >= 16 ? 0xffff : (1u << (C - c)) - 1);
	const __m128i shift = _mm_cvtsi32_si128((int)(8 - d->w_bits));
	const int8_t *wp = d->w->codes + (size_t)tap * d->w->c_pad + c;
	const __m512i k = _mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *)(const void *)wp));
	const __m512i v = _mm512_sra_epi32(k, shift);

	return (dw_i32)_mm512_maskz_or_epi32(keep, _mm512_slli_epi32(v, 1), _mm512_set1_epi32(1));
}

INLINE __m128i dw_bytes(const uint8_t *at)
{
	return _mm_loadu_si128((const __m128i *)(const void *)at);
}

INLINE dw_i32 dw_step(dw_i32 acc, __m128i a, __m128i b, dw_i32 w)
{
	const __m256i ab = _mm256_set_m128i(_mm_unpackhi_epi8(a, b), _mm_unpacklo_epi8(a, b));

	return (dw_i32)_mm512_dpwssd_epi32((__m512i)acc, _mm512_cvtepu8_epi16(ab), (__m512i)w);
}

INLINE void dw_epilogue(const struct kern_epilogue *ep, dw_i32 acc, uint32_t r, uint32_t c,
			uint32_t channels)
{
	epilogue16(ep, (__m512i)acc, r, c, channels);
}

#include "kern_depthwise_template.h"

TARGET static void depthwise(const struct kern_depthwise *d, uint32_t r0, uint32_t r1)
{
	dw_run(d, r0, r1);
}

TARGET static void quantize(const float *x, size_t n, float inv, int32_t lo, int32_t hi,
			    int32_t off, uint8_t *u)
{
	for (size_t i = 0; i < n; i += 16) {
		const __mmask16 keep = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);

		const __m512 xi = _mm512_maskz_loadu_ps(keep, x + i);

		store_codes16(u + i, keep, codes16(xi, inv, lo, hi, off));
	}
}

const struct kern_ops kern_ops_avx512 = {
	.path = BMX_KERNELS_AVX512,
	.gemm = gemm_any,
	.depthwise = depthwise,
	.quantize = quantize,
	.row_sums = kern_avx512_row_sums,
	.relu = kern_avx512_relu,
	.maxpool = kern_avx512_maxpool,
	.add = kern_avx512_add,
	.global_avgpool = kern_avx512_global_avgpool,
	.direct = 1,
	.plane_order = KERN_PLANES_BLOCKED,
	.requant = 1,
	.gemm_lut = kern_avx512_gemm_lut,
	.lut_tables = kern_avx512_lut_tables,
	.lut_w_mask = 1u << 2,
	.lut_max_u = 63,
	.lut_rule_min_n = 128,
	.lut_rule_max_a = 3,
	.lut_rule_direct_only = 1,
};
#endif
