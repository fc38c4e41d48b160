/* SPDX-License-Identifier: MIT */
/*
 * cost_table.h — what each layer costs at each bit-width, measured on the kernel path that runs
 * it (docs/governor.md, "Costs").
 *
 * One row per (layer, bit-width the layer allows), at two batch sizes: 1 and the largest batch a
 * client may send (BMX_MAX_BATCH). A row holds the engine's time per sample in ns (its median
 * over interleaved repetitions) and that median's standard error, and says whether it was
 * measured or is still an estimate. Measuring is incremental (cost_measure() does what fits a
 * deadline), so the daemon measures what fits its start-up budget at once and the rest in the
 * background; cost_table_estimate() fills the rows not yet measured, from the layer's measured
 * rows, else from the other batch, else by BitOps, and says which it used. Plain data: no
 * threads, no locks; the daemon copies tables between its threads (daemon_cost.c).
 */
#ifndef BITMIX_COST_TABLE_H
#define BITMIX_COST_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bmx_engine.h"

#define COST_BATCHES 2 /* [0]: batch 1, [1]: the large batch */
#define COST_NB 9      /* arrays indexed by bits directly (2..8) */

struct cost_layer {
	uint16_t allowed;		  /* bit b: the layer allows b bits */
	uint16_t measured[COST_BATCHES];  /* bit b: that row was measured (else estimated) */
	double ns[COST_BATCHES][COST_NB]; /* per sample; 0 where not allowed */
	/*
	 * The median's relative standard error, from the repetitions' interquartile range
	 * (0.93 IQR / sqrt(reps) / median, as for a normal sample): what tells a real saving from noise.
	 */
	double rel_error[COST_BATCHES][COST_NB];
};

struct cost_table {
	uint32_t layer_count;
	uint32_t batch[COST_BATCHES]; /* 1 and the large batch */
	struct cost_layer *layers;    /* [layer_count] */
};

/* A table for MODEL's layers, nothing measured; LARGE_BATCH >= 1. 0 or -ENOMEM. */
int cost_table_init(struct cost_table *t, const struct bmx_model *model, uint32_t large_batch);
void cost_table_free(struct cost_table *t);
/* Copy SRC into DST (same model): 0 or -ENOMEM. */
int cost_table_copy(struct cost_table *dst, const struct cost_table *src);

/* Rows (layer, allowed bits) in all and those measured at batch BI. */
void cost_table_count_batch(const struct cost_table *t, unsigned bi, uint32_t *rows,
			    uint32_t *measured);
/* Rows (layer, allowed bits) in all and those measured at both batches. */
void cost_table_count(const struct cost_table *t, uint32_t *rows, uint32_t *measured);
static inline bool cost_table_complete(const struct cost_table *t)
{
	uint32_t rows, measured;

	cost_table_count(t, &rows, &measured);
	return rows == measured;
}

/*
 * Fill every row not measured with an estimate, from (in this order) the layer's measured rows
 * at that batch (interpolated in bits, the nearest one beyond them: no saving is assumed that was
 * not seen), the same row at the other batch (scaled by the two batches' measured ratio), or
 * BitOps (MACS[l] x b x b, at the measured ns per BitOp, else 1 ps). Says in WHY (if not NULL)
 * which fallbacks it used, "" when none (every row measured).
 */
void cost_table_estimate(struct cost_table *t, const struct bmx_model *model, char *why,
			 size_t why_len);

/*
 * Measure batch index BI of T on ENGINE: every bit-width some layer allows, run uniformly (each
 * layer at the nearest bits it allows), one warm-up run each, then REPS repetitions in which the
 * bit-widths take turns (in a rotated order each time), each run timed node by node
 * (bmx_engine_run_timed) and each node's time given to its layer (a non-layer node to the last
 * layer before it in the order, or the first layer), on the thread's CPU clock when the runs are
 * long enough for its cost not to matter, else on the wall clock, and then a run the scheduler
 * interrupted (CPU time under 90% of the wall time) is repeated, up to twice per repetition. Rows
 * are set to the median of the repetitions, marked measured, only if all REPS fitted before
 * DEADLINE_NS (CLOCK_MONOTONIC; 0: none) and *STOP (if not NULL) stayed false.
 * Returns 0, -ETIME (out of time: nothing changed), -ECANCELED (stopped) or -ENOMEM.
 */
int cost_measure(struct cost_table *t, const struct bmx_engine *engine, unsigned bi, unsigned reps,
		 uint64_t deadline_ns, const bool *stop);

/* The sum over layers of T's batch-BI costs at uniform B bits (each layer at the nearest bits). */
double cost_table_uniform_ns(const struct cost_table *t, unsigned bi, unsigned b);

#endif
