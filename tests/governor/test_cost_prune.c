/* SPDX-License-Identifier: MIT */
/*
 * test_cost_prune.c — the allocator spends only real savings: a policy fed a per-layer cost
 * table in which some layers cost as much at 4 bits as at 8 (and within noise at 2 and 3) keeps
 * those layers at 8 and meets its budget with the layers whose lower bits are really cheaper;
 * limits, a userspace choice and a latency ceiling that the real savings cannot meet still get
 * lower bits; powersave's cheapest point is the cheapest real one; a saving within the
 * measurement's error is no saving; new rows re-decide at once.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "governor.h"

#define NL 6
#define FLAT 3 /* layers 0..2: lower bits save (almost) nothing; 3..5: cost in proportion to b */

static const char *const names[NL] = { "flat0", "flat1", "flat2", "conv3", "conv4", "conv5" };
static const uint16_t masks[NL] = { 0x1fc, 0x1fc, 0x1fc, 0x1fc, 0x1fc, 0x1fc };
static const uint64_t macs[NL] = { 1000, 1000, 1000, 1000, 1000, 1000 };

struct fixture {
	struct gov_core *core;
	struct gov_policy *p;
	struct bmx_governor_config cfg;
	struct bmx_layer_bits published[NL];
	struct gov_layer_cost costs[NL];
	float sens[NL][7];
	uint64_t now;
};

static void publish(void *userdata, const struct bmx_layer_bits *bits)
{
	struct fixture *f = userdata;

	memcpy(f->published, bits, sizeof(f->published));
}

/*
 * Flat layers: 100 ns at 4..8 bits, 99.5 at 3, 99 at 2 (a 1% "saving", noise on real hardware),
 * and little sensitivity, so that an allocator that believed those savings would take them
 * first. The others: 10 ns per bit, and ten times the sensitivity.
 */
static void fill_costs(struct fixture *f, double rel_error)
{
	for (int l = 0; l < NL; l++)
		for (int b = 2; b <= 8; b++) {
			double ns = l < FLAT ? (b == 2 ? 99 : b == 3 ? 99.5 : 100) : 10.0 * b;

			f->costs[l].ns[0][b] = ns;
			f->costs[l].ns[1][b] =
				ns / 2; /* the large batch: half, as a GEMM amortizes */
			f->costs[l].rel_error[0][b] = f->costs[l].rel_error[1][b] = rel_error;
			f->sens[l][b - 2] = (float)((l < FLAT ? 0.01 : 1.0) * ldexp(1.0, -2 * b));
		}
}

static struct fixture *setup(const char *governor, const struct bmx_governor_policy_config *lim)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const float *sens[NL];
	struct bmx_layer_bits initial[NL];
	struct bmx_governor_policy_config none = { .min_bits = 2, .max_bits = 8 };
	char why[256];

	assert_non_null(f);
	fill_costs(f, 0);
	for (int l = 0; l < NL; l++) {
		sens[l] = f->sens[l];
		initial[l] = (struct bmx_layer_bits){ 8, 8 };
	}
	struct gov_model_desc d = {
		.name = "m",
		.layer_count = NL,
		.layer_names = names,
		.bits_mask = masks,
		.macs = macs,
		.sensitivity = sens,
		.initial = initial,
		.layer_costs = f->costs,
		.large_batch = 256,
	};
	memcpy(f->published, initial, sizeof(initial));
	bmx_governor_config_defaults(&f->cfg);
	snprintf(f->cfg.name, sizeof(f->cfg.name), "%s", governor);
	assert_int_equal(gov_core_new(&f->cfg, &f->core), 0);
	f->now = 1000000000ull;
	assert_int_equal(gov_core_add_policy(f->core, &d, lim ? lim : &none, publish, f, f->now,
					     &f->p, why, sizeof(why)),
			 0);
	assert_int_equal(gov_core_set_governor(f->core, governor, f->now, why, sizeof(why)), 0);
	return f;
}

static void finish(struct fixture *f)
{
	gov_core_free(f->core);
	free(f);
}

static double cost_of(const struct fixture *f)
{
	double c = 0;

	for (int l = 0; l < NL; l++)
		c += f->costs[l].ns[0][f->published[l].w_bits];
	return c;
}

/* A latency ceiling is the budget: flat layers stay at 8, the others pay for it. */
static void flat_layers_stay_at_8_under_a_budget(void **state)
{
	struct fixture *f = setup("performance", NULL);
	uint32_t id;
	int lowered = 0;

	(void)state;
	for (int l = 0; l < NL; l++)
		assert_int_equal(f->published[l].w_bits, 8);
	/* 300 for the flat layers at 8 bits, 150 of the others' 240: they must give up 90 ns. */
	assert_int_equal(gov_policy_hold(f->p, GOV_HOLD_MAX_LATENCY_NS, 450, 1, &id), 0);
	for (int l = 0; l < FLAT; l++) {
		assert_int_equal(f->published[l].w_bits, 8);
		assert_true(gov_policy_pruned(f->p, l) & (1u << 4)); /* 4 costs what 8 costs */
	}
	for (int l = FLAT; l < NL; l++) {
		lowered += f->published[l].w_bits < 8;
		assert_int_equal(gov_policy_pruned(f->p, l), 0);
	}
	assert_true(lowered > 0);
	assert_true(cost_of(f) <= 450);
	assert_true(cost_of(f) >= 440); /* and it spends what it may */
	finish(f);
}

/* powersave: the cheapest real point is 8 bits on the flat layers, 2 on the others. */
static void powersave_takes_the_cheapest_real_point(void **state)
{
	struct fixture *f = setup("powersave", NULL);

	(void)state;
	for (int l = 0; l < NL; l++)
		assert_int_equal(f->published[l].w_bits, l < FLAT ? 8 : 2);
	finish(f);
}

/* A limit, a pin, a userspace choice and an unmeetable latency ceiling still lower them. */
static void limits_and_holds_still_force_lower_bits(void **state)
{
	struct bmx_governor_policy_config lim = { .min_bits = 2, .max_bits = 4 };
	struct bmx_layer_bits user[NL];
	struct fixture *f = setup("performance", &lim);
	uint32_t id;

	(void)state;
	for (int l = 0; l < NL; l++)
		assert_int_equal(f->published[l].w_bits, 4); /* max_bits: 4 is the richest left */
	finish(f);

	f = setup("userspace", NULL);
	for (int l = 0; l < NL; l++)
		user[l] = (struct bmx_layer_bits){ 2, 2 };
	assert_int_equal(gov_policy_set_user_bits(f->p, user), 0);
	for (int l = 0; l < NL; l++)
		assert_int_equal(f->published[l].w_bits, 2);
	finish(f);

	/* 358 ns cannot be met with real savings (their cheapest is 300 + 60 = 360 ns). */
	f = setup("performance", NULL);
	assert_int_equal(gov_policy_hold(f->p, GOV_HOLD_MAX_LATENCY_NS, 358, 1, &id), 0);
	assert_true(cost_of(f) <= 358);
	for (int l = 0; l < FLAT; l++)
		assert_true(f->published[l].w_bits < 8);
	finish(f);
}

/* A 5% saving measured with a 5% standard error is noise; with 0.5% it is real. */
static void savings_within_the_error_are_noise(void **state)
{
	struct fixture *f = setup("performance", NULL);

	(void)state;
	fill_costs(f, 0.05);
	for (int b = 2; b <= 7; b++)
		f->costs[0].ns[0][b] = f->costs[0].ns[1][b] = 95;
	assert_int_equal(gov_policy_set_layer_costs(f->p, f->costs), 0);
	assert_int_equal(gov_policy_pruned(f->p, 0), 0x0fc); /* 2..7: 2 x 7.1% error > 5% */
	fill_costs(f, 0.005);
	for (int b = 2; b <= 7; b++)
		f->costs[0].ns[0][b] = f->costs[0].ns[1][b] = 95;
	assert_int_equal(gov_policy_set_layer_costs(f->p, f->costs), 0);
	assert_int_equal(gov_policy_pruned(f->p, 0), 0x07c); /* 7 kept; 2..6 cost what 7 costs */
	finish(f);
}

/* New rows re-decide at once; the traffic's batch picks between batch 1 and the large batch. */
static void new_rows_and_the_batch_re_decide(void **state)
{
	struct fixture *f = setup("performance", NULL);
	double lo, hi;
	uint32_t id;

	(void)state;
	assert_int_equal(gov_policy_hold(f->p, GOV_HOLD_MAX_LATENCY_NS, 450, 1, &id), 0);
	for (int l = 0; l < FLAT; l++)
		f->costs[l].ns[0][2] = f->costs[l].ns[1][2] =
			20; /* measured: 2 bits is cheap after all */
	assert_int_equal(gov_policy_set_layer_costs(f->p, f->costs), 0);
	int at2 = 0;
	for (int l = 0; l < FLAT; l++) {
		at2 += f->published[l].w_bits == 2; /* the least sensitive saving now */
		assert_int_equal(gov_policy_pruned(f->p, l), 0x0f8); /* 3..7 still save nothing */
	}
	assert_true(at2 >= 1);
	gov_policy_cost_range(f->p, &lo, &hi);
	assert_true(fabs(hi - 540) < 1e-6);
	gov_policy_set_batch(f->p, 256);
	gov_policy_cost_range(f->p, &lo, &hi);
	assert_true(fabs(hi - 270) < 1e-6); /* the large batch's table */
	gov_policy_set_batch(f->p, 16);
	gov_policy_cost_range(f->p, &lo, &hi);
	assert_true(fabs(hi - 540 * (1 - 0.5 * log(16) / log(256))) < 1e-6);
	assert_true(gov_policy_batch(f->p) == 16);
	finish(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(flat_layers_stay_at_8_under_a_budget),
		cmocka_unit_test(powersave_takes_the_cheapest_real_point),
		cmocka_unit_test(limits_and_holds_still_force_lower_bits),
		cmocka_unit_test(savings_within_the_error_are_noise),
		cmocka_unit_test(new_rows_and_the_batch_re_decide),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
