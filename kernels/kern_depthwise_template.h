/* SPDX-License-Identifier: MIT */
/*
 * kern_depthwise_template.h — the depthwise convolution both SIMD paths run, written once for
 * DW_LANES channels per vector: included by kern_avx512.c (16 lanes, vpdpwssd) and
 * kern_avx2_float.c (8 lanes, vpmaddwd), each after defining what differs (the includer's
 * INLINE, the int32 vector type dw_i32 of DW_LANES lanes as a GCC vector, and):
 *
 *   dw_i32 dw_weights(d, tap, c)       decoded weights v = 2k + 1 of channels [c, c + DW_LANES)
 *                                      at one tap, 0 past the layer's channels;
 *   __m128i dw_bytes(const uint8_t *)  the activation bytes of DW_LANES channels;
 *   dw_i32 dw_step(acc, a, b, w)       acc + the products of the interleaved bytes of two taps
 *                                      (a, b) with the int16 weight pairs w;
 *   void dw_epilogue(ep, acc, r, c, C) the layer's epilogue on channels [c, c + DW_LANES) of
 *                                      output pixel r.
 *
 * The scheme: on the padded input (every tap inside, padding q = 0) two taps per step, the
 * bytes of taps t and t + 1 interleaved and widened to int16 pairs (u_t, u_t+1) per channel
 * against the pairs (v_t, v_t+1) of decoded weights, summed in each channel's int32 lane
 * (255 * 255 * 2 per step; exact). With every tap inside, sum q v = sum u v - off sum v, sum v
 * over all taps being one constant per channel. Channels past the layer's have v = 0, so a
 * load may read the next pixel's bytes (or the input's 64 bytes of slack).
 */
#define DW_DECODED_MAX 256u /* vectors of constants per chunk of channels */

/* The int16 pairs (v_t, v_t+1) of channels [c, c + DW_LANES); tap taps is a zero weight. */
INLINE dw_i32 dw_pair(const struct kern_depthwise *d, uint32_t t, uint32_t c)
{
	const dw_i32 v0 = dw_weights(d, t, c);
	const dw_i32 v1 = t + 1 < d->w->taps ? dw_weights(d, t + 1, c) : (dw_i32){ 0 };

	return (v0 & 0xffff) | (v1 << 16);
}

/* The weight pair P of group G (I in the chunk of N groups): decoded once (DEC) or here. */
INLINE dw_i32 dw_w(const struct kern_depthwise *d, const dw_i32 *dec, uint32_t p, uint32_t g,
		   uint32_t i, uint32_t n)
{
	return dec ? dec[p * n + i] : dw_pair(d, 2 * p, g * DW_LANES);
}

/* off * sum over all taps of v, channels of group G. */
INLINE dw_i32 dw_off_sum_v(const struct kern_depthwise *d, uint32_t g)
{
	dw_i32 sv = { 0 };

	for (uint32_t t = 0; t < d->w->taps; t++)
		sv += dw_weights(d, t, g * DW_LANES);
	return sv * d->off;
}

/* Rows [r0, r1), groups [g0, g1) of DW_LANES channels; OSV and DEC hold that chunk's constants. */
INLINE void dw_rows(const struct kern_depthwise *d, uint32_t r0, uint32_t r1, uint32_t g0,
		    uint32_t g1, const dw_i32 *dec, const dw_i32 *osv)
{
	const struct bmx_conv_shape *s = d->s;
	const uint32_t C = s->in_c, per_sample = s->out_h * s->out_w;
	const size_t ph = s->in_h + s->pad_top + s->pad_bottom;
	const size_t line = (s->in_w + s->pad_left + s->pad_right) * (size_t)C;
	uint32_t n = r0 / per_sample, oh = r0 % per_sample / s->out_w, ow = r0 % s->out_w;

	for (uint32_t r = r0; r < r1; r++) {
		const uint8_t *base = d->u + (n * ph + (size_t)oh * s->stride_h) * line +
				      (size_t)ow * s->stride_w * C;

		for (uint32_t g = g0, c = g0 * DW_LANES; g < g1; g++, c += DW_LANES) {
			dw_i32 acc = { 0 };
			__m128i held = _mm_setzero_si128();
			uint32_t t = 0;

			for (uint32_t kh = 0; kh < s->kernel_h; kh++)
				for (uint32_t kw = 0; kw < s->kernel_w; kw++, t++) {
					const uint8_t *at = base + kh * line + (size_t)kw * C + c;
					const __m128i x = dw_bytes(at);

					if (t & 1)
						acc = dw_step(acc, held, x,
							      dw_w(d, dec, t / 2, g, g - g0,
								   g1 - g0));
					else
						held = x;
				}
			if (t & 1)
				acc = dw_step(acc, held, _mm_setzero_si128(),
					      dw_w(d, dec, t / 2, g, g - g0, g1 - g0));
			dw_epilogue(&d->ep, acc - osv[g - g0], r, c, C);
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

/* Output rows [r0, r1): the weight pairs decoded once per chunk of channels, then the rows. */
INLINE void dw_run(const struct kern_depthwise *d, uint32_t r0, uint32_t r1)
{
	const uint32_t taps = d->w->taps, pairs = (taps + 1) / 2;
	const uint32_t groups = (d->s->in_c + DW_LANES - 1) / DW_LANES;
	/* kernels over 511 taps rebuild their weight pairs at every use */
	const int decode = pairs <= DW_DECODED_MAX;
	const uint32_t chunk = decode ? DW_DECODED_MAX / pairs : DW_DECODED_MAX;
	dw_i32 dec[DW_DECODED_MAX], osv[DW_DECODED_MAX];

	for (uint32_t g0 = 0; g0 < groups; g0 += chunk) {
		const uint32_t g1 = groups - g0 > chunk ? g0 + chunk : groups;

		for (uint32_t g = g0; g < g1; g++) {
			osv[g - g0] = dw_off_sum_v(d, g);
			for (uint32_t p = 0; decode && p < pairs; p++)
				dec[p * (g1 - g0) + g - g0] = dw_pair(d, 2 * p, g * DW_LANES);
		}
		dw_rows(d, r0, r1, g0, g1, decode ? dec : NULL, osv);
	}
}
