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

/*
 * The kernel paths. AUTO picks, in order: the BITMIX_KERNELS environment variable (ref, avx2,
 * avx512, avxvnni), else the best path the CPU supports (avx512, avxvnni, avx2, ref). Every path
 * computes the same bits.
 */
enum bmx_kernels_path {
	BMX_KERNELS_AUTO = 0,
	BMX_KERNELS_REF,     /* the portable reference kernels (ops_ref.h), the oracle */
	BMX_KERNELS_AVX2,    /* AVX2 (int16 multiply-add) */
	BMX_KERNELS_AVX512,  /* AVX-512 BW/VL + VNNI, GFNI */
	BMX_KERNELS_AVXVNNI, /* AVX2 with the VEX-encoded vpdpbusd (AVX-VNNI) in the GEMM */
};

/* "auto", "ref", "avx2", "avx512", "avxvnni". */
const char *bmx_kernels_name(enum bmx_kernels_path path);

/* Parse a name above; returns 0 or -EINVAL. */
int bmx_kernels_parse(const char *name, enum bmx_kernels_path *path);

/* 1 if this CPU can run PATH (REF and AUTO always). */
int bmx_kernels_supported(enum bmx_kernels_path path);

/*
 * What AUTO resolves to here (environment, then CPU). A requested path this CPU cannot run is
 * lowered to the best one it can.
 */
enum bmx_kernels_path bmx_kernels_resolve(enum bmx_kernels_path requested);

/* Fold the TBN tables of MODEL (which must outlive the engine). Returns 0 or -ENOMEM. */
int bmx_engine_new(const struct bmx_model *model, struct bmx_engine **out);

/*
 * The same on kernel path PATH (resolved with bmx_kernels_resolve()). The fast paths repack the
 * weights once into bit-planes (docs/kernels.md); the engine then holds that copy.
 */
int bmx_engine_new_path(const struct bmx_model *model, enum bmx_kernels_path path,
			struct bmx_engine **out);

/* The path the engine runs on (never AUTO). */
enum bmx_kernels_path bmx_engine_path(const struct bmx_engine *engine);
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

/*
 * A parallel-for that a thread pool offers the engine: for_each() calls fn(arg, t) once for
 * every t in [0, n_tasks), on any threads, and returns when all calls have returned. The tasks
 * of one call write disjoint memory. The results do not depend on how tasks are scheduled.
 */
struct bmx_parallel {
	void (*for_each)(void *ctx, unsigned n_tasks, void (*fn)(void *arg, unsigned task),
			 void *arg);
	void *ctx;
	unsigned threads; /* how many tasks run at once; the engine makes about this many */
};

/* bmx_engine_run() with one request's layers split over PAR (NULL: the calling thread only). */
int bmx_engine_run_parallel(const struct bmx_engine *engine, const struct bmx_layer_bits *bits,
			    uint32_t batch, const float *input, float *output, void *scratch,
			    const struct bmx_parallel *par);

/*
 * Prefix reuse (the adaptive driver, bmx_adaptive.h). A run is the positions [0, node_count) of
 * the model's execution order (bmx_model.order). Two operating points compute the same values
 * at every position before bmx_engine_first_difference() of them, so a second run at a richer
 * point can start there from the values the first run left, saved with bmx_engine_save_live()
 * (the liveness-shared scratch overwrites them later) and restored for any subset of samples.
 * The result is bit-identical to a whole run at the second point.
 */

/* The first position whose node computes differently at A than at B, or node_count. */
uint32_t bmx_engine_first_difference(const struct bmx_engine *engine,
				     const struct bmx_layer_bits *a,
				     const struct bmx_layer_bits *b);

/* Run positions [FROM, TO) (the values they read must be in SCRATCH); 0 or -EINVAL. */
int bmx_engine_run_range(const struct bmx_engine *engine, const struct bmx_layer_bits *bits,
			 uint32_t batch, const float *input, void *scratch, uint32_t from,
			 uint32_t to, const struct bmx_parallel *par);

/*
 * A whole run on the calling thread that reads CLOCK (a clockid_t: CLOCK_MONOTONIC, or
 * CLOCK_THREAD_CPUTIME_ID, which a preemption does not advance but which costs a system call)
 * between positions: NS[pos] (node_count entries) receives the nanoseconds position POS of the
 * order took, fused requantizations and all, exactly as bmx_engine_run() runs them (a run split
 * with bmx_engine_run_range() quantizes each resumed layer's input again). For the daemon's
 * per-layer cost table. 0 or -EINVAL.
 */
int bmx_engine_run_timed(const struct bmx_engine *engine, const struct bmx_layer_bits *bits,
			 uint32_t batch, const float *input, void *scratch, int clock,
			 uint64_t *ns);

/* Copy the model output of a finished run out of SCRATCH. */
void bmx_engine_read_output(const struct bmx_engine *engine, uint32_t batch, const void *scratch,
			    float *output);

/*
 * NODE's value in SCRATCH (batch x its shape, NHWC), valid after its position ran and until a
 * later node reuses its slot; NULL for a CONV2D/LINEAR whose ReLU is fused into it.
 */
const float *bmx_engine_value(const struct bmx_engine *engine, uint32_t batch, const void *scratch,
			      uint32_t node);

/* Floats per sample of the values written before position POS and read at or after it. */
uint64_t bmx_engine_live_size(const struct bmx_engine *engine, uint32_t pos);

/* Save those values of a run of BATCH samples (after positions [0, POS) ran) into SAVED. */
void bmx_engine_save_live(const struct bmx_engine *engine, uint32_t pos, uint32_t batch,
			  const void *scratch, float *saved);

/* Put back samples SAMPLES[0..N) of SAVED (saved from SAVED_BATCH) as a batch of N in SCRATCH. */
void bmx_engine_restore_live(const struct bmx_engine *engine, uint32_t pos, const float *saved,
			     uint32_t saved_batch, const uint32_t *samples, uint32_t n,
			     void *scratch);

#endif
