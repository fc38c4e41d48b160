/* SPDX-License-Identifier: MIT */
/*
 * bit_allocator.h — QBitOpt-style per-layer bit allocation under a cost budget.
 *
 * Given, per layer, the bit-widths it may take, the loss sensitivity of each (Fisher trace times
 * quantization noise, from the .bmx) and the cost of each (measured time or BitOps), choose one
 * bit-width per layer that minimises the summed sensitivity while the summed cost stays within
 * the budget: a multiple-choice knapsack. Small instances are solved exactly by dynamic
 * programming over integer cost units; large ones by a greedy walk along each layer's lower
 * convex hull. Both never exceed the budget. Pure functions, no allocation after _new().
 */
#ifndef BITMIX_BIT_ALLOCATOR_H
#define BITMIX_BIT_ALLOCATOR_H

#include <stddef.h>
#include <stdint.h>

#define ALLOC_MIN_BITS 2
#define ALLOC_MAX_BITS 8
#define ALLOC_NB (ALLOC_MAX_BITS + 1) /* arrays indexed by bits directly */

/* One layer's choices. Only bits set in `allowed` are considered. */
struct alloc_layer {
	uint16_t allowed;	      /* bit b set: b bits allowed (2..8) */
	double sensitivity[ALLOC_NB]; /* >= 0; lower is better */
	double cost[ALLOC_NB];	      /* > 0; any unit, the budget's */
};

enum alloc_method {
	ALLOC_AUTO = 0, /* exact DP when layers x units is small, else greedy */
	ALLOC_EXACT,
	ALLOC_GREEDY,
};

struct alloc_result {
	uint8_t bits[1024]; /* per layer */
	double cost;	    /* summed cost of the choice */
	double sensitivity; /* summed sensitivity of the choice */
	int feasible;	    /* 0: even the cheapest choice exceeds the budget (bits = cheapest) */
	enum alloc_method method;
};

struct bit_allocator;

/* An allocator for N layers (1..1024) with DP resolution UNITS (cost quantum = total/UNITS). */
int bit_allocator_new(size_t n_layers, unsigned dp_units, struct bit_allocator **out);
void bit_allocator_free(struct bit_allocator *a);

/*
 * Choose bits for LAYERS under BUDGET. Returns 0, or -EINVAL if a layer allows no bits.
 * The exact method quantizes each cost UP to whole units and the budget DOWN, so its answer is
 * optimal for the quantized costs and always within the real budget; with integer costs and a
 * unit of 1 it is exactly optimal.
 */
int bit_allocator_solve(struct bit_allocator *a, const struct alloc_layer *layers, double budget,
			enum alloc_method method, struct alloc_result *out);

/* The summed cost of the cheapest and of the most expensive choice. */
void bit_allocator_cost_range(const struct alloc_layer *layers, size_t n, double *min_cost,
			      double *max_cost);

#endif
