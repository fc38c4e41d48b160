/* SPDX-License-Identifier: MIT */
/*
 * bit_allocator.c — the QBitOpt-style allocator: minimum summed sensitivity within a budget.
 *
 * ALLOC_AUTO solves exactly up to 60,000 DP cells (16 layers at 512 units, about 60 us here) and
 * greedily above. Exact: a dynamic programme over (layer, cost units used), O(layers x bit-widths x units), with
 * every cost rounded up to whole units and the budget rounded down, so the answer never exceeds
 * the real budget. Greedy: each layer's choices reduced to their lower convex hull in the
 * (cost, sensitivity) plane; every hull segment is an upgrade with an efficiency (sensitivity
 * saved per unit of cost); upgrades are taken best-first while they fit, and a layer whose next
 * upgrade does not fit takes no later one. Its result is the LP relaxation's optimum minus at most
 * one fractional segment: within one segment's sensitivity gain of the true optimum, and never
 * over budget.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bit_allocator.h"

struct segment {
	double efficiency; /* sensitivity saved per unit of cost, > 0 */
	double d_cost, d_sens;
	uint32_t layer;
	uint8_t to_bits;
	uint8_t rank; /* position along the layer's hull */
};

struct bit_allocator {
	size_t n;
	unsigned units;
	double *dp_prev, *dp_cur; /* [units + 1] */
	uint8_t *choice;	  /* [n][units + 1]: bits chosen for layer l at that total */
	struct segment *segments; /* [n * ALLOC_NB] */
	uint8_t *next_rank;	  /* [n] */
};

int bit_allocator_new(size_t n_layers, unsigned dp_units, struct bit_allocator **out)
{
	struct bit_allocator *a;

	*out = NULL;
	if (n_layers < 1 || n_layers > 1024 || dp_units < 1 || dp_units > (1u << 20))
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->n = n_layers;
	a->units = dp_units;
	a->dp_prev = malloc((dp_units + 1) * sizeof(double));
	a->dp_cur = malloc((dp_units + 1) * sizeof(double));
	a->choice = malloc(n_layers * (dp_units + 1));
	a->segments = malloc(n_layers * ALLOC_NB * sizeof(*a->segments));
	a->next_rank = malloc(n_layers);
	if (!a->dp_prev || !a->dp_cur || !a->choice || !a->segments || !a->next_rank) {
		bit_allocator_free(a);
		return -ENOMEM;
	}
	*out = a;
	return 0;
}

void bit_allocator_free(struct bit_allocator *a)
{
	if (!a)
		return;
	free(a->dp_prev);
	free(a->dp_cur);
	free(a->choice);
	free(a->segments);
	free(a->next_rank);
	free(a);
}

static int cheapest_bits(const struct alloc_layer *l)
{
	int best = -1;

	for (int b = ALLOC_MIN_BITS; b <= ALLOC_MAX_BITS; b++) {
		if (!(l->allowed & (1u << b)))
			continue;
		if (best < 0 || l->cost[b] < l->cost[best] ||
		    (l->cost[b] == l->cost[best] && l->sensitivity[b] < l->sensitivity[best]))
			best = b;
	}
	return best;
}

void bit_allocator_cost_range(const struct alloc_layer *layers, size_t n, double *min_cost,
			      double *max_cost)
{
	double lo = 0, hi = 0;

	for (size_t i = 0; i < n; i++) {
		double l_lo = INFINITY, l_hi = 0;

		for (int b = ALLOC_MIN_BITS; b <= ALLOC_MAX_BITS; b++) {
			if (!(layers[i].allowed & (1u << b)))
				continue;
			l_lo = fmin(l_lo, layers[i].cost[b]);
			l_hi = fmax(l_hi, layers[i].cost[b]);
		}
		lo += isfinite(l_lo) ? l_lo : 0;
		hi += l_hi;
	}
	*min_cost = lo;
	*max_cost = hi;
}

static void finish(const struct alloc_layer *layers, size_t n, struct alloc_result *out)
{
	out->cost = 0;
	out->sensitivity = 0;
	for (size_t i = 0; i < n; i++) {
		out->cost += layers[i].cost[out->bits[i]];
		out->sensitivity += layers[i].sensitivity[out->bits[i]];
	}
}

static bool all_integer(const struct alloc_layer *layers, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (int b = ALLOC_MIN_BITS; b <= ALLOC_MAX_BITS; b++)
			if ((layers[i].allowed & (1u << b)) &&
			    layers[i].cost[b] != floor(layers[i].cost[b]))
				return false;
	return true;
}

/* Exact over quantized costs. dp[u]: least sensitivity of layers 0..l using at most u units. */
static void solve_exact(struct bit_allocator *a, const struct alloc_layer *layers, double budget,
			struct alloc_result *out)
{
	unsigned U = a->units;
	double unit = budget / U;

	/* Integer costs within the resolution: a unit of 1 makes the answer exactly optimal. */
	if (budget <= U && all_integer(layers, a->n)) {
		U = (unsigned)floor(budget);
		unit = 1;
	}
	for (unsigned u = 0; u <= U; u++)
		a->dp_prev[u] = 0;
	for (size_t l = 0; l < a->n; l++) {
		uint8_t *ch = a->choice + l * (a->units + 1);

		for (unsigned u = 0; u <= U; u++) {
			double best = INFINITY;
			uint8_t best_b = 0;

			for (int b = ALLOC_MIN_BITS; b <= ALLOC_MAX_BITS; b++) {
				double c;

				if (!(layers[l].allowed & (1u << b)))
					continue;
				c = ceil(layers[l].cost[b] / unit - 1e-9);
				if (c > u)
					continue;
				double s = a->dp_prev[u - (unsigned)c] + layers[l].sensitivity[b];
				if (s < best) {
					best = s;
					best_b = (uint8_t)b;
				}
			}
			a->dp_cur[u] = best;
			ch[u] = best_b;
		}
		double *t = a->dp_prev;
		a->dp_prev = a->dp_cur;
		a->dp_cur = t;
	}
	if (!isfinite(a->dp_prev[U])) {
		out->feasible = 0;
		return;
	}
	out->feasible = 1;
	for (size_t l = a->n; l-- > 0;) {
		uint8_t b = a->choice[l * (a->units + 1) + U];

		out->bits[l] = b;
		U -= (unsigned)ceil(layers[l].cost[b] / unit - 1e-9);
	}
}

/* Push layer L's lower-convex-hull upgrades, starting from its cheapest choice. */
static size_t hull_segments(const struct alloc_layer *l, uint32_t li, int start,
			    struct segment *seg)
{
	size_t n = 0;
	int cur = start;

	for (;;) {
		int next = -1;
		double best_eff = 0;

		/* The steepest descent from cur is the next hull vertex. */
		for (int b = ALLOC_MIN_BITS; b <= ALLOC_MAX_BITS; b++) {
			if (!(l->allowed & (1u << b)) || b == cur)
				continue;
			double dc = l->cost[b] - l->cost[cur],
			       ds = l->sensitivity[cur] - l->sensitivity[b];
			if (dc <= 0 || ds <= 0)
				continue;
			if (ds / dc > best_eff) {
				best_eff = ds / dc;
				next = b;
			}
		}
		if (next < 0)
			return n;
		seg[n] = (struct segment){ .efficiency = best_eff,
					   .d_cost = l->cost[next] - l->cost[cur],
					   .d_sens = l->sensitivity[cur] - l->sensitivity[next],
					   .layer = li,
					   .to_bits = (uint8_t)next,
					   .rank = (uint8_t)n };
		n++;
		cur = next;
	}
}

static int by_efficiency(const void *x, const void *y)
{
	const struct segment *a = x, *b = y;

	if (a->efficiency != b->efficiency)
		return a->efficiency > b->efficiency ? -1 : 1;
	if (a->layer != b->layer)
		return a->layer < b->layer ? -1 : 1;
	return a->rank - b->rank;
}

static void solve_greedy(struct bit_allocator *a, const struct alloc_layer *layers, double budget,
			 struct alloc_result *out)
{
	size_t n_seg = 0;
	double cost = 0;

	for (size_t l = 0; l < a->n; l++) {
		out->bits[l] = (uint8_t)cheapest_bits(&layers[l]);
		cost += layers[l].cost[out->bits[l]];
		a->next_rank[l] = 0;
		n_seg += hull_segments(&layers[l], (uint32_t)l, out->bits[l], a->segments + n_seg);
	}
	out->feasible = cost <= budget;
	if (!out->feasible)
		return;
	qsort(a->segments, n_seg, sizeof(*a->segments), by_efficiency);
	for (size_t i = 0; i < n_seg; i++) {
		const struct segment *s = &a->segments[i];

		if (s->rank != a->next_rank[s->layer])
			continue; /* an earlier upgrade of this layer did not fit */
		if (cost + s->d_cost > budget) {
			a->next_rank[s->layer] = 0xff;
			continue;
		}
		cost += s->d_cost;
		out->bits[s->layer] = s->to_bits;
		a->next_rank[s->layer]++;
	}
}

int bit_allocator_solve(struct bit_allocator *a, const struct alloc_layer *layers, double budget,
			enum alloc_method method, struct alloc_result *out)
{
	double lo, hi;

	for (size_t l = 0; l < a->n; l++)
		if (cheapest_bits(&layers[l]) < 0)
			return -EINVAL;
	bit_allocator_cost_range(layers, a->n, &lo, &hi);
	if (method == ALLOC_AUTO)
		method = a->n * 7 * (size_t)a->units <= 60000 ? ALLOC_EXACT : ALLOC_GREEDY;
	out->method = method;
	if (budget >= hi) {
		/* Everything fits: each layer's least sensitive choice, the cheaper on a tie. */
		for (size_t l = 0; l < a->n; l++) {
			int best = -1;

			for (int b = ALLOC_MIN_BITS; b <= ALLOC_MAX_BITS; b++) {
				const struct alloc_layer *y = &layers[l];

				if (!(y->allowed & (1u << b)))
					continue;
				if (best < 0 || y->sensitivity[b] < y->sensitivity[best] ||
				    (y->sensitivity[b] == y->sensitivity[best] &&
				     y->cost[b] < y->cost[best]))
					best = b;
			}
			out->bits[l] = (uint8_t)best;
		}
		out->feasible = 1;
	} else if (!(budget >= lo)) {
		for (size_t l = 0; l < a->n; l++)
			out->bits[l] = (uint8_t)cheapest_bits(&layers[l]);
		out->feasible = 0;
	} else if (method == ALLOC_EXACT) {
		solve_exact(a, layers, budget, out);
		if (!out->feasible) { /* quantization lost the last units: the greedy still fits */
			out->method = ALLOC_GREEDY;
			solve_greedy(a, layers, budget, out);
		}
	} else {
		solve_greedy(a, layers, budget, out);
	}
	finish(layers, a->n, out);
	return 0;
}
