/* SPDX-License-Identifier: MIT */
/*
 * bmx_engine_internal.h — the engine's private state, shared by its two files: bmx_engine.c
 * (creation, planning, running) and bmx_engine_resume.c (the values a run leaves, for prefix
 * reuse). Nothing outside kernels/ includes it.
 */
#ifndef BITMIX_BMX_ENGINE_INTERNAL_H
#define BITMIX_BMX_ENGINE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "bmx_engine.h"
#include "engine_fast.h"

#define FLOATS_PER_LINE 16u /* 64 bytes */

enum { FUSED_NONE = 0, FUSED_RELU_OUT = 1 /* layer writes its ReLU's value */, FUSED_SKIP = 2 };

#define NO_NODE UINT32_MAX

struct engine_layer {
	float *m;			/* [tbn_rows][nbits][out_c]: (s_w * 2^(7-w)) * g */
	int16_t *decoded[BMX_NUM_BITS]; /* [bit index][out_c * reduction], or NULL */
};

struct bmx_engine {
	const struct bmx_model *model;
	enum bmx_kernels_path path;
	const struct kern_ops *ops;  /* NULL on the reference path */
	struct engine_layer *layers; /* layer_count */
	struct fast_layer *fast;     /* layer_count, on a fast path */
	uint8_t *fused;		     /* node -> FUSED_* */
	uint32_t *requant_to;	     /* node -> the layer node its epilogue quantizes for */
	uint64_t requant_sample;     /* bytes per sample of the largest such input */
	uint32_t *node_slot;	     /* node -> value slot */
	uint32_t *last_use;	     /* node -> last position that reads it (output: UINT32_MAX) */
	uint64_t *slot_offset;	     /* slot -> offset in floats per sample, 16-aligned */
	uint32_t n_slots;
	uint64_t values_per_sample; /* floats of all slots, per sample */
	uint64_t codes_per_sample;  /* largest quantized-layer input */
	uint64_t acc_per_sample;    /* largest quantized-layer output */
	uint64_t decode_elems;	    /* largest layer that is not pre-decoded, or 0 */
};

/* bmx_engine_fuse.c */
int engine_plan_fusion(struct bmx_engine *e);
void engine_shape_of(const struct bmx_model *m, const struct bmx_node *n, uint32_t batch,
		     struct bmx_conv_shape *s);
/* The bytes of the buffer the fused requantizations write into (0: none planned). */
uint64_t engine_requant_bytes(const struct bmx_engine *e, uint32_t batch);
/* Layer node ID's quantizer at A_BITS and its input's layout, in buffer U. */
void engine_requant_of(const struct bmx_engine *e, uint32_t id, unsigned a_bits, uint8_t *u,
		       struct kern_requant *rq);

static inline uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

static inline uint64_t node_elems(const struct bmx_node *n)
{
	return (uint64_t)n->out_h * n->out_w * n->out_c;
}

#endif
