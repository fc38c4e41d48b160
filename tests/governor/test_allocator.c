/* SPDX-License-Identifier: MIT */
/*
 * test_allocator.c — the QBitOpt-style allocator against brute force on random small instances,
 * and its budget guarantee on random large ones (exact and greedy alike).
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "bit_allocator.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next_u32(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static double next_unit(void)
{
	return (next_u32() & 0xffffff) / (double)0x1000000;
}

/* A random layer: a random non-empty subset of 2..8, costs rising with bits or not at all. */
static void random_layer(struct alloc_layer *l, bool integer)
{
	do
		l->allowed = (uint16_t)(next_u32() & 0x1fc);
	while (!l->allowed);
	for (int b = 2; b <= 8; b++) {
		double c = integer ? (double)(1 + next_u32() % 20) : 0.5 + 20 * next_unit();
		l->cost[b] = c;
		l->sensitivity[b] = next_unit() * 10;
	}
}

static void brute(const struct alloc_layer *layers, size_t n, size_t i, double budget, double cost,
		  double sens, double *best)
{
	if (i == n) {
		if (cost <= budget && sens < *best)
			*best = sens;
		return;
	}
	for (int b = 2; b <= 8; b++)
		if (layers[i].allowed & (1u << b))
			brute(layers, n, i + 1, budget, cost + layers[i].cost[b],
			      sens + layers[i].sensitivity[b], best);
}

static void exact_equals_brute_force(void **state)
{
	struct alloc_layer layers[6];
	struct bit_allocator *a;
	struct alloc_result res;
	int optimal = 0, infeasible = 0;

	(void)state;
	for (int trial = 0; trial < 400; trial++) {
		size_t n = 1 + next_u32() % 6;
		double lo, hi, best = INFINITY, budget;

		for (size_t i = 0; i < n; i++)
			random_layer(&layers[i], true);
		bit_allocator_cost_range(layers, n, &lo, &hi);
		budget = floor(lo + (hi - lo + 4) * next_unit()) - 2;
		assert_int_equal(bit_allocator_new(n, 512, &a), 0);
		assert_int_equal(bit_allocator_solve(a, layers, budget, ALLOC_EXACT, &res), 0);
		brute(layers, n, 0, budget, 0, 0, &best);
		if (isinf(best)) {
			assert_int_equal(res.feasible, 0);
			infeasible++;
		} else {
			assert_int_equal(res.feasible, 1);
			assert_true(res.cost <= budget);
			assert_float_equal(res.sensitivity, best, 1e-9);
			for (size_t i = 0; i < n; i++)
				assert_true(layers[i].allowed & (1u << res.bits[i]));
			optimal++;
		}
		bit_allocator_free(a);
	}
	/* Both branches really ran. */
	assert_true(optimal > 300);
	assert_true(infeasible > 0);
}

static void never_over_budget_on_large_models(void **state)
{
	struct alloc_layer *layers = calloc(200, sizeof(*layers));
	struct bit_allocator *a;
	struct alloc_result res;

	(void)state;
	for (int trial = 0; trial < 200; trial++) {
		size_t n = 20 + next_u32() % 180;
		double lo, hi, budget;
		enum alloc_method m = trial % 2 ? ALLOC_GREEDY : ALLOC_EXACT;

		for (size_t i = 0; i < n; i++)
			random_layer(&layers[i], false);
		bit_allocator_cost_range(layers, n, &lo, &hi);
		budget = lo + (hi - lo) * next_unit();
		assert_int_equal(bit_allocator_new(n, 256, &a), 0);
		assert_int_equal(bit_allocator_solve(a, layers, budget, m, &res), 0);
		assert_int_equal(res.feasible, 1);
		assert_true(res.cost <= budget);
		/* Spending more must never be worse: the full budget gives the minimum everywhere. */
		bit_allocator_solve(a, layers, hi, m, &res);
		double best = 0;
		for (size_t i = 0; i < n; i++) {
			double s = INFINITY;
			for (int b = 2; b <= 8; b++)
				if (layers[i].allowed & (1u << b))
					s = fmin(s, layers[i].sensitivity[b]);
			best += s;
		}
		assert_float_equal(res.sensitivity, best, 1e-6);
		bit_allocator_free(a);
	}
	free(layers);
}

/* The greedy is the LP optimum less at most one segment: never far from the exact answer. */
static void greedy_close_to_exact(void **state)
{
	struct alloc_layer layers[12];
	struct bit_allocator *a;
	struct alloc_result ex, gr;

	(void)state;
	for (int trial = 0; trial < 200; trial++) {
		double lo, hi, budget, max_gain = 0;

		for (size_t i = 0; i < 12; i++) {
			random_layer(&layers[i], true);
			/* Realistic layers: more bits cost more and lose less. */
			for (int b = 2; b <= 8; b++) {
				layers[i].cost[b] = (1 + i % 3) * b * b;
				layers[i].sensitivity[b] = (1 + i % 5) * ldexp(1, -2 * b) * 1000;
			}
			for (int b = 2; b <= 8; b++)
				max_gain = fmax(max_gain, layers[i].sensitivity[2] -
								  layers[i].sensitivity[b]);
		}
		bit_allocator_cost_range(layers, 12, &lo, &hi);
		budget = floor(lo + (hi - lo) * next_unit());
		assert_int_equal(bit_allocator_new(12, 4096, &a), 0);
		bit_allocator_solve(a, layers, budget, ALLOC_EXACT, &ex);
		bit_allocator_solve(a, layers, budget, ALLOC_GREEDY, &gr);
		assert_true(gr.cost <= budget);
		assert_true(gr.sensitivity >= ex.sensitivity - 1e-9);
		assert_true(gr.sensitivity <= ex.sensitivity + max_gain + 1e-9);
		bit_allocator_free(a);
	}
}

static void refuses_a_layer_without_bits(void **state)
{
	struct alloc_layer l = { .allowed = 0 };
	struct bit_allocator *a;
	struct alloc_result res;

	(void)state;
	assert_int_equal(bit_allocator_new(1, 16, &a), 0);
	assert_int_equal(bit_allocator_solve(a, &l, 100, ALLOC_AUTO, &res), -EINVAL);
	bit_allocator_free(a);
	assert_int_equal(bit_allocator_new(0, 16, &a), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(exact_equals_brute_force),
		cmocka_unit_test(never_over_budget_on_large_models),
		cmocka_unit_test(greedy_close_to_exact),
		cmocka_unit_test(refuses_a_layer_without_bits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
