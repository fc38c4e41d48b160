/* SPDX-License-Identifier: MIT */
/*
 * bmx_model.h — loading and validating .bmx models.
 *
 * A model is used in place: the loader maps the file (or takes a caller's mapping) and checks
 * every byte the engine will ever read before it returns, so that the engine and the daemon can
 * trust offsets, shapes and bit-widths without re-checking them. Weight data is never copied.
 * Every rejection names the section, the field and the byte offset that failed.
 */
#ifndef BITMIX_BMX_MODEL_H
#define BITMIX_BMX_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "bmx_format.h"

/* Why a model was refused: one line, "SECTION: field at byte OFFSET: what was wrong". */
struct bmx_error {
	char msg[256];
};

/* The validated, resolved view of one layer. Pointers point into the mapping. */
struct bmx_layer_view {
	const struct bmx_layer *raw;
	const struct bmx_node *node;
	uint32_t in_h, in_w, in_c; /* input shape per sample (LINEAR: 1, 1, K) */
	uint32_t out_h, out_w, out_c;
	uint32_t reduction;	    /* kernel_h*kernel_w*in_c/groups: weights per output */
	const int8_t *weights;	    /* out_c * reduction codes, OHWI */
	const float *w_scale;	    /* [out_c] */
	const float *a_step;	    /* [nbits] */
	const float *tbn;	    /* [tbn_rows][nbits][2][out_c] */
	const float *sensitivity;   /* [nbits] */
	uint32_t tbn_rows;	    /* nbits of layer tbn_prev, or 1 */
	uint8_t nbits;		    /* popcount(bits_mask) */
	uint8_t bits[BMX_NUM_BITS]; /* the supported bit-widths, ascending */
	int8_t bit_index[BMX_MAX_BITS +
			 1]; /* bits -> index into the arrays above, -1 if unsupported */
};

struct bmx_model {
	const uint8_t *base; /* the whole file */
	size_t size;
	const struct bmx_file_header *header;
	const struct bmx_model_info *info;
	const struct bmx_node *nodes;
	const struct bmx_layer *layers;
	const uint8_t *data;
	uint64_t data_size;
	uint32_t node_count;
	uint32_t layer_count;
	uint32_t *order; /* node_count node indices in an execution (topological) order */
	struct bmx_layer_view *views; /* layer_count */
	uint64_t total_macs;	      /* per sample */
	/* The optional adaptive-precision sections (bmx_format.h), NULL when absent. */
	const struct bmx_cascade_info *cascade;
	const uint8_t *cascade_bits; /* [n_configs][layer_count] */
	const struct bmx_policy_info *policy;
	const uint8_t *policy_bits;  /* [n_configs][layer_count] */
	const float *policy_weights; /* [n_configs - 1][n_features] */
	const float *policy_bias;    /* [n_configs - 1] */
	uint32_t *position;	     /* node -> its index in order[] */
	int mapped;		     /* 1 if bmx_model_free() must munmap base */
};

/*
 * Map PATH read-only and validate it. On success *out owns the mapping and returns 0; on failure
 * returns -errno (-EINVAL/-EBADMSG for a malformed file, -ENOENT etc. for I/O), fills *err
 * (which may be NULL) and sets *out to NULL.
 */
int bmx_model_load_file(const char *path, struct bmx_model **out, struct bmx_error *err);

/* The same for an open descriptor (a sealed memfd in the daemon); the fd stays the caller's. */
int bmx_model_load_fd(int fd, struct bmx_model **out, struct bmx_error *err);

/*
 * Validate SIZE bytes at DATA in place, without copying. The caller keeps DATA mapped and
 * unchanged until bmx_model_free(); DATA must be aligned to BMX_ALIGN.
 */
int bmx_model_load_memory(const void *data, size_t size, struct bmx_model **out,
			  struct bmx_error *err);

/* Release what the loader allocated and, for file/fd loads, the mapping. NULL is a no-op. */
void bmx_model_free(struct bmx_model *model);

/* The node whose output is the model output, and the per-sample element counts. */
static inline uint64_t bmx_model_input_size(const struct bmx_model *m)
{
	return (uint64_t)m->info->input_h * m->info->input_w * m->info->input_c;
}

static inline uint64_t bmx_model_output_size(const struct bmx_model *m)
{
	return m->info->output_size;
}

#endif
