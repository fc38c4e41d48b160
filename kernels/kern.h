/* SPDX-License-Identifier: MIT */
/*
 * kern.h — the fast kernels' internal interface: the bit-plane weight layout, the argument
 * blocks of the fused GEMM and depthwise kernels, and the table of one SIMD path (AVX-512 VNNI,
 * AVX2). The engine (engine_fast.c) prepares activations and splits work; a path only computes.
 *
 * Arithmetic (equal to docs/model-format.md bit for bit): activations are stored as unsigned
 * bytes u = q + off (off = 128 for signed layers, else 0); weights at w bits as the signed byte
 * b = c & (0xff << (8 - w)) = k * 2^(8-w). Then with D = sum u*b (exact in int32: 255 * 128 *
 * 32768 < 2^31), sum q*k = (D - off * sum b) >> (8 - w) exactly, and
 * acc = 2 * sum q*k + sum q, which is sum (2k + 1) * q. The epilogue is the reference's:
 * y = (float)acc * (step * m[o]) + beta[o], then optionally fmaxf(y, 0) (ReLU fused).
 */
#ifndef BITMIX_KERN_H
#define BITMIX_KERN_H

#include <stddef.h>
#include <stdint.h>

#include "bmx_engine.h"
#include "ops_ref.h"

#define KERN_KSTEP 4u  /* reduction positions per plane word and channel (vpdpbusd's 4) */
#define KERN_GROUP 16u /* output channels per plane word: 16 x 4 = 64 bits, one zmm of bytes */
#define KERN_PANEL 32u /* output channels whose weights one task rebuilds at a time */
#define KERN_MAX_TASKS 16u

/*
 * One stored copy of a layer's weights as most-significant-first bit-planes. Plane j (bit 7 - j
 * of the 8-bit code) is one contiguous array of uint64 words [n_pad / 16][kp / 4]: word (g, s)
 * holds the bits of channels g*16..g*16+15 at positions s*4..s*4+3, bit c*4 + i for channel
 * g*16 + c at position s*4 + i. Rebuilt into bytes, a word is exactly one vpdpbusd operand (16
 * int32 lanes, 4 bytes each), so products land in per-channel lanes and nothing needs a
 * horizontal sum. Reading w bits reads planes 0..w-1: w/8 of the bytes, each plane a
 * sequential stream. Channels n..n_pad and positions k..kp are zero (b = 0 adds nothing).
 *
 * Blocked (kern_ops.plane_order KERN_PLANES_BLOCKED, AVX-512): each full block of 8 steps of a
 * group (words 8b..8b+7 of every plane, one 64-byte line) has its bits arranged so that the 8 x 8
 * byte transpose of in-lane unpacks (bytes, then words, then dwords of the 8 planes' lines)
 * leaves step 8b + V's 64 bytes in vector V, in vpdpbusd order: line byte 16 L + 2 V + e, bit
 * p holds lane 16 L + 8 e + p of step 8b + V. The steps of a group past its last full block
 * (steps % 8 of them) keep the plain layout. Either way a plane holds only its own bit.
 *
 * Paired (KERN_PLANES_PAIRED, AVX2 and AVX-VNNI): the plain words, but the two groups of a
 * panel of 32 channels interleaved step by step, [n_pad / 32][steps rounded up to a multiple
 * of 4][2] (the pad steps' words are 0), so that each 16 bytes of a plane are the 32 channels'
 * nibbles at one step: the vpshufb index of a table lookup per 128-bit lane (kern_avx2.c's
 * GEMV, which takes two step pairs at a time).
 */
enum kern_plane_order {
	KERN_PLANES_PLAIN,   /* [n_pad / 16][steps] */
	KERN_PLANES_BLOCKED, /* full 8-step blocks in the transpose-ready order */
	KERN_PLANES_PAIRED,  /* [n_pad / 32][steps rounded up to 4][2 groups] */
};

struct kern_planes {
	uint32_t n, k;	    /* output channels, reduction length */
	uint32_t n_pad, kp; /* n rounded up to KERN_PANEL, k rounded up to KERN_KSTEP */
	size_t plane_words; /* the distance between planes, in words (n_pad / 16 * steps) */
	uint64_t *words;    /* [8][...], 64-byte aligned, in ORDER */
	int32_t *sum_b;	    /* [9][n_pad]: sum over k of b at w bits (rows 0, 1 unused) */
	enum kern_plane_order order;
};

/* Steps a group's words take in its plane (the paired order pads them to a multiple of 4). */
static inline uint32_t kern_plane_steps(const struct kern_planes *p)
{
	const uint32_t steps = p->kp / KERN_KSTEP;

	return p->order == KERN_PLANES_PAIRED ? (steps + 3) / 4 * 4 : steps;
}

/* The index of word (group G, step S) in each plane, for the plain and paired orders. */
static inline size_t kern_plane_word(const struct kern_planes *p, uint32_t g, uint32_t s)
{
	const size_t steps = kern_plane_steps(p);

	if (p->order == KERN_PLANES_PAIRED)
		return (size_t)(g / 2) * 2 * steps + 2 * (size_t)s + g % 2;
	return (size_t)g * steps + s;
}

/* Depthwise weights, tap-major: codes[tap][c_pad] (c_pad = channels rounded up to 16). */
struct kern_dw_weights {
	uint32_t c, c_pad, taps;
	int8_t *codes;
};

int kern_planes_pack(const int8_t *codes, uint32_t n, uint32_t k, enum kern_plane_order order,
		     struct kern_planes *p);
void kern_planes_free(struct kern_planes *p);
int kern_dw_pack(const int8_t *codes, uint32_t c, uint32_t taps, struct kern_dw_weights *d);
void kern_dw_free(struct kern_dw_weights *d);

/*
 * Requantization fused into a GEMM's epilogue: each output y is also quantized as the next
 * layer's input (u = q(y) + off, q as in bmx_ref_quantize with 1/step = INV) and stored where
 * that layer reads it: output row r (pixel p = r % hw of sample r / hw, at row p / w and column
 * p % w) and channel o at u[sample * (r / hw) + origin + line * (p / w) + pixel * (p % w) + o].
 * The next layer's padding and K tails are its own to fill.
 */
struct kern_requant {
	float inv;
	int32_t lo, hi, off;
	uint8_t *u;
	uint32_t hw, w;
	size_t sample, origin, line, pixel;
};

/* The fused epilogue shared by every kernel (per output channel arrays, length >= n_pad). */
struct kern_epilogue {
	float step;	/* activation step of this layer at its a bits */
	const float *m; /* folded TBN * weight scale for (tbn row, w) */
	const float *beta;
	int relu; /* 1: y = fmaxf(y, 0) fused */
	float *y; /* row r, channel o at y[r * ldy + o] */
	size_t ldy;
	const struct kern_requant *rq; /* or NULL; only on a path with kern_ops.requant */
	uint32_t row0;		       /* the layer's row of row 0 (tasks split rows), for rq */
};

/*
 * A convolution's GEMM rows read straight from its quantized input (no im2col copy): row r is
 * output pixel row0 + r, its positions are the OHWI window (tap-major, in_c bytes per tap). The
 * input is stored with the convolution's padding around each sample (as q = 0's code, off), so
 * every tap is inside: [batch][pad_top + in_h + pad_bottom][pad_left + in_w + pad_right][in_c].
 * Needs in_c % 4 == 0, so a vpdpbusd step of 4 positions never straddles two taps and kp == k.
 */
struct kern_direct {
	const struct bmx_conv_shape *s;
	const uint8_t *u; /* the padded quantized input */
	uint32_t row0;	  /* the output pixel of row 0 (tasks split rows) */
};

/*
 * C = A B^T over rows [0, m) and output channels [n0, n1) (multiples of KERN_PANEL, n1 <=
 * n_pad), then the epilogue. A row r holds kp bytes u at a + r * lda (positions k..kp may hold
 * anything), or, when direct is set (kern_ops.direct), is a convolution window read in place.
 * sum_q[r] is sum q over the row's real positions.
 */
struct kern_gemm {
	const struct kern_planes *w;
	unsigned w_bits;
	int32_t off;
	uint32_t m;
	const uint8_t *a;
	size_t lda;
	const struct kern_direct *direct;
	const int32_t *sum_q;
	struct kern_epilogue ep;
	/*
	 * Table lookup (kern_ops.gemm_lut only): the activation tables of kern_ops.lut_tables,
	 * row r's at lut + r * lut_ld (K rounded up to 16 positions, 4 bytes per position), or,
	 * with direct, a padded input pixel's at lut + 4 * (its byte offset in direct->u); and
	 * how many 16-position steps the byte sums may take before they would pass 255.
	 */
	const uint8_t *lut;
	size_t lut_ld;
	unsigned lut_flush;
};

/*
 * Depthwise conv of unsigned codes u over output rows [r0, r1): NHWC with padding q = 0, or,
 * on a path with kern_ops.direct, the padded copy kern_direct describes (every tap inside).
 */
struct kern_depthwise {
	const struct kern_dw_weights *w;
	const struct bmx_conv_shape *s;
	unsigned w_bits;
	int32_t off;
	const uint8_t *u;
	struct kern_epilogue ep;
};

/* One SIMD path. panel: 2 * KERN_PANEL * kp bytes of the calling task's own, 64-byte aligned. */
struct kern_ops {
	enum bmx_kernels_path path;
	void (*gemm)(const struct kern_gemm *g, uint32_t n0, uint32_t n1, int8_t *panel);
	void (*depthwise)(const struct kern_depthwise *d, uint32_t r0, uint32_t r1);
	/* u[i] = q(x[i]) + off, q as in bmx_ref_quantize with 1/step = INV. */
	void (*quantize)(const float *x, size_t n, float inv, int32_t lo, int32_t hi, int32_t off,
			 uint8_t *u);
	/* sum_q[r] = sum of the first K bytes of row r minus K * OFF. */
	void (*row_sums)(const uint8_t *rows, size_t lda, uint32_t m, uint32_t k, int32_t off,
			 int32_t *sum_q);
	/* Optional (NULL: the reference's): ReLU, max-pooling, ADD, global average, bit-exact. */
	void (*relu)(const float *x, size_t n, float *y);
	void (*maxpool)(const struct bmx_conv_shape *s, const float *x, float *y);
	void (*add)(const float *a, const float *b, size_t n, float *y);
	void (*global_avgpool)(uint32_t batch, uint32_t h, uint32_t w, uint32_t c, const float *x,
			       float *y);
	/* gemm takes kern_gemm.direct (convolutions without im2col), depthwise a padded input */
	int direct;
	/* the order the path reads kern_planes in */
	enum kern_plane_order plane_order;
	/* the GEMM honours kern_epilogue.rq (depthwise never gets one) */
	int requant;
	/*
	 * Optional low-bit GEMM by table lookup (T-MAC style, kern_avx512_lut.c): at the weight
	 * bits in lut_w_mask and activation codes up to lut_max_u, C = A B^T as gemm() computes
	 * it, from the tables kern_gemm.lut. lut_tables writes them: for each row of M (LDA
	 * apart) and each group of 4 positions i < K16 (a multiple of 16), the 16 bytes e -> sum
	 * of u[4g + i] over the bits i of e, at t + (r * K16 + 4 g) * 4, positions >= K read as 0.
	 */
	void (*gemm_lut)(const struct kern_gemm *g, uint32_t n0, uint32_t n1, int8_t *panel);
	void (*lut_tables)(const uint8_t *u, size_t lda, uint32_t m, uint32_t k, uint32_t k16,
			   uint8_t *t);
	uint16_t lut_w_mask; /* bit w: gemm_lut serves w weight bits */
	uint8_t lut_max_u;   /* the largest activation code u its byte tables hold (4 u <= 255) */
	/*
	 * Where the engine's static rule takes gemm_lut (engine_fast.c, choose_kernels(); a
	 * measured cost table may overrule it): activation bits up to lut_rule_max_a, layers of
	 * at least lut_rule_min_n output channels, only convolutions read in place when
	 * lut_rule_direct_only. Each path's values are its own measurements (docs/kernels.md).
	 */
	uint16_t lut_rule_min_n;
	uint8_t lut_rule_max_a;
	uint8_t lut_rule_direct_only;
};

extern const struct kern_ops kern_ops_avx512;

/* kern_avx512_lut.c: the AVX-512 path's table-lookup GEMM and its tables */
void kern_avx512_gemm_lut(const struct kern_gemm *g, uint32_t n0, uint32_t n1, int8_t *panel);
void kern_avx512_lut_tables(const uint8_t *u, size_t lda, uint32_t m, uint32_t k, uint32_t k16,
			    uint8_t *t);
/*
 * The GEMV (g->m == 1, no window) of channels [n0, n1) at W (2..4) weight bits by table lookup;
 * TAB: 64-byte aligned scratch of 4 bytes per position of kp rounded up to 16. Returns -1 (and
 * does nothing) where the row's codes span more than 63 or W is not served.
 */
int kern_avx512_gemv_lut(const struct kern_gemm *g, uint32_t n0, uint32_t n1, unsigned w,
			 uint8_t *tab);
extern const struct kern_ops kern_ops_avx2;
extern const struct kern_ops kern_ops_avxvnni;

/* kern_avx2_lut.c: the AVX2 path's table-lookup GEMM and its tables (the same bytes) */
void kern_avx2_gemm_lut(const struct kern_gemm *g, uint32_t n0, uint32_t n1, int8_t *panel);
void kern_avx2_lut_tables(const uint8_t *u, size_t lda, uint32_t m, uint32_t k, uint32_t k16,
			  uint8_t *t);

/* The portable pieces the paths share (kern_pack.c). */
void kern_quantize_portable(const float *x, size_t n, float inv, int32_t lo, int32_t hi,
			    int32_t off, uint8_t *u);
void kern_row_sums_portable(const uint8_t *rows, size_t lda, uint32_t m, uint32_t k, int32_t off,
			    int32_t *sum_q);

/* kern_avx512_float.c */
void kern_avx512_relu(const float *x, size_t n, float *y);
void kern_avx512_maxpool(const struct bmx_conv_shape *s, const float *x, float *y);
void kern_avx512_add(const float *a, const float *b, size_t n, float *y);
void kern_avx512_global_avgpool(uint32_t batch, uint32_t h, uint32_t w, uint32_t c, const float *x,
				float *y);
void kern_avx512_row_sums(const uint8_t *rows, size_t lda, uint32_t m, uint32_t k, int32_t off,
			  int32_t *sum_q);

/* kern_avx2_float.c */
void kern_avx2_depthwise(const struct kern_depthwise *d, uint32_t r0, uint32_t r1);
void kern_avx2_quantize(const float *x, size_t n, float inv, int32_t lo, int32_t hi, int32_t off,
			uint8_t *u);
void kern_avx2_relu(const float *x, size_t n, float *y);
void kern_avx2_maxpool(const struct bmx_conv_shape *s, const float *x, float *y);
void kern_avx2_add(const float *a, const float *b, size_t n, float *y);
void kern_avx2_global_avgpool(uint32_t batch, uint32_t h, uint32_t w, uint32_t c, const float *x,
			      float *y);
void kern_avx2_row_sums(const uint8_t *rows, size_t lda, uint32_t m, uint32_t k, int32_t off,
			int32_t *sum_q);

/* Taps [*k0, *k1) of output position OUT that fall inside an input of size IN. */
static inline void kern_taps_inside(uint32_t out, uint32_t stride, uint32_t pad, uint32_t kernel,
				    uint32_t in, uint32_t *k0, uint32_t *k1)
{
	const int64_t start = (int64_t)out * stride - pad;
	int64_t lo = start < 0 ? -start : 0, hi = (int64_t)in - start;

	hi = hi > kernel ? kernel : hi;
	*k0 = (uint32_t)lo;
	*k1 = (uint32_t)(hi < lo ? lo : hi);
}

/*
 * The output pixels of a max-pool over NHWC floats X into Y, each window's taps inside the input
 * worked out once per pixel and handed to PIXEL (a path's SIMD loop over the channels: the
 * window's first tap, the distance between input lines, channels, taps per column and row, the
 * output pixel). Always inlined, so that in each path's function PIXEL is a direct call.
 */
typedef void kern_pool_pixel_fn(const float *x, size_t line, uint32_t c, uint32_t kh, uint32_t kw,
				float *y);

static inline __attribute__((always_inline)) void kern_maxpool_walk(const struct bmx_conv_shape *s,
								    const float *x, float *y,
								    kern_pool_pixel_fn *pixel)
{
	const uint32_t C = s->in_c;
	const size_t line = (size_t)s->in_w * C;

	for (uint32_t n = 0; n < s->batch; n++) {
		const float *xn = x + (size_t)n * s->in_h * line;

		for (uint32_t oh = 0; oh < s->out_h; oh++)
			for (uint32_t ow = 0; ow < s->out_w; ow++, y += C) {
				uint32_t kh0, kh1, kw0, kw1;
				size_t ih, iw;

				kern_taps_inside(oh, s->stride_h, s->pad_top, s->kernel_h, s->in_h,
						 &kh0, &kh1);
				kern_taps_inside(ow, s->stride_w, s->pad_left, s->kernel_w, s->in_w,
						 &kw0, &kw1);
				ih = (size_t)oh * s->stride_h + kh0 - s->pad_top;
				iw = (size_t)ow * s->stride_w + kw0 - s->pad_left;
				pixel(xn + ih * line + iw * C, line, C, kh1 - kh0, kw1 - kw0, y);
			}
	}
}

/* Scalar tail of the epilogue: acc from D for one element (the exact identity above). */
static inline int32_t kern_acc_from_dot(int32_t d, int32_t off, int32_t sum_b, unsigned w_bits,
					int32_t sum_q)
{
	uint32_t t = (uint32_t)d - (uint32_t)off * (uint32_t)sum_b;
	int32_t k = (int32_t)t >> (8 - w_bits);

	return (int32_t)((uint32_t)k * 2u + (uint32_t)sum_q);
}

#endif
