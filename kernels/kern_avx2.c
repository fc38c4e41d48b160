/* SPDX-License-Identifier: MIT */
/*
 * kern_avx2.c — the AVX2 and AVX-VNNI paths: the same bit-plane layout and exact identity as the
 * AVX-512 path (kern.h), for x86-64 CPUs without AVX-512, and the same structure (panels rebuilt
 * once per 16/32 channels and run over every row, no panel past the layer's channels, windows
 * read in place from the padded input; depthwise and the float kernels are in kern_avx2_float.c).
 * Batch-1 rows (GEMV) never rebuild bytes: they look the planes' nibbles up in tables of sums of
 * the row's activations (gemv_lut()). For the GEMMs, plane words are expanded to byte masks
 * with a byte shuffle and compare. At 7 and 8 bits the bytes b are widened to int16 and
 * multiplied with vpmaddwd (vpmaddubsw would saturate: 2 * 255 * 128 > 32767); at 2..6 bits
 * vpmaddubsw multiplies the codes k, which cannot saturate; on AVX-VNNI CPUs vpdpbusd does
 * either in one instruction.
 *
 * Compiled with function-level target attributes. Memory: activation rows are read 4 bytes at a
 * time up to kp (a window's taps hold in_c bytes each, in_c % 4 == 0); panels are 32-byte
 * aligned; per-channel tables are read and outputs written with vmaskmovps in tails, so nothing
 * past the last channel is touched.
 */
#if defined(__x86_64__)
#include "kern_avx2_inline.h"

/* 0xff in byte i where bit i of M is set. */
INLINE __m256i bits_to_bytes(uint32_t m)
{
	const __m256i pick = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2,
					      2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
	const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
	__m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)m), pick);

	return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

/* Signed bytes b of channels [8 * HALF, 8 * HALF + 8) x 4 positions of the word at P. */
INLINE __m256i rebuild(const uint64_t *p, size_t stride, unsigned w, unsigned half)
{
	__m256i b = _mm256_and_si256(bits_to_bytes((uint32_t)(p[0] >> (32 * half))),
				     _mm256_set1_epi8((char)0x80));

	for (unsigned j = 1; j < w; j++)
		b = _mm256_or_si256(
			b, _mm256_and_si256(bits_to_bytes((uint32_t)(p[j * stride] >> (32 * half))),
					    _mm256_set1_epi8((char)(0x80 >> j))));
	return b;
}

/* Pair sums of two accumulators (channels 4c..4c+3 each) into 8 channel sums, in order. */
INLINE __m256i pairs8(__m256i lo, __m256i hi)
{
	return _mm256_permute4x64_epi64(_mm256_hadd_epi32(lo, hi), _MM_SHUFFLE(3, 1, 2, 0));
}

/* Rebuild NG groups of channels from N into PANEL as int16: [group][step][16 channels x 4]. */
INLINE void rebuild_panel(const struct kern_planes *pl, uint32_t n, unsigned w, int16_t *panel,
			  unsigned ng)
{
	const uint32_t steps = pl->kp / KERN_KSTEP;

	for (uint32_t gi = 0; gi < ng; gi++)
		for (uint32_t s = 0; s < steps; s++)
			for (unsigned h = 0; h < 2; h++) {
				const uint64_t *p =
					pl->words + kern_plane_word(pl, n / KERN_GROUP + gi, s);
				__m256i b = rebuild(p, pl->plane_words, w, h);
				__m256i *out =
					(__m256i *)(panel + ((size_t)gi * steps + s) * 64 + h * 32);

				_mm256_store_si256(out,
						   _mm256_cvtepi8_epi16(_mm256_castsi256_si128(b)));
				_mm256_store_si256(
					out + 1,
					_mm256_cvtepi8_epi16(_mm256_extracti128_si256(b, 1)));
			}
}

/* The 4 activation bytes at P, widened, in every group of 4 int16 lanes. */
INLINE __m256i bcast4(const uint8_t *p)
{
	int32_t v;

	memcpy(&v, p, sizeof(v));
	return _mm256_cvtepu8_epi16(_mm_set1_epi32(v));
}

/*
 * Runs STEP(s0 + j, j) over a row's reduction steps: all kp / 4 at once for im2col rows, or
 * tap by tap (in_c / 4 steps each, from the tap's offset in the padded input, TAP) for a window
 * read in place.
 */
#define FOR_STEPS(g, STEP)                                                                    \
	do {                                                                                  \
		if (!(g)->direct) {                                                           \
			const size_t tap = 0;                                                 \
			for (uint32_t j = 0; j < (g)->w->kp / KERN_KSTEP; j++)                \
				STEP(j, j);                                                   \
		} else {                                                                      \
			const struct bmx_conv_shape *s_ = (g)->direct->s;                     \
			const uint32_t cs = s_->in_c / KERN_KSTEP;                            \
			const size_t line =                                                   \
				(size_t)(s_->in_w + s_->pad_left + s_->pad_right) * s_->in_c; \
			uint32_t s0 = 0;                                                      \
			for (uint32_t kh = 0; kh < s_->kernel_h; kh++)                        \
				for (uint32_t kw = 0; kw < s_->kernel_w; kw++, s0 += cs) {    \
					const size_t tap = kh * line + (size_t)kw * s_->in_c; \
					for (uint32_t j = 0; j < cs; j++)                     \
						STEP(s0 + j, j);                              \
				}                                                             \
		}                                                                             \
	} while (0)

#define MADD_STEP(at, j)                                                                     \
	do {                                                                                 \
		const __m256i *w = (const __m256i *)(const void *)(panel + (size_t)(at)*64); \
		const __m256i x = bcast4(rp[0] + tap + 4 * (j)),                             \
			      y = bcast4(rp[1] + tap + 4 * (j));                             \
		const __m256i w0 = _mm256_load_si256(w), w1 = _mm256_load_si256(w + 1);      \
		const __m256i w2 = _mm256_load_si256(w + 2), w3 = _mm256_load_si256(w + 3);  \
                                                                                             \
		a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(x, w0));                         \
		a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(x, w1));                         \
		a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(x, w2));                         \
		a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(x, w3));                         \
		b0 = _mm256_add_epi32(b0, _mm256_madd_epi16(y, w0));                         \
		b1 = _mm256_add_epi32(b1, _mm256_madd_epi16(y, w1));                         \
		b2 = _mm256_add_epi32(b2, _mm256_madd_epi16(y, w2));                         \
		b3 = _mm256_add_epi32(b3, _mm256_madd_epi16(y, w3));                         \
	} while (0)

/* Rows [r0, r0 + 2) times the 16 channels of one panel group starting at channel N. */
INLINE void tile2x16(const struct kern_gemm *g, const uint8_t *const rp[2], const int16_t *panel,
		     uint32_t r0, uint32_t n, const struct ep8 *e)
{
	const __m256i z = _mm256_setzero_si256();
	__m256i a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z;

	FOR_STEPS(g, MADD_STEP);
	epilogue8(g, e, pairs8(a0, a1), r0, n);
	epilogue8(g, e + 1, pairs8(a2, a3), r0, n + 8);
	if (r0 + 1 < g->m) {
		epilogue8(g, e, pairs8(b0, b1), r0 + 1, n);
		epilogue8(g, e + 1, pairs8(b2, b3), r0 + 1, n + 8);
	}
}
#undef MADD_STEP

/*
 * The panel loop of this file's three GEMMs: the channels [n0, n1) of G in panels of 32 (PANEL,
 * GROUP elements per group of 16), each rebuilt once (REBUILD(n, ng)) and run over every row in
 * tiles of ROWS rows (TILE(rows, panel, r, n, ep8 constants) per group of 16 channels); a
 * panel's second group only if the layer has channels there (48 channels: 32 + 16, not
 * 32 + 32 with a quarter of the multiplies on padding). K_VALUED: the epilogue's constants for
 * k-valued panels. A macro, so that each tile inlines into its own target's function.
 */
#define PANEL_LOOP(g, n0, n1, panel, group, ROWS, K_VALUED, REBUILD, TILE)                         \
	do {                                                                                       \
		const uint32_t end_ = (n1) < (g)->w->n ? (n1) : (g)->w->n;                         \
		struct ep8 e_[4];                                                                  \
                                                                                                   \
		for (uint32_t n_ = (n0); n_ < end_; n_ += KERN_PANEL) {                            \
			const unsigned ng_ = end_ - n_ > KERN_GROUP ? 2 : 1;                       \
                                                                                                   \
			REBUILD(n_, ng_);                                                          \
			for (unsigned i_ = 0; i_ < 2 * ng_; i_++)                                  \
				ep8_init((g), n_ + 8 * i_, &e_[i_], (K_VALUED));                   \
			for (uint32_t r_ = 0; r_ < (g)->m; r_ += (ROWS)) {                         \
				const uint8_t *rp_[ROWS];                                          \
                                                                                                   \
				rows_of((g), r_, (ROWS), rp_);                                     \
				TILE(rp_, (panel), r_, n_, e_);                                    \
				if (ng_ > 1)                                                       \
					TILE(rp_, (panel) + (group), r_, n_ + KERN_GROUP, e_ + 2); \
			}                                                                          \
		}                                                                                  \
	} while (0)

INLINE void gemm(const struct kern_gemm *g, uint32_t n0, uint32_t n1, int8_t *panel, unsigned w)
{
	const size_t group = (size_t)g->w->kp / KERN_KSTEP * 64; /* int16 per panel group */
	int16_t *p16 = (int16_t *)(void *)panel;

#define REBUILD(n, ng) rebuild_panel(g->w, n, w, p16, ng)
#define TILE(rp, p, r, n, e) tile2x16(g, rp, p, r, n, e)
	PANEL_LOOP(g, n0, n1, p16, group, 2, 0, REBUILD, TILE);
#undef REBUILD
#undef TILE
}

#define FOR_BITS(X) X(2) X(3) X(4) X(5) X(6) X(7) X(8)
#define DEFINE(W)                                                                         \
	TARGET static void gemm_w##W(const struct kern_gemm *g, uint32_t n0, uint32_t n1, \
				     int8_t *panel)                                       \
	{                                                                                 \
		gemm(g, n0, n1, panel, W);                                                \
	}
DEFINE(7)
DEFINE(8) /* 2..6 bits: gemm_ubs() below */
#undef DEFINE

/*
 * GEMV (M = 1) by table lookup on the planes, no byte ever rebuilt. For each reduction step s
 * (positions 4s..4s+3) a table T_s[m] = sum of the u at the positions whose bit is set in m
 * (16 entries, 0..1020, stored as a low-byte and a high-byte table for vpshufb) is made once
 * per call; a plane's nibble for channel o at step s (the paired order's bits 4c..4c+3) is
 * then the index of sum over those 4 positions of u * bit, and
 *   D = sum u b = -128 S_0 + sum_{0 < j < w} 2^(7-j) S_j,  S_j = sum_s T_s[nibble of plane j],
 * exact. Per 32 bytes of a plane (32 channels x 2 steps, a 128-bit lane per step): 3 ops for
 * the indices, 4 vpshufb, 4 unpacks into u16 sums and 4 adds, for 256 one-bit products; the
 * cost per byte is the same at every bit-width, so w bits cost w/8 of 8 (the decode the
 * rebuild paid per plane and byte is gone). Each plane's u16 sums take LUT_CHUNK step pairs
 * (up to 64 x 1020), then are widened, shifted by its weight and added into int32. The tables
 * hold u - min u over the row (D gains min u * sum b, folded into the epilogue's offset); where
 * that spans at most 255 / 4 (a layer at up to 6 activation bits) they fit their low bytes and
 * the high-byte lookups are skipped: 2 vpshufb per 32 bytes instead of 4.
 */
#define LUT_CHUNK 64u
/*
 * Step pairs of one plane swept per visit (4 lines of 64 bytes), the planes visited in turn
 * with their u16 sums kept in memory, so that all w streams advance together as on AVX-512
 * (a plane swept a whole chunk at a time ran at 8 bits from DRAM 1.18-1.38 ms against
 * 1.00-1.07: the memory does not follow 8 streams touched in bursts of 2 KiB).
 */
#define LUT_STRIP 8u
/* Bytes ahead each of the W plane streams is prefetched: 4 KiB in flight in all. */
#define LUT_PREFETCH(w) (4096u / (w))

/* Word m of the control: byte I of a dword if bit I of m is set, else 0 (vpshufb's 0x80). */
#define LUT_CTL(i, m) ((short)((m) >> (i)&1 ? 0x8000 | (i) : 0x8080))
#define LUT_CTLS(i)                                                                     \
	_mm256_setr_epi16(LUT_CTL(i, 0), LUT_CTL(i, 1), LUT_CTL(i, 2), LUT_CTL(i, 3),   \
			  LUT_CTL(i, 4), LUT_CTL(i, 5), LUT_CTL(i, 6), LUT_CTL(i, 7),   \
			  LUT_CTL(i, 8), LUT_CTL(i, 9), LUT_CTL(i, 10), LUT_CTL(i, 11), \
			  LUT_CTL(i, 12), LUT_CTL(i, 13), LUT_CTL(i, 14), LUT_CTL(i, 15))

/*
 * T_s[0..15] as int16 from the 4 bytes of step S of U less BASE (saturating: the K tail's zeros
 * stay 0); 0 past STEPS (the pad steps).
 */
INLINE __m256i lut_step(const uint8_t *u, uint32_t s, uint32_t steps, __m256i base)
{
	int32_t v;
	__m256i x;

	if (s >= steps)
		return _mm256_setzero_si256();
	memcpy(&v, u + 4 * (size_t)s, sizeof(v));
	x = _mm256_subs_epu8(_mm256_set1_epi32(v), base);
	return _mm256_add_epi16(_mm256_add_epi16(_mm256_shuffle_epi8(x, LUT_CTLS(0)),
						 _mm256_shuffle_epi8(x, LUT_CTLS(1))),
				_mm256_add_epi16(_mm256_shuffle_epi8(x, LUT_CTLS(2)),
						 _mm256_shuffle_epi8(x, LUT_CTLS(3))));
}

/*
 * The tables of the row U's STEPS steps (of u - BASE) and of the pad steps up to PADDED (all 0): step pair t
 * at TAB + 64 t, the low bytes of T_2t and T_2t+1 (one 128-bit lane each), then their high
 * bytes.
 */
INLINE void lut_tables(const uint8_t *u, uint32_t steps, uint32_t padded, uint8_t base,
		       uint8_t *tab)
{
	const __m256i lo = _mm256_set1_epi16(0xff), b = _mm256_set1_epi8((char)base);

	for (uint32_t s = 0; s < padded; s += 2, tab += 64) {
		const __m256i t0 = lut_step(u, s, steps, b), t1 = lut_step(u, s + 1, steps, b);
		const __m256i l =
			_mm256_packus_epi16(_mm256_and_si256(t0, lo), _mm256_and_si256(t1, lo));
		const __m256i h =
			_mm256_packus_epi16(_mm256_srli_epi16(t0, 8), _mm256_srli_epi16(t1, 8));

		_mm256_store_si256((__m256i *)(void *)tab,
				   _mm256_permute4x64_epi64(l, _MM_SHUFFLE(3, 1, 2, 0)));
		_mm256_store_si256((__m256i *)(void *)(tab + 32),
				   _mm256_permute4x64_epi64(h, _MM_SHUFFLE(3, 1, 2, 0)));
	}
}

/* D += (SIGN) A's u16 sums << SHIFT, widened: lanes 0..3 into LO, 4..7 into HI. */
INLINE void lut_flush(__m256i a, __m128i shift, int negate, __m256i *lo, __m256i *hi)
{
	const __m256i z = _mm256_setzero_si256();
	const __m256i l = _mm256_sll_epi32(_mm256_unpacklo_epi16(a, z), shift);
	const __m256i h = _mm256_sll_epi32(_mm256_unpackhi_epi16(a, z), shift);

	*lo = negate ? _mm256_sub_epi32(*lo, l) : _mm256_add_epi32(*lo, l);
	*hi = negate ? _mm256_sub_epi32(*hi, h) : _mm256_add_epi32(*hi, h);
}

/* Lanes 0 and 1 of A (channels in the order of A's low lane) and of B added, A's then B's. */
INLINE __m256i lut_fold(__m256i a, __m256i b)
{
	return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20),
				_mm256_permute2x128_si256(a, b, 0x31));
}

/*
 * Channels 0..31 in order (8 per C) from V[r], the channels 4i + r (i = 0..7): two 4x4
 * transposes of dwords, then the 128-bit halves put in place.
 */
INLINE void lut_interleave(const __m256i v[4], __m256i c[4])
{
	const __m256i t0 = _mm256_unpacklo_epi32(v[0], v[1]),
		      t1 = _mm256_unpacklo_epi32(v[2], v[3]);
	const __m256i t2 = _mm256_unpackhi_epi32(v[0], v[1]),
		      t3 = _mm256_unpackhi_epi32(v[2], v[3]);
	const __m256i u0 = _mm256_unpacklo_epi64(t0, t1), u1 = _mm256_unpackhi_epi64(t0, t1);
	const __m256i u2 = _mm256_unpacklo_epi64(t2, t3), u3 = _mm256_unpackhi_epi64(t2, t3);

	c[0] = _mm256_permute2x128_si256(u0, u1, 0x20);
	c[1] = _mm256_permute2x128_si256(u2, u3, 0x20);
	c[2] = _mm256_permute2x128_si256(u0, u1, 0x31);
	c[3] = _mm256_permute2x128_si256(u2, u3, 0x31);
}

/*
 * The sums of one plane over a chunk, kept without widening a lookup's bytes (which took 4
 * unpacks per 32 bytes, as many shuffle-port operations as the lookups themselves): for the
 * lookups L of the even (0) and odd (1) nibbles, A = sum of L read as u16 (mod 2^16), B = sum
 * of L >> 8 (the odd bytes), H = the bytewise sum of the tables' high bytes (each at most 3, so
 * 64 step pairs fit a byte). Per u16 lane (even byte e, odd byte o):
 *   E = A - (B << 8) + (H << 8)  = sum T_e,   O = B + (H & 0xff00) = sum T_o   (mod 2^16),
 * exact because every true sum is at most 64 x 1020 < 2^16.
 */
struct lut_acc {
	__m256i a[2], b[2], h[2];
};

/*
 * Step pair T of one plane of a panel (P: its 32 bytes per pair) looked up in the tables at TAB
 * into ACC (a 128-bit lane per step). WIDE: the tables' high bytes are not all 0 (else not
 * looked up).
 */
INLINE void lut_pair(const uint8_t *p, const uint8_t *tab, uint32_t t, __m256i nib, int wide,
		     struct lut_acc *acc)
{
	const __m256i x = _mm256_load_si256((const __m256i *)(const void *)(p + 32 * (size_t)t));
	const __m256i tl = _mm256_load_si256((const __m256i *)(const void *)(tab + 64 * (size_t)t));
	const __m256i il = _mm256_and_si256(x, nib),
		      ih = _mm256_and_si256(_mm256_srli_epi16(x, 4), nib);
	const __m256i l0 = _mm256_shuffle_epi8(tl, il), l1 = _mm256_shuffle_epi8(tl, ih);

	acc->a[0] = _mm256_add_epi16(acc->a[0], l0);
	acc->b[0] = _mm256_add_epi16(acc->b[0], _mm256_srli_epi16(l0, 8));
	acc->a[1] = _mm256_add_epi16(acc->a[1], l1);
	acc->b[1] = _mm256_add_epi16(acc->b[1], _mm256_srli_epi16(l1, 8));
	if (wide) {
		const __m256i th = _mm256_load_si256(
			(const __m256i *)(const void *)(tab + 64 * (size_t)t + 32));

		acc->h[0] = _mm256_add_epi8(acc->h[0], _mm256_shuffle_epi8(th, il));
		acc->h[1] = _mm256_add_epi8(acc->h[1], _mm256_shuffle_epi8(th, ih));
	}
}

/*
 * The panels of channels [n0, n1) against the row g->a; TAB: the caller's scratch for the
 * tables (64 bytes per step pair).
 */
INLINE void gemv_lut(const struct kern_gemm *g, uint32_t n0, uint32_t n1, uint8_t *tab, unsigned w,
		     uint8_t base, int wide)
{
	const struct kern_planes *pl = g->w;
	const uint32_t steps = pl->kp / KERN_KSTEP, pairs = kern_plane_steps(pl) / 2; /* even */
	const uint32_t end = n1 < pl->n ? n1 : pl->n;
	const size_t plane_bytes = pl->plane_words * sizeof(uint64_t);
	const __m256i nib = _mm256_set1_epi8(0x0f), high = _mm256_set1_epi16((short)0xff00);

	struct kern_gemm gb = *g;

	gb.off -= base; /* D = sum (u - base) b + base * sum b */
	lut_tables(g->a, steps, 2 * pairs, base, tab);
	for (uint32_t n = n0; n < end; n += KERN_PANEL) {
		/* the panel's 32 bytes per step pair, at kern_plane_word(pl, n / 16, 0) */
		const uint8_t *panel =
			(const uint8_t *)(pl->words + kern_plane_word(pl, n / KERN_GROUP, 0));
		__m256i d[8], v[4], c[4];
		struct ep8 e[4];

		for (unsigned i = 0; i < 8; i++)
			d[i] = _mm256_setzero_si256();
		for (uint32_t t0 = 0; t0 < pairs; t0 += LUT_CHUNK) {
			const uint32_t t1 = pairs - t0 < LUT_CHUNK ? pairs : t0 + LUT_CHUNK;
			struct lut_acc acc[8];

			memset(acc, 0, sizeof(acc));
			for (uint32_t ts = t0; ts < t1; ts += LUT_STRIP) {
				const uint32_t te = t1 - ts < LUT_STRIP ? t1 : ts + LUT_STRIP;

				for (unsigned j = 0; j < w; j++) {
					const uint8_t *p = panel + j * plane_bytes;
					struct lut_acc a = acc[j];

					for (uint32_t t = ts; t < te; t += 2) { /* a 64-byte line */
						_mm_prefetch((const char *)(p + 32 * (size_t)t) +
								     LUT_PREFETCH(w),
							     _MM_HINT_T0);
						lut_pair(p, tab, t, nib, wide, &a);
						lut_pair(p, tab, t + 1, nib, wide, &a);
					}
					acc[j] = a;
				}
			}
			for (unsigned j = 0; j < w; j++) {
				const __m128i shift = _mm_cvtsi32_si128(7 - (int)j);

				for (unsigned h = 0; h < 2; h++) {
					const __m256i a = acc[j].a[h], b = acc[j].b[h],
						      hb = acc[j].h[h];
					const __m256i even = _mm256_add_epi16(
						_mm256_sub_epi16(a, _mm256_slli_epi16(b, 8)),
						_mm256_slli_epi16(hb, 8));
					const __m256i odd =
						_mm256_add_epi16(b, _mm256_and_si256(hb, high));

					/* nibble h of byte 2i: channel 4i + h; of byte 2i + 1: 4i + 2 + h */
					lut_flush(even, shift, j == 0, &d[4 * h], &d[4 * h + 1]);
					lut_flush(odd, shift, j == 0, &d[4 * h + 2], &d[4 * h + 3]);
				}
			}
		}
		v[0] = lut_fold(d[0], d[1]);
		v[1] = lut_fold(d[4], d[5]);
		v[2] = lut_fold(d[2], d[3]);
		v[3] = lut_fold(d[6], d[7]);
		lut_interleave(v, c);
		for (unsigned i = 0; i < 4; i++) {
			ep8_init(&gb, n + 8 * i, &e[i], 0);
			epilogue8(&gb, &e[i], c[i], 0, n + 8 * i);
		}
	}
}

/*
 * The smallest and largest of the row's first K bytes: where 4 * (largest - smallest) <= 255,
 * the tables of u - smallest fit their low bytes and the high-byte lookups are skipped (any
 * layer at up to 6 activation bits, and wider ones whose inputs span less).
 */
INLINE void row_range(const uint8_t *u, uint32_t k, uint8_t *lo, uint8_t *hi)
{
	__m256i mn = _mm256_set1_epi8((char)0xff), mx = _mm256_setzero_si256();
	uint8_t l = 0xff, h = 0, b[32];
	uint32_t i = 0;

	for (; i + 32 <= k; i += 32) {
		const __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(u + i));

		mn = _mm256_min_epu8(mn, v);
		mx = _mm256_max_epu8(mx, v);
	}
	for (; i < k; i++) {
		l = u[i] < l ? u[i] : l;
		h = u[i] > h ? u[i] : h;
	}
	_mm256_storeu_si256((__m256i *)(void *)b, mn);
	for (unsigned j = 0; j < 32; j++)
		l = b[j] < l ? b[j] : l;
	_mm256_storeu_si256((__m256i *)(void *)b, mx);
	for (unsigned j = 0; j < 32; j++)
		h = b[j] > h ? b[j] : h;
	*lo = l;
	*hi = h;
}

#define DEFINE(W)                                                                         \
	TARGET static void gemv_w##W(const struct kern_gemm *g, uint32_t n0, uint32_t n1, \
				     int8_t *scratch)                                     \
	{                                                                                 \
		uint8_t lo, hi;                                                           \
                                                                                          \
		row_range(g->a, g->w->k, &lo, &hi);                                       \
		if (4 * (hi - lo) > 255)                                                  \
			gemv_lut(g, n0, n1, (uint8_t *)scratch, W, lo, 1);                \
		else                                                                      \
			gemv_lut(g, n0, n1, (uint8_t *)scratch, W, lo, 0);                \
	}
FOR_BITS(DEFINE)
#undef DEFINE

/* Batch-1 LINEAR layers (M = 1, no window read in place) take the table-lookup GEMV. */
static int is_gemv(const struct kern_gemm *g)
{
	return g->m == 1 && !g->direct;
}

static void (*const gemv_by_bits[9])(const struct kern_gemm *, uint32_t, uint32_t, int8_t *) = {
	[2] = gemv_w2, [3] = gemv_w3, [4] = gemv_w4, [5] = gemv_w5,
	[6] = gemv_w6, [7] = gemv_w7, [8] = gemv_w8,
};

/*
 * The AVX-VNNI variant (kern_ops_avxvnni: Alder Lake and later clients, chosen by CPUID, never
 * assumed): vpdpbusd on ymm multiplies 4 unsigned activation bytes by 4 signed weight bytes
 * per int32 lane and adds them into it, one instruction for what takes vpmovzx, vpmaddwd and
 * vpaddd above, with no pair sums to fold at the end. Its panel holds bytes, AVX-512's layout:
 * [group][step][64 bytes], channels 0..7 then 8..15 of 4 positions each, which is what
 * rebuild() makes of each half of a plane word. Tiles are 4 rows x 16 channels: 8 accumulators,
 * 2 weight vectors and a broadcast (of the 16 registers), 6 loads per 8 vpdpbusd.
 */
#define TARGET_VNNI __attribute__((target("avx2,fma,avxvnni")))
#define INLINE_VNNI TARGET_VNNI static inline __attribute__((always_inline))

/*
 * Rebuild NG groups of channels from N into PANEL as bytes: [group][step][64 bytes], the
 * signed bytes b, or K_VALUED the codes k = b >> (8 - w) themselves.
 */
INLINE void rebuild_panel_bytes(const struct kern_planes *pl, uint32_t n, unsigned w, int8_t *panel,
				unsigned ng, int k_valued)
{
	const uint32_t steps = pl->kp / KERN_KSTEP;

	for (uint32_t s = 0; s < ng * steps; s++) {
		const uint64_t *p =
			pl->words + kern_plane_word(pl, n / KERN_GROUP + s / steps, s % steps);
		__m256i *out = (__m256i *)(void *)(panel + (size_t)s * 64);

		for (unsigned h = 0; h < 2; h++) {
			__m256i b = rebuild(p, pl->plane_words, w, h);

			if (k_valued) /* no byte shifts: words, then drop the bits that crossed bytes */
				b = _mm256_or_si256(
					_mm256_and_si256(_mm256_srli_epi16(b, 8 - w),
							 _mm256_set1_epi8((char)(0xff >> (8 - w)))),
					_mm256_and_si256(_mm256_cmpgt_epi8(_mm256_setzero_si256(),
									   b),
							 _mm256_set1_epi8((char)(0xff << w))));
			_mm256_store_si256(out + h, b);
		}
	}
}

/* The 4 activation bytes at P in every int32 lane. */
INLINE __m256i bcast4_bytes(const uint8_t *p)
{
	int32_t v;

	memcpy(&v, p, sizeof(v));
	return _mm256_set1_epi32(v);
}

#define VNNI_ROW(i)                                                    \
	do {                                                           \
		const __m256i x = bcast4_bytes(rp[i] + tap + 4 * (j)); \
		a##i = _mm256_dpbusd_avx_epi32(a##i, x, w0);           \
		b##i = _mm256_dpbusd_avx_epi32(b##i, x, w1);           \
	} while (0)
#define VNNI_OUT(i)                                               \
	do {                                                      \
		if (r0 + i < g->m) {                              \
			epilogue8(g, e, a##i, r0 + i, n);         \
			epilogue8(g, e + 1, b##i, r0 + i, n + 8); \
		}                                                 \
	} while (0)

#define VNNI_STEP(at, j)                                                                        \
	do {                                                                                    \
		const int8_t *w_ = panel + (size_t)(at)*64;                                     \
		const __m256i w0 = _mm256_load_si256((const __m256i *)(const void *)w_);        \
		const __m256i w1 = _mm256_load_si256((const __m256i *)(const void *)(w_ + 32)); \
                                                                                                \
		VNNI_ROW(0);                                                                    \
		VNNI_ROW(1);                                                                    \
		VNNI_ROW(2);                                                                    \
		VNNI_ROW(3);                                                                    \
	} while (0)

/* Rows [r0, r0 + 4) (past m: the last row again, not stored) times 16 channels from N. */
INLINE_VNNI void tile4x16_vnni(const struct kern_gemm *g, const uint8_t *const rp[4],
			       const int8_t *panel, uint32_t r0, uint32_t n, const struct ep8 *e)
{
	const __m256i z = _mm256_setzero_si256();
	__m256i a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z;

	FOR_STEPS(g, VNNI_STEP);
	VNNI_OUT(0);
	VNNI_OUT(1);
	VNNI_OUT(2);
	VNNI_OUT(3);
}
#undef VNNI_ROW
#undef VNNI_STEP
#undef VNNI_OUT

/* As gemm() above, in 4-row tiles on byte panels. */
INLINE_VNNI void gemm_vnni(const struct kern_gemm *g, uint32_t n0, uint32_t n1, int8_t *panel,
			   unsigned w)
{
	const size_t group = (size_t)g->w->kp / KERN_KSTEP * 64; /* bytes per panel group */

#define REBUILD(n, ng) rebuild_panel_bytes(g->w, n, w, panel, ng, 0)
#define TILE(rp, p, r, n, e) tile4x16_vnni(g, rp, p, r, n, e)
	PANEL_LOOP(g, n0, n1, panel, group, 4, 0, REBUILD, TILE);
#undef REBUILD
#undef TILE
}

#define DEFINE(W)                                                                      \
	TARGET_VNNI static void gemm_vnni_w##W(const struct kern_gemm *g, uint32_t n0, \
					       uint32_t n1, int8_t *panel)             \
	{                                                                              \
		gemm_vnni(g, n0, n1, panel, W);                                        \
	}
FOR_BITS(DEFINE)
#undef DEFINE

static void gemm_any_vnni(const struct kern_gemm *g, uint32_t n0, uint32_t n1, int8_t *panel)
{
	static void (*const by_bits[9])(const struct kern_gemm *, uint32_t, uint32_t, int8_t *) = {
		[2] = gemm_vnni_w2, [3] = gemm_vnni_w3, [4] = gemm_vnni_w4, [5] = gemm_vnni_w5,
		[6] = gemm_vnni_w6, [7] = gemm_vnni_w7, [8] = gemm_vnni_w8,
	};

	(is_gemv(g) ? gemv_by_bits : by_bits)[g->w_bits](g, n0, n1, panel);
}

/*
 * Plain AVX2 at w <= 6 bits: vpmaddubsw multiplies the codes k themselves (|k| <= 2^(w-1))
 * by the unsigned activations and adds pairs into int16 lanes without saturating (2 * 255 * 32
 * = 16320 at 6 bits); LIMIT(w) such steps still fit int16 (32640), then one vpmaddwd by 1s
 * widens them into the int32 accumulators. Per 32 products: about one vpmaddubsw and one
 * vpaddw instead of vpmovzx, two vpmaddwd and two vpaddd. Byte panels as AVX-VNNI's, with k,
 * and the epilogue's k-valued identity (ep8_init). 7 and 8 bits stay on vpmaddwd above.
 */
#define UBS_LIMIT(w) (32640u / (2u * 255u << ((w)-1)))

#define UBS_FLUSH()                                                     \
	do {                                                            \
		a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(h0, ones)); \
		a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(h1, ones)); \
		b0 = _mm256_add_epi32(b0, _mm256_madd_epi16(h2, ones)); \
		b1 = _mm256_add_epi32(b1, _mm256_madd_epi16(h3, ones)); \
		h0 = h1 = h2 = h3 = z;                                  \
		held = 0;                                               \
	} while (0)
#define UBS_STEP(at, j)                                                                         \
	do {                                                                                    \
		const int8_t *w_ = panel + (size_t)(at)*64;                                     \
		const __m256i w0 = _mm256_load_si256((const __m256i *)(const void *)w_);        \
		const __m256i w1 = _mm256_load_si256((const __m256i *)(const void *)(w_ + 32)); \
		const __m256i x = bcast4_bytes(rp[0] + tap + 4 * (j));                          \
		const __m256i y = bcast4_bytes(rp[1] + tap + 4 * (j));                          \
                                                                                                \
		h0 = _mm256_add_epi16(h0, _mm256_maddubs_epi16(x, w0));                         \
		h1 = _mm256_add_epi16(h1, _mm256_maddubs_epi16(x, w1));                         \
		h2 = _mm256_add_epi16(h2, _mm256_maddubs_epi16(y, w0));                         \
		h3 = _mm256_add_epi16(h3, _mm256_maddubs_epi16(y, w1));                         \
		if (++held == limit)                                                            \
			UBS_FLUSH();                                                            \
	} while (0)

/* Rows [r0, r0 + 2) times 16 channels from N on a k-valued byte panel. */
INLINE void tile2x16_ubs(const struct kern_gemm *g, const uint8_t *const rp[2], const int8_t *panel,
			 uint32_t r0, uint32_t n, const struct ep8 *e, unsigned w)
{
	const __m256i z = _mm256_setzero_si256(), ones = _mm256_set1_epi16(1);
	const unsigned limit = UBS_LIMIT(w);
	__m256i a0 = z, a1 = z, b0 = z, b1 = z, h0 = z, h1 = z, h2 = z, h3 = z;
	unsigned held = 0;

	FOR_STEPS(g, UBS_STEP);
	UBS_FLUSH();
	(void)held;
	epilogue8(g, e, a0, r0, n);
	epilogue8(g, e + 1, a1, r0, n + 8);
	if (r0 + 1 < g->m) {
		epilogue8(g, e, b0, r0 + 1, n);
		epilogue8(g, e + 1, b1, r0 + 1, n + 8);
	}
}
#undef UBS_STEP
#undef UBS_FLUSH

INLINE void gemm_ubs(const struct kern_gemm *g, uint32_t n0, uint32_t n1, int8_t *panel, unsigned w)
{
	const size_t group = (size_t)g->w->kp / KERN_KSTEP * 64; /* bytes per panel group */

#define REBUILD(n, ng) rebuild_panel_bytes(g->w, n, w, panel, ng, 1)
#define TILE(rp, p, r, n, e) tile2x16_ubs(g, rp, p, r, n, e, w)
	PANEL_LOOP(g, n0, n1, panel, group, 2, 1, REBUILD, TILE);
#undef REBUILD
#undef TILE
}

#define FOR_LOW_BITS(X) X(2) X(3) X(4) X(5) X(6)
#define DEFINE(W)                                                                             \
	TARGET static void gemm_ubs_w##W(const struct kern_gemm *g, uint32_t n0, uint32_t n1, \
					 int8_t *panel)                                       \
	{                                                                                     \
		gemm_ubs(g, n0, n1, panel, W);                                                \
	}
FOR_LOW_BITS(DEFINE)
#undef DEFINE

static void gemm_any(const struct kern_gemm *g, uint32_t n0, uint32_t n1, int8_t *panel)
{
	static void (*const by_bits[9])(const struct kern_gemm *, uint32_t, uint32_t, int8_t *) = {
		[2] = gemm_ubs_w2, [3] = gemm_ubs_w3, [4] = gemm_ubs_w4, [5] = gemm_ubs_w5,
		[6] = gemm_ubs_w6, [7] = gemm_w7,     [8] = gemm_w8,
	};

	(is_gemv(g) ? gemv_by_bits : by_bits)[g->w_bits](g, n0, n1, panel);
}

const struct kern_ops kern_ops_avx2 = {
	.path = BMX_KERNELS_AVX2,
	.gemm = gemm_any,
	.depthwise = kern_avx2_depthwise,
	.quantize = kern_avx2_quantize,
	.row_sums = kern_avx2_row_sums,
	.relu = kern_avx2_relu,
	.maxpool = kern_avx2_maxpool,
	.add = kern_avx2_add,
	.global_avgpool = kern_avx2_global_avgpool,
	.direct = 1,
	.plane_order = KERN_PLANES_PAIRED,
	.gemm_lut = kern_avx2_gemm_lut,
	.lut_tables = kern_avx2_lut_tables,
	.lut_w_mask = 1u << 2,
	.lut_max_u = 31, /* two lookups per byte sum and step: 8 u_max <= 255 */
	.lut_rule_max_a = 3,
};

/* The same path with the AVX-VNNI GEMM; everything else is AVX2's. */
const struct kern_ops kern_ops_avxvnni = {
	.path = BMX_KERNELS_AVXVNNI,
	.gemm = gemm_any_vnni,
	.depthwise = kern_avx2_depthwise,
	.quantize = kern_avx2_quantize,
	.row_sums = kern_avx2_row_sums,
	.relu = kern_avx2_relu,
	.maxpool = kern_avx2_maxpool,
	.add = kern_avx2_add,
	.global_avgpool = kern_avx2_global_avgpool,
	.direct = 1,
	.plane_order = KERN_PLANES_PAIRED,
	.gemm_lut = kern_avx2_gemm_lut,
	.lut_tables = kern_avx2_lut_tables,
	.lut_w_mask = 1u << 2,
	.lut_max_u = 31,
	.lut_rule_max_a = 3,
};
#endif
