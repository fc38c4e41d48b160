/* SPDX-License-Identifier: MIT */
/*
 * bmx_writer.h — building .bmx files in memory (tests, bmx-gen, placeholders).
 *
 * The writer infers every node's output shape and each layer's MACs, lays the sections out with
 * the alignment the format requires, and computes the checksum. It validates what it is given
 * only as far as needed to lay it out; bmx_model_load_memory() is the judge of the result.
 */
#ifndef BITMIX_BMX_WRITER_H
#define BITMIX_BMX_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "bmx_format.h"

struct bmx_writer;

/* One node to add. Fields that do not apply to the op are ignored. */
struct bmx_node_spec {
	uint16_t op;	   /* enum bmx_op */
	int32_t inputs[2]; /* node indices returned by bmx_writer_add() */
	uint32_t out_c;	   /* CONV2D, LINEAR */
	uint16_t kernel_h, kernel_w, stride_h, stride_w;
	uint16_t pad_top, pad_left, pad_bottom, pad_right;
	uint32_t groups; /* CONV2D; 0 means 1 */
	/* CONV2D and LINEAR only: */
	const char *name;
	uint16_t bits_mask;			/* 0: the model's */
	int32_t tbn_prev;			/* a layer index (bmx_writer_layer_of()), or -1 */
	uint8_t default_w_bits, default_a_bits; /* 0: the highest supported */
	uint8_t act_signed;
	const int8_t *weights;	  /* out_c * reduction codes, OHWI; copied */
	const float *w_scale;	  /* [out_c]; copied */
	const float *a_step;	  /* [nbits]; copied */
	const float *tbn;	  /* [P][nbits][2][out_c]; copied */
	const float *sensitivity; /* [nbits]; copied; NULL: zeros */
};

/* Start a model whose INPUT node (index 0) has shape in_h x in_w x in_c. */
struct bmx_writer *bmx_writer_new(const char *name, uint32_t in_h, uint32_t in_w, uint32_t in_c,
				  uint16_t bits_mask);
void bmx_writer_free(struct bmx_writer *w);

/* Add a node; returns its index, or -errno (-EINVAL for a spec that cannot be laid out). */
int bmx_writer_add(struct bmx_writer *w, const struct bmx_node_spec *spec);

/* The layer index of node NODE (a CONV2D or LINEAR), or -EINVAL. */
int bmx_writer_layer_of(const struct bmx_writer *w, int node);

/* The inferred per-sample output shape of NODE. */
int bmx_writer_shape(const struct bmx_writer *w, int node, uint32_t *h, uint32_t *wd, uint32_t *c);

/* Weights per output channel (kernel_h*kernel_w*in_c/groups) of NODE's layer, or -EINVAL. */
int bmx_writer_reduction(const struct bmx_writer *w, int node);

/* Make NODE the model output (default: the last node added). */
int bmx_writer_set_output(struct bmx_writer *w, int node);

/* The optional adaptive-precision sections (bmx_format.h; every array is copied). */
struct bmx_cascade_spec {
	uint32_t n_configs;  /* 2..BMX_MAX_ADAPTIVE_CONFIGS */
	uint32_t confidence; /* enum bmx_confidence */
	float accuracy_target, validation_accuracy;
	const float *thresholds; /* [n_configs - 1] */
	const uint8_t *bits;	 /* [n_configs][layer count] */
};

struct bmx_policy_spec {
	uint32_t n_configs;
	uint32_t feature_node, n_features;
	float threshold, accuracy_target, validation_accuracy;
	const uint8_t *bits;  /* [n_configs][layer count] */
	const float *weights; /* [n_configs - 1][n_features] */
	const float *bias;    /* [n_configs - 1] */
};

/* Add (or replace) the CASCADE / POLICY section, after every layer is added. 0 or -errno. */
int bmx_writer_set_cascade(struct bmx_writer *w, const struct bmx_cascade_spec *spec);
int bmx_writer_set_policy(struct bmx_writer *w, const struct bmx_policy_spec *spec);

/*
 * Serialize. *out receives a buffer aligned to BMX_ALIGN (free it with free()), *size its
 * length. The writer can be finished more than once.
 */
int bmx_writer_finish(struct bmx_writer *w, void **out, size_t *size);
int bmx_writer_write_file(struct bmx_writer *w, const char *path);

/* Recompute the checksum of a file image in place (tests that corrupt files on purpose). */
void bmx_file_fix_checksum(void *file, size_t size);
uint32_t bmx_file_checksum(const void *file, size_t size);

#endif
