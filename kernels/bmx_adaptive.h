/* SPDX-License-Identifier: MIT */
/*
 * bmx_adaptive.h — per-sample adaptive precision (ABN-style) on top of the engine.
 *
 * A model with a CASCADE section runs every sample at a cheap configuration first and escalates
 * the samples whose output is not confident enough to richer ones; the escalated run starts at
 * the first layer whose bits change (prefix reuse, bmx_engine.h), so its result is bit-identical
 * to a whole run at the final configuration. A model with a POLICY section runs the layers up to
 * an early feature node, and a linear predictor on those features picks each sample's
 * configuration for the rest. Every configuration is clamped per layer to [floor, ceiling]: the
 * ceiling is the operating point the governor publishes, the floor a client's QoS hold, so
 * adaptive precision only ever spends less than the governor allows and never less than a client
 * asked for. Decisions depend only on the sample's own values: batching does not change them.
 * The exact arithmetic of the confidence and of the predictor is in docs/model-format.md.
 */
#ifndef BITMIX_BMX_ADAPTIVE_H
#define BITMIX_BMX_ADAPTIVE_H

#include <stddef.h>
#include <stdint.h>

#include "bmx_engine.h"

enum bmx_adaptive_mode {
	BMX_ADAPTIVE_OFF = 0,	  /* one run at the ceiling */
	BMX_ADAPTIVE_CASCADE = 1, /* the model's CASCADE section */
	BMX_ADAPTIVE_POLICY = 2,  /* the model's POLICY section */
};

struct bmx_adaptive_request {
	enum bmx_adaptive_mode mode;
	const struct bmx_layer_bits *ceiling; /* per layer; NULL: every layer's highest bits */
	uint8_t floor;	  /* no layer below this (when it supports it); 0: none */
	uint8_t no_reuse; /* 1: escalations rerun every layer (for comparison) */
	/* Override the file's thresholds (CASCADE: n_configs - 1 of them, POLICY: one), or NULL. */
	const float *thresholds;
};

/* What one sample cost. */
struct bmx_adaptive_result {
	uint8_t config;	 /* the configuration (index in the section) whose output was returned */
	uint8_t runs;	 /* configurations run: 1 + escalations */
	uint64_t bitops; /* MACs x weight bits x activation bits of every layer computed for it */
};

/* Whether MODEL can run MODE (it has the section); OFF always. */
int bmx_adaptive_supported(const struct bmx_model *model, enum bmx_adaptive_mode mode);

/* Bytes of scratch bmx_adaptive_run() needs for BATCH samples (more than a plain run). */
size_t bmx_adaptive_scratch_size(const struct bmx_engine *engine, uint32_t batch);

/*
 * Run BATCH samples as bmx_engine_run_parallel() does, choosing each sample's configuration by
 * REQ. RESULTS (BATCH entries, or NULL) receive what each sample ran. Returns 0, -EINVAL for a
 * bad ceiling, or -EOPNOTSUPP if the model lacks the section MODE needs.
 */
int bmx_adaptive_run(const struct bmx_engine *engine, const struct bmx_adaptive_request *req,
		     uint32_t batch, const float *input, float *output, void *scratch,
		     const struct bmx_parallel *par, struct bmx_adaptive_result *results);

/* Configuration K of MODE's section, clamped as bmx_adaptive_run() clamps it, into BITS. */
void bmx_adaptive_config(const struct bmx_engine *engine, const struct bmx_adaptive_request *req,
			 uint32_t k, struct bmx_layer_bits *bits);

/* BitOps per sample of the layers at execution positions >= FROM at BITS. */
uint64_t bmx_bitops(const struct bmx_model *model, const struct bmx_layer_bits *bits,
		    uint32_t from);

/* The confidence KIND (enum bmx_confidence) of one output row of N values. */
float bmx_confidence(uint32_t kind, const float *row, uint32_t n);

/* The global average of each channel of one sample's H x W x C value (the policy's features). */
void bmx_pool_features(const float *value, uint32_t hw, uint32_t c, float *features);

/* The policy's choice for FEATURES at THRESHOLD. */
uint32_t bmx_policy_choose(const struct bmx_model *model, const float *features, float threshold);

#endif
