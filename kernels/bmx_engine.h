/* SPDX-License-Identifier: MIT */
/*
 * bmx_engine.h — running a validated model at any per-layer bit-widths.
 *
 * The engine executes the graph of a struct bmx_model (bmx_model.h) with the reference kernels
 * (kernels/ops_ref.h): int32 accumulation of b-bit weight codes against a-bit activation codes,
 * then the transitional-BN affine selected by the (producing layer's bits, this layer's bits)
 * pair, folded with the weight scale at bmx_engine_new(). Arithmetic is defined exactly in
 * docs/model-format.md ("Arithmetic"); the result is deterministic and independent of threads.
 * An engine is immutable after creation and may be shared by any number of threads, each with
 * its own scratch buffer.
 */
#ifndef BITMIX_BMX_ENGINE_H
#define BITMIX_BMX_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "bmx_model.h"

/* The operating point of one layer. */
struct bmx_layer_bits {
	uint8_t w_bits; /* weight bits: the top w_bits of each stored 8-bit code */
	uint8_t a_bits; /* activation bits of this layer's input */
};

struct bmx_engine;

/* Fold the TBN tables of MODEL (which must outlive the engine). Returns 0 or -ENOMEM. */
int bmx_engine_new(const struct bmx_model *model, struct bmx_engine **out);
void bmx_engine_free(struct bmx_engine *engine);

const struct bmx_model *bmx_engine_model(const struct bmx_engine *engine);

/* Bytes of scratch memory bmx_engine_run() needs for BATCH samples. */
size_t bmx_engine_scratch_size(const struct bmx_engine *engine, uint32_t batch);

/* Fill BITS (layer_count entries) with each layer's default operating point from the file. */
void bmx_engine_default_bits(const struct bmx_engine *engine, struct bmx_layer_bits *bits);

/*
 * Check BITS against every layer's bits_mask. Returns 0, or -EINVAL with the first bad layer's
 * index in *bad_layer (if not NULL).
 */
int bmx_engine_check_bits(const struct bmx_engine *engine, const struct bmx_layer_bits *bits,
			  uint32_t *bad_layer);

/*
 * Run BATCH samples. INPUT holds batch * bmx_model_input_size() float32 values (NHWC per
 * sample), OUTPUT receives batch * bmx_model_output_size() values. SCRATCH holds at least
 * bmx_engine_scratch_size(batch) bytes, aligned to 64. Returns 0, or -EINVAL if BITS is not
 * allowed (nothing is written then).
 */
int bmx_engine_run(const struct bmx_engine *engine, const struct bmx_layer_bits *bits,
		   uint32_t batch, const float *input, float *output, void *scratch);

#endif
