/* SPDX-License-Identifier: MIT */
/*
 * bmx_format.h — the on-disk layout of a .bmx v1 model file.
 *
 * This header is the C mirror of docs/model-format.md, which is the normative text; the two
 * change together. A .bmx file is little-endian and mmap-able: a fixed 64-byte header at offset
 * 0, a section table, and sections aligned to BMX_ALIGN bytes. Nothing here is trusted until
 * bmx_model_load_*() (bmx_model.h) has checked it.
 */
#ifndef BITMIX_BMX_FORMAT_H
#define BITMIX_BMX_FORMAT_H

#include <assert.h>
#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the .bmx loader maps files in place and needs a little-endian host"
#endif

#define BMX_MAGIC "BMXMODEL" /* 8 bytes, no terminator in the file */
#define BMX_MAGIC_LEN 8
#define BMX_VERSION_MAJOR 1 /* a reader refuses any other major version */
#define BMX_VERSION_MINOR 1 /* newer minors only add optional sections (1: CASCADE, POLICY) */
#define BMX_ALIGN 64	    /* every section and every DATA array starts on this boundary */

#define BMX_MIN_BITS 2
#define BMX_MAX_BITS 8
#define BMX_NUM_BITS (BMX_MAX_BITS - BMX_MIN_BITS + 1)
/* A bits mask has bit b set when b bits are supported; only bits 2..8 may be set. */
#define BMX_BITS_MASK_VALID 0x01fcu

/* Sanity caps: a file that claims more is rejected as absurd before anything is allocated. */
#define BMX_MAX_SECTIONS 64
#define BMX_MAX_NODES 4096
#define BMX_MAX_LAYERS 1024
#define BMX_MAX_DIM 65536 /* any single H, W or C */
#define BMX_MAX_KERNEL 64 /* kernel_h, kernel_w */
#define BMX_MAX_STRIDE 64
#define BMX_MAX_REDUCTION 32768	   /* kh*kw*cin/groups: keeps the int32 accumulator exact */
#define BMX_MAX_ELEMS (1ull << 28) /* elements of any one activation tensor per sample */

/* File header, at offset 0. */
struct bmx_file_header {
	char magic[BMX_MAGIC_LEN];
	uint16_t version_major;
	uint16_t version_minor;
	uint32_t header_size;	       /* sizeof(struct bmx_file_header) == 64 */
	uint64_t file_size;	       /* exact size of the file in bytes */
	uint64_t section_table_offset; /* aligned to BMX_ALIGN */
	uint32_t section_count;	       /* 1..BMX_MAX_SECTIONS */
	uint32_t checksum;    /* CRC-32 (zlib's crc32) of the whole file, this field as 0 */
	uint8_t reserved[24]; /* zero */
};
static_assert(sizeof(struct bmx_file_header) == 64, "bmx_file_header is 64 bytes");

enum bmx_section_type {
	BMX_SECTION_MODEL = 1,	/* one struct bmx_model_info */
	BMX_SECTION_NODES = 2,	/* node_count x struct bmx_node */
	BMX_SECTION_LAYERS = 3, /* layer_count x struct bmx_layer */
	BMX_SECTION_DATA =
		4, /* weight codes, scales, activation steps, TBN tables, sensitivities */
	BMX_SECTION_CASCADE = 5, /* optional (minor 1): struct bmx_cascade_info + configurations */
	BMX_SECTION_POLICY =
		6, /* optional (minor 1): struct bmx_policy_info + configs + predictor */
};
#define BMX_SECTION_TYPE_MAX_ BMX_SECTION_POLICY
/* A section of a type this reader does not know is skipped if OPTIONAL, else the file is refused. */
#define BMX_SECTION_FLAG_OPTIONAL 0x1u

struct bmx_section {
	uint32_t type;
	uint32_t flags;
	uint64_t offset; /* from the start of the file, aligned to BMX_ALIGN */
	uint64_t size;	 /* bytes */
	uint64_t reserved;
};
static_assert(sizeof(struct bmx_section) == 32, "bmx_section is 32 bytes");

struct bmx_model_info {
	char name[48];	      /* NUL-terminated, [A-Za-z0-9._-] */
	uint32_t node_count;  /* 1..BMX_MAX_NODES */
	uint32_t layer_count; /* 0..BMX_MAX_LAYERS: quantized layers (conv2d, linear) */
	uint32_t input_node;  /* the one BMX_OP_INPUT node */
	uint32_t output_node; /* its output is the model's output */
	uint32_t input_h, input_w, input_c; /* per-sample input shape, NHWC, float32 */
	uint32_t output_size;		    /* elements per sample of output_node's output */
	uint16_t bits_mask;		    /* bit-widths the model was trained for */
	uint16_t reserved0;
	uint32_t flags; /* zero */
	uint8_t reserved[40];
};
static_assert(sizeof(struct bmx_model_info) == 128, "bmx_model_info is 128 bytes");

enum bmx_op {
	BMX_OP_INPUT = 1,	   /* no inputs; output is the model input */
	BMX_OP_CONV2D = 2,	   /* quantized; groups == in_c == out_c is depthwise */
	BMX_OP_LINEAR = 3,	   /* quantized; input flattened to 1x1xK */
	BMX_OP_ADD = 4,		   /* two inputs of equal shape */
	BMX_OP_MAXPOOL = 5,	   /* padding counts as -infinity */
	BMX_OP_AVGPOOL = 6,	   /* divides by kernel_h*kernel_w (padding counts as 0) */
	BMX_OP_GLOBAL_AVGPOOL = 7, /* HxWxC -> 1x1xC */
	BMX_OP_RELU = 8,
	BMX_OP_RELU6 = 9,
	BMX_OP_FLATTEN = 10, /* HxWxC -> 1x1x(H*W*C), NHWC order kept */
	BMX_OP_SOFTMAX = 11, /* over the C of a 1x1xC input */
	BMX_OP_MAX_ = 12,
};

/* One node of the graph. Its output is "value i" for node i; shapes are per sample, NHWC. */
struct bmx_node {
	uint16_t op;		      /* enum bmx_op */
	uint16_t n_inputs;	      /* 0 for INPUT, 2 for ADD, 1 otherwise */
	int32_t inputs[2];	      /* node indices; unused slots are -1 */
	int32_t layer;		      /* index into LAYERS for CONV2D/LINEAR, else -1 */
	uint32_t out_h, out_w, out_c; /* must equal the shape the loader infers */
	uint16_t kernel_h, kernel_w;  /* CONV2D, MAXPOOL, AVGPOOL; else 0 */
	uint16_t stride_h, stride_w;  /* CONV2D, MAXPOOL, AVGPOOL; else 0 */
	uint16_t pad_top, pad_left, pad_bottom, pad_right;
	uint32_t groups; /* CONV2D: divides in_c and out_c; LINEAR: 1; else 0 */
	uint8_t reserved[16];
};
static_assert(sizeof(struct bmx_node) == 64, "bmx_node is 64 bytes");

/* A byte range inside the DATA section: offset from DATA's start, aligned to BMX_ALIGN. */
struct bmx_array {
	uint64_t offset;
	uint64_t size;
};

/*
 * One quantized layer (the parameters of a CONV2D or LINEAR node). Bit-width-indexed arrays
 * hold one entry per set bit of bits_mask, in ascending order of bits ("bit index").
 */
struct bmx_layer {
	char name[32];	  /* NUL-terminated, for humans and error messages */
	uint32_t node;	  /* the node that owns this layer (and whose .layer points back) */
	int32_t tbn_prev; /* layer whose weight bits select the TBN row, or -1: one row */
	uint16_t bits_mask; /* bit-widths this layer supports (weights and activations), ⊆ model's */
	uint8_t default_w_bits; /* operating point at load, in bits_mask */
	uint8_t default_a_bits;
	uint8_t act_signed; /* 0: codes 0..2^a-1; 1: codes -2^(a-1)..2^(a-1)-1 */
	uint8_t reserved0[3];
	uint64_t macs; /* multiply-accumulates per sample, must equal out_h*out_w*out_c*K */
	struct bmx_array weights; /* int8 codes, [out_c][kernel_h][kernel_w][in_c/groups] (OHWI) */
	struct bmx_array w_scale; /* float32[out_c]: real value of one step of the 8-bit code */
	struct bmx_array a_step;  /* float32[nbits]: activation step for each supported a-bits */
	struct bmx_array tbn;	  /* float32[P][nbits][2][out_c]: P = prev layer's nbits or 1;
	                               * [..][0][c] = scale, [..][1][c] = bias */
	struct bmx_array sensitivity; /* float32[nbits]: loss sensitivity of each weight bit-width */
	uint8_t reserved[24];
};
static_assert(sizeof(struct bmx_layer) == 160, "bmx_layer is 160 bytes");

/*
 * Per-sample adaptive precision (docs/adaptive.md). Both sections list CONFIGURATIONS: one
 * uint8 bit-width per layer (weights and activations alike), each supported by its layer, every
 * layer non-decreasing from one configuration to the next (the list goes from cheap to rich).
 */
#define BMX_MAX_ADAPTIVE_CONFIGS 8

enum bmx_confidence {
	BMX_CONFIDENCE_MAX_PROB = 1, /* the largest softmax probability of the output */
	BMX_CONFIDENCE_MARGIN = 2, /* the largest output minus the second largest (logit margin) */
};

/*
 * CASCADE: run configuration 0; while the confidence of the output after configuration i is
 * below thresholds[i], run configuration i + 1. Followed by n_configs x layer_count uint8
 * bit-widths; the section is exactly 64 + n_configs * layer_count bytes.
 */
struct bmx_cascade_info {
	uint32_t n_configs;	   /* 2..BMX_MAX_ADAPTIVE_CONFIGS */
	uint32_t layer_count;	   /* the model's */
	uint32_t confidence;	   /* enum bmx_confidence */
	float accuracy_target;	   /* validation top-1 % the thresholds were calibrated to reach */
	float validation_accuracy; /* what the cascade reached there */
	float thresholds[BMX_MAX_ADAPTIVE_CONFIGS - 1]; /* finite; unused entries 0 */
	uint8_t reserved[16];
};
static_assert(sizeof(struct bmx_cascade_info) == 64, "bmx_cascade_info is 64 bytes");

/*
 * POLICY: a linear predictor on the global average of node feature_node's output picks one of
 * the configurations per sample. Every configuration has the same bits for the layers up to and
 * including feature_node in execution order (the prefix that computes the features). Followed by
 * n_configs x layer_count uint8 bit-widths, zero padding to a multiple of 4 bytes, then float32
 * weights[n_configs - 1][n_features] and float32 bias[n_configs - 1]. score_k = bias[k] +
 * sum_i weights[k][i] * f[i] in double, i ascending; the chosen configuration is the lowest k
 * with score_k >= threshold, else the last one.
 */
struct bmx_policy_info {
	uint32_t n_configs;    /* 2..BMX_MAX_ADAPTIVE_CONFIGS */
	uint32_t layer_count;  /* the model's */
	uint32_t feature_node; /* a node whose output has n_features channels */
	uint32_t n_features;   /* its out_c; 1..4096 */
	float threshold;       /* the calibrated default */
	float accuracy_target;
	float validation_accuracy;
	uint8_t reserved[36];
};
static_assert(sizeof(struct bmx_policy_info) == 64, "bmx_policy_info is 64 bytes");

#endif
