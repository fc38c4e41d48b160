/* SPDX-License-Identifier: MIT */
/*
 * engine_fast.h — the engine's bridge to the fast kernel paths: a layer's packed weights (the
 * engine's one copy, made at bmx_engine_new()) and the run of one quantized layer on them. The
 * graph walk stays in bmx_engine.c.
 */
#ifndef BITMIX_ENGINE_FAST_H
#define BITMIX_ENGINE_FAST_H

#include <stdbool.h>

#include "bmx_model.h"
#include "kern.h"
#include "ops_ref.h"

enum fast_kind { FAST_NONE = 0, FAST_GEMM, FAST_DEPTHWISE };

/* The GEMM kernels of a path (kern_ops): multiplies on rebuilt bytes, or table lookup. */
enum fast_gemm_kernel { FAST_KERNEL_DOT = 0, FAST_KERNEL_LUT };

struct fast_layer {
	enum fast_kind kind; /* FAST_NONE: run on the reference kernels */
	struct kern_planes planes;
	struct kern_dw_weights dw;
	/*
	 * The GEMM kernel at [w bits][a bits], chosen at creation by engine_fast_prepare()'s
	 * static rule (what docs/kernels.md measured faster); a measured per-layer cost table
	 * may overwrite entries, any entry the path serves (engine_fast_lut_serves()) is exact.
	 * A run still takes the dot kernel for a single row (GEMV: the tables cost more than
	 * they save) and sends a convolution over in_c % 16 != 0 through im2col rows.
	 */
	uint8_t kernel[BMX_MAX_BITS + 1][BMX_MAX_BITS + 1];
	bool lut_any; /* some entry is FAST_KERNEL_LUT: the scratch holds tables */
};

/* Whether OPS's table-lookup GEMM computes a GEMM layer at (W, A) bits. */
bool engine_fast_lut_serves(const struct kern_ops *ops, unsigned w, unsigned a);

/* Pack layer V for the fast paths. Returns 0 or -ENOMEM. */
int engine_fast_prepare(const struct bmx_layer_view *v, const struct kern_ops *ops,
			struct fast_layer *fl);
void engine_fast_free(struct fast_layer *fl);

/* Scratch bytes engine_fast_run() needs for this layer at BATCH (0 for FAST_NONE). */
uint64_t engine_fast_scratch(const struct bmx_layer_view *v, const struct fast_layer *fl,
			     uint32_t batch);

/* One layer's operating point, quantizer and fused epilogue. */
struct fast_run {
	const struct kern_ops *ops;
	const struct bmx_layer_view *view;
	const struct fast_layer *layer;
	unsigned w_bits, a_bits;
	float inv;	     /* 1.0f / activation step */
	int32_t lo, hi, off; /* code range; off = -lo for signed layers, else 0 */
	struct kern_epilogue ep;
	const struct bmx_parallel *par;
	uint8_t *codes; /* or NULL: the input quantized already, laid out as below (no padding) */
};

/*
 * Where a layer (FL, shape S, NULL for LINEAR) reads its quantized input, the output of node IN,
 * for a producer that writes it (kern_requant; u and the quantizer are left to the caller). The
 * buffer needs batch * rq->sample bytes, and 64 more of slack for the direct kernels.
 */
void engine_fast_input_layout(const struct fast_layer *fl, const struct kern_ops *ops,
			      const struct bmx_node *in, const struct bmx_conv_shape *s,
			      struct kern_requant *rq);

/* Run the layer on X (float NHWC, BATCH samples); S is the conv shape or NULL for LINEAR. */
void engine_fast_run(const struct fast_run *fr, const struct bmx_conv_shape *s, uint32_t batch,
		     const float *x, void *scratch);

#endif
