/* SPDX-License-Identifier: MIT */
/*
 * ops_ref.h — the portable reference kernels: every op of a .bmx graph at any bit-width, in
 * plain C with no intrinsics. They compute exactly what docs/model-format.md ("Arithmetic")
 * defines, bit for bit; the SIMD paths mirror this API and are tested against it.
 *
 * Types: activation codes and decoded weights are int16_t (a-bit codes are in [-128, 255],
 * decoded weights v = 2k + 1 in [-255, 255]); accumulators are int32_t. Tensors are NHWC per
 * sample with BATCH samples back to back; conv weights are OHWI. No alignment is required.
 */
#ifndef BITMIX_OPS_REF_H
#define BITMIX_OPS_REF_H

#include <stddef.h>
#include <stdint.h>

/* The odd integer a stored 8-bit weight code C stands for at W_BITS (2..8): 2 * (c >> (8-w)) + 1. */
static inline int16_t bmx_ref_weight_value(int8_t c, unsigned w_bits)
{
	/* >> of a negative int is an arithmetic shift in every compiler we build with (gcc, clang). */
	return (int16_t)(2 * ((int)c >> (8 - w_bits)) + 1);
}

/* The code range [*lo, *hi] of A_BITS activations, signed or unsigned. */
void bmx_ref_act_range(unsigned a_bits, int act_signed, int32_t *lo, int32_t *hi);

/* Decode N 8-bit codes to their W_BITS odd values. */
void bmx_ref_decode_weights(const int8_t *codes, size_t n, unsigned w_bits, int16_t *v);

/*
 * Quantize N floats with activation step STEP into codes clamped to [LO, HI]:
 * q = rintf(fminf(fmaxf(x * (1.0f / step), lo), hi)). NaN becomes LO.
 */
void bmx_ref_quantize(const float *x, size_t n, float step, int32_t lo, int32_t hi, int16_t *q);

/* The geometry of one CONV2D (or pooling) over a batch; out_h/out_w follow from the rest. */
struct bmx_conv_shape {
	uint32_t batch;
	uint32_t in_h, in_w, in_c;
	uint32_t out_h, out_w, out_c; /* pools: out_c == in_c */
	uint32_t kernel_h, kernel_w;
	uint32_t stride_h, stride_w;
	uint32_t pad_top, pad_left, pad_bottom, pad_right;
	uint32_t groups; /* divides in_c and out_c; in_c == out_c == groups is depthwise */
};

/* (in + pad0 + pad1 - kernel) / stride + 1, or 0 if the kernel does not fit. */
uint32_t bmx_ref_out_dim(uint32_t in, uint32_t kernel, uint32_t stride, uint32_t pad0,
			 uint32_t pad1);

/* Fill out_h and out_w of S from the input size, kernel, stride and pads. */
void bmx_ref_conv_shape_finish(struct bmx_conv_shape *s);

/*
 * acc[n][oh][ow][o] = sum over the kernel window and the input channels of o's group of
 * v[o][kh][kw][ic] * q[n][ih][iw][g * in_c/groups + ic]; padded positions contribute 0.
 */
void bmx_ref_conv2d_acc(const struct bmx_conv_shape *s, const int16_t *q, const int16_t *v,
			int32_t *acc);

/* acc[n][o] = sum_k v[o][k] * q[n][k] for BATCH rows of K codes and N_OUT outputs. */
void bmx_ref_linear_acc(uint32_t batch, uint32_t k, uint32_t n_out, const int16_t *q,
			const int16_t *v, int32_t *acc);

/*
 * The TBN epilogue over N_PIX positions of C channels: mult = step * m[o],
 * y = (float)acc * mult, y = y + beta[o].
 */
void bmx_ref_tbn_epilogue(const int32_t *acc, size_t n_pix, uint32_t c, float step, const float *m,
			  const float *beta, float *y);

/* Pools over S (in_c == out_c, groups ignored). Max: padding is -inf. Avg: padding is 0. */
void bmx_ref_maxpool(const struct bmx_conv_shape *s, const float *x, float *y);
void bmx_ref_avgpool(const struct bmx_conv_shape *s, const float *x, float *y);

/* Per sample and channel, the mean over H*W positions (h outer, w inner). */
void bmx_ref_global_avgpool(uint32_t batch, uint32_t h, uint32_t w, uint32_t c, const float *x,
			    float *y);

void bmx_ref_add(const float *a, const float *b, size_t n, float *y);
void bmx_ref_relu(const float *x, size_t n, float *y);
void bmx_ref_relu6(const float *x, size_t n, float *y);

/* Softmax over each of BATCH rows of N values (expf of x - max, summed in index order). */
void bmx_ref_softmax(uint32_t batch, uint32_t n, const float *x, float *y);

/* Index of the first largest of N values (NaN never wins); 0 for N == 0. */
uint32_t bmx_ref_argmax(const float *x, uint32_t n);

#endif
