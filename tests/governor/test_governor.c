/* SPDX-License-Identifier: MIT */
/*
 * test_governor.c — the governor framework driven with synthetic readings and simulated time:
 * each governor's decisions, the fallback to performance, limits and pinned layers, QoS holds
 * (aggregation, release, release on disconnect), statistics, and the governor YAML block.
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
#define MS 1000000ull

static const char *const names[NL] = { "conv0", "conv1", "dw2", "conv3", "conv4", "fc" };
static const uint16_t masks[NL] = { 1u << 8, 0x1fc, 0x1fc, 0x1fc, 0x1fc, 0x1fc };
static const uint64_t macs[NL] = { 20000, 400000, 30000, 800000, 200000, 5000 };

struct fixture {
	struct gov_core *core;
	struct gov_policy *p;
	struct bmx_governor_config cfg;
	struct bmx_layer_bits published[NL];
	int publications;
	uint64_t now;
};

static void publish(void *userdata, const struct bmx_layer_bits *bits)
{
	struct fixture *f = userdata;

	memcpy(f->published, bits, sizeof(f->published));
	f->publications++;
}

static double avg_bits(const struct fixture *f)
{
	double num = 0, den = 0;

	for (int l = 0; l < NL; l++) {
		num += (double)macs[l] * f->published[l].w_bits;
		den += (double)macs[l];
	}
	return num / den;
}

static int setup_with(void **state, const char *governor,
		      const struct bmx_governor_policy_config *limits)
{
	struct fixture *f = calloc(1, sizeof(*f));
	static const float sens_rows[NL][7] = {
		{ 0 },
		{ 9, 5, 3, 2, 1.5f, 1.2f, 1 },
		{ 30, 10, 4, 2, 1, 0.5f, 0.2f },
		{ 4, 2, 1, .5f, .3f, .2f, .1f },
		{ 8, 4, 2, 1, .5f, .3f, .2f },
		{ 50, 20, 5, 1, .5f, .2f, .1f },
	};
	static const float *const sens[NL] = { sens_rows[0] + 6, sens_rows[1], sens_rows[2],
					       sens_rows[3],	 sens_rows[4], sens_rows[5] };
	struct bmx_layer_bits initial[NL];
	struct bmx_governor_policy_config none = { .min_bits = 2, .max_bits = 8 };
	struct gov_model_desc d = {
		.name = "m",
		.layer_count = NL,
		.layer_names = names,
		.bits_mask = masks,
		.macs = macs,
		.sensitivity = sens,
		.initial = initial,
	};
	char why[256];

	for (int l = 0; l < NL; l++)
		initial[l] = (struct bmx_layer_bits){ 8, 8 };
	memcpy(f->published, initial, sizeof(initial));
	bmx_governor_config_defaults(&f->cfg);
	snprintf(f->cfg.name, sizeof(f->cfg.name), "%s", governor);
	assert_int_equal(gov_core_new(&f->cfg, &f->core), 0);
	f->now = 1000 * MS;
	assert_int_equal(gov_core_add_policy(f->core, &d, limits ? limits : &none, publish, f,
					     f->now, &f->p, why, sizeof(why)),
			 0);
	gov_core_set_governor(f->core, governor, f->now, why, sizeof(why));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	gov_core_free(f->core);
	free(f);
	return 0;
}

/* One period of readings: temperature in C, load in %, the model serving RATE samples/s. */
static void tick(struct fixture *f, double temp_c, double load_pct, double rate)
{
	static uint64_t samples;
	struct sensor_reading r = { 0 };

	f->now += 100 * MS;
	samples += (uint64_t)(rate / 10);
	gov_policy_observe(f->p, samples, f->now);
	r.time_ns = f->now;
	r.have = SENSOR_HAVE_TEMP | SENSOR_HAVE_LOAD;
	r.temp_mc = (int32_t)lround(temp_c * 1000);
	r.load_permille = (uint32_t)lround(load_pct * 10);
	gov_core_update(f->core, &r);
}

static void performance_and_powersave(void **state)
{
	struct fixture *f;

	(void)state;
	setup_with((void **)&f, "powersave", NULL);
	tick(f, 40, 10, 0);
	for (int l = 1; l < NL; l++)
		assert_int_equal(f->published[l].w_bits, 2);
	assert_int_equal(f->published[0].w_bits, 8); /* the layer only knows 8 bits */
	assert_string_equal(gov_core_governor(f->core), "powersave");
	assert_int_equal(gov_core_set_governor(f->core, "performance", f->now, NULL, 0), 0);
	for (int l = 0; l < NL; l++)
		assert_int_equal(f->published[l].w_bits, 8);
	assert_int_equal(gov_core_set_governor(f->core, "nonesuch", f->now, NULL, 0), -ENOENT);
	assert_string_equal(gov_core_governor(f->core), "performance");
	teardown((void **)&f);
}

static void userspace_only_takes_user_bits_under_userspace(void **state)
{
	struct fixture *f;
	struct bmx_layer_bits want[NL];

	(void)state;
	setup_with((void **)&f, "performance", NULL);
	for (int l = 0; l < NL; l++)
		want[l] = (struct bmx_layer_bits){ 3, 5 };
	assert_int_equal(gov_policy_set_user_bits(f->p, want), -EBUSY);
	gov_core_set_governor(f->core, "userspace", f->now, NULL, 0);
	assert_int_equal(gov_policy_set_user_bits(f->p, want), 0);
	assert_int_equal(f->published[0].w_bits, 8); /* clamped to what the layer allows */
	assert_int_equal(f->published[1].w_bits, 3);
	assert_int_equal(f->published[1].a_bits, 5);
	tick(f, 99, 100, 1000); /* userspace ignores the sensors */
	assert_int_equal(f->published[1].w_bits, 3);
	teardown((void **)&f);
}

static void ondemand_follows_load(void **state)
{
	struct fixture *f;
	double idle, busy;

	(void)state;
	setup_with((void **)&f, "ondemand", NULL);
	tick(f, 40, 5, 100);
	idle = avg_bits(f);
	tick(f, 40, 95, 100);
	busy = avg_bits(f);
	assert_true(idle > 7.0);
	assert_true(busy < 2.5);
	tick(f, 40, 50, 100);
	assert_true(avg_bits(f) > busy && avg_bits(f) < idle);
	teardown((void **)&f);
}

static void ondemand_sampling_down_factor_holds_the_cheap_point(void **state)
{
	struct fixture *f;

	(void)state;
	setup_with((void **)&f, "performance", NULL);
	f->cfg.ondemand.sampling_down_factor = 3;
	gov_core_configure(f->core, &f->cfg, f->now);
	gov_core_set_governor(f->core, "ondemand", f->now, NULL, 0);
	tick(f, 40, 95, 100);
	double low = avg_bits(f);
	tick(f, 40, 5, 100);
	tick(f, 40, 5, 100);
	assert_float_equal(avg_bits(f), low, 1e-9);
	tick(f, 40, 5, 100);
	assert_true(avg_bits(f) > low + 3);
	teardown((void **)&f);
}

static void conservative_steps(void **state)
{
	struct fixture *f;
	double prev;

	(void)state;
	setup_with((void **)&f, "conservative", NULL);
	tick(f, 40, 50, 100);
	prev = avg_bits(f);
	assert_true(prev > 7.9);
	/* freq_step 5%: twenty busy periods take it from the top to the bottom, one step each. */
	int decreases = 0;
	for (int i = 0; i < 20; i++) {
		tick(f, 40, 95, 100);
		assert_true(avg_bits(f) <= prev + 1e-9);
		decreases += avg_bits(f) < prev - 1e-9;
		prev = avg_bits(f);
	}
	assert_true(decreases >= 8);
	assert_true(prev < 2.5);
	tick(f, 40, 50, 100); /* between the thresholds: hold */
	assert_float_equal(avg_bits(f), prev, 1e-9);
	tick(f, 40, 5, 100);
	assert_true(avg_bits(f) > prev);
	teardown((void **)&f);
}

static void step_wise_trips_with_hysteresis(void **state)
{
	struct fixture *f;
	double t;

	(void)state;
	setup_with((void **)&f, "step_wise", NULL); /* trips 70 and 80, hysteresis 2, 6 states */
	tick(f, 60, 0, 100);
	assert_true(avg_bits(f) > 7.9);
	/* Rising past 70: the state climbs one step per period, up to the first trip's half. */
	for (t = 70; t < 75; t += 0.5)
		tick(f, t, 0, 100);
	double at_first = avg_bits(f);
	assert_true(at_first < 7.9);
	/* Falling to 69 is inside the hysteresis: no relief yet. */
	tick(f, 69, 0, 100);
	tick(f, 69, 0, 100);
	assert_float_equal(avg_bits(f), at_first, 1e-9);
	/* Past 80 it goes further. */
	for (t = 80; t < 86; t += 0.5)
		tick(f, t, 0, 100);
	assert_true(avg_bits(f) < at_first);
	/* Past its precision steps it moved the cap; the daemon was never saturated. */
	assert_true(gov_core_work_cap(f->core) > 0);
	/* Well below every trip it comes back, one step per period: the cap first, then bits. */
	for (int i = 0; i < 6; i++)
		tick(f, 50, 0, 100);
	assert_true(gov_core_work_cap(f->core) == 0);
	for (int i = 0; i < 6; i++)
		tick(f, 50, 0, 100);
	assert_true(avg_bits(f) > 7.9);
	teardown((void **)&f);
}

/*
 * A tick on which the daemon's workers kept BUSY CPUs busy (and occupied); BUSY < 0: what RATE
 * samples per second cost at the published bits.
 */
static void tick_busy(struct fixture *f, double temp_c, double rate, double busy)
{
	static uint64_t work, throttled;
	double cap = gov_core_work_cap(f->core);

	if (busy < 0)
		busy = rate * gov_policy_cost(f->p) * 1e-9;
	if (cap > 0 && busy > cap) { /* the cap holds the work back: a worker waits all along */
		busy = cap;
		throttled += 100 * MS;
	}
	work += (uint64_t)(busy * 100 * MS);
	gov_core_observe_work(f->core, work, work, throttled, f->now + 100 * MS);
	tick(f, temp_c, 50, rate);
}

static double heard_cap = -1;

static void hear_cap(void *userdata, double cpus)
{
	(void)userdata;
	heard_cap = cpus;
}

/*
 * The second cooling device. A saturated daemon (every worker busy) turns cheaper samples into
 * more samples, not less power: power_allocator then keeps full precision and caps the work, and
 * the actuator hears the cap. With idle time left it lowers precision first and keeps the cap a
 * backstop above the budget; cooling down lifts the cap. step_wise does the same with its steps.
 */
static void saturated_daemon_is_capped_not_lowered(void **state)
{
	struct fixture *f;

	(void)state;
	setup_with((void **)&f, "power_allocator", NULL);
	gov_core_set_capacity(f->core, 2);
	gov_core_set_cap_fn(f->core, hear_cap, NULL);
	assert_true(heard_cap == 0);
	for (int i = 0; i < 10; i++)
		tick_busy(f, 50, 2000, 2.0);
	assert_true(gov_core_saturated(f->core));
	assert_true(gov_core_work_cap(f->core) == 0); /* below switch-on: nothing to cool */
	for (int i = 0; i < 20; i++) {
		tick_busy(f, 80 + i * 0.1, 2000, 2.0);
		assert_true(avg_bits(f) > 7.9);
	}
	double cap = gov_core_work_cap(f->core);
	assert_true(cap > 0 && cap < 2);
	assert_true(heard_cap == cap);
	struct gov_cap_stats st;
	gov_core_cap_stats(f->core, f->now, &st);
	assert_true(st.saturated && st.capped_ns > 0 && st.work_cap_cpus == cap);
	teardown((void **)&f);

	/*
	 * Over the control temperature with idle time left (8,600 samples/s of ~93 us at 8 bits
	 * keep 0.8 CPUs busy, and less at fewer bits): precision goes first, the cap stays a
	 * backstop above the work.
	 */
	setup_with((void **)&f, "power_allocator", NULL);
	gov_core_set_capacity(f->core, 2);
	for (int i = 0; i < 10; i++)
		tick_busy(f, 50, 8600, -1);
	for (int i = 0; i < 5; i++) {
		tick_busy(f, 80, 8600, -1);
		assert_false(gov_core_saturated(f->core));
		assert_true(gov_core_work_cap(f->core) == 0 ||
			    gov_core_work_cap(f->core) > 8600 * gov_policy_cost(f->p) * 1e-9);
	}
	assert_true(avg_bits(f) < 7);
	/* Cool again: below switch-on the cap goes and full precision returns. */
	tick_busy(f, 40, 2000, 0.8);
	assert_true(gov_core_work_cap(f->core) == 0 && avg_bits(f) > 7.9);
	teardown((void **)&f);

	/* step_wise, saturated: its steps move the cap, never the bits. */
	setup_with((void **)&f, "step_wise", NULL);
	gov_core_set_capacity(f->core, 2);
	for (int i = 0; i < 5; i++)
		tick_busy(f, 60, 100, 2.0);
	for (double t = 70; t < 86; t += 0.5) {
		tick_busy(f, t, 100, 2.0);
		assert_true(avg_bits(f) > 7.9);
	}
	assert_true(gov_core_work_cap(f->core) > 0 && gov_core_work_cap(f->core) < 1.0);
	teardown((void **)&f);
}

static void power_allocator_cools_a_busy_model(void **state)
{
	struct fixture *f;

	(void)state;
	setup_with((void **)&f, "power_allocator", NULL);
	tick(f, 50, 50, 2000);
	assert_true(avg_bits(f) > 7.9); /* below switch-on: no limit */
	double prev = 9;
	for (int i = 0; i < 20; i++) { /* overshooting the control temperature */
		tick(f, 80 + i * 0.1, 50, 2000);
		assert_true(avg_bits(f) <= prev + 1e-9);
		prev = avg_bits(f);
	}
	assert_true(prev < 6);
	/* An idle model costs nothing: it keeps full precision even when hot. */
	for (int i = 0; i < 30; i++)
		tick(f, 85, 50, 0);
	assert_true(avg_bits(f) > 7.9);
	teardown((void **)&f);
}

/*
 * Adaptive traffic that costs a quarter of the ceiling (gov_policy_cost_scale) draws less power
 * for the same operating point: under the same heat the governor grants richer bits than it
 * does for fixed traffic, and a floor observer hears every change of the floor.
 */

static uint8_t heard_floor;

static void hear_floor(void *userdata, uint8_t floor_bits)
{
	(void)userdata;
	heard_floor = floor_bits;
}

static void power_allocator_counts_adaptive_cost(void **state)
{
	struct fixture *f;
	double fixed[20], adaptive[20], gap = 0;
	uint32_t id;

	(void)state;
	setup_with((void **)&f, "power_allocator", NULL);
	for (int i = 0; i < 20; i++) {
		tick(f, 80 + i * 0.1, 50, 2000);
		fixed[i] = avg_bits(f);
	}
	teardown((void **)&f);
	setup_with((void **)&f, "power_allocator", NULL);
	gov_policy_set_cost_scale(f->p, 0.25);
	assert_float_equal(gov_policy_cost_scale(f->p), 0.25, 1e-12);
	for (int i = 0; i < 20; i++) {
		tick(f, 80 + i * 0.1, 50, 2000);
		adaptive[i] = avg_bits(f);
		assert_true(adaptive[i] >= fixed[i] - 1e-9);
		if (adaptive[i] - fixed[i] > gap)
			gap = adaptive[i] - fixed[i];
	}
	print_message("largest gain in average bits from adaptive traffic (x0.25): %.2f\n", gap);
	assert_true(gap > 1);
	gov_policy_set_cost_scale(f->p, 0);
	assert_float_equal(gov_policy_cost_scale(f->p), 0.01, 1e-12); /* clamped */

	gov_policy_set_floor_observer(f->p, hear_floor);
	assert_int_equal(heard_floor, 2); /* told at once: min_bits */
	assert_int_equal(gov_policy_hold(f->p, GOV_HOLD_MIN_BITS, 6, 1, &id), 0);
	assert_int_equal(heard_floor, 6);
	gov_core_release_owner(f->core, 1);
	assert_int_equal(heard_floor, 2);
	teardown((void **)&f);
}

static void power_allocator_falls_back_without_temperature(void **state)
{
	struct fixture *f;
	struct sensor_reading r = { .time_ns = 2000 * MS, .have = SENSOR_HAVE_LOAD };
	char why[256];

	(void)state;
	setup_with((void **)&f, "powersave", NULL);
	gov_core_update(f->core, &r);
	assert_int_equal(gov_core_set_governor(f->core, "power_allocator", f->now, why,
					       sizeof(why)),
			 -ENODATA);
	assert_string_equal(gov_core_governor(f->core), "performance");
	assert_non_null(strstr(why, "no temperature"));
	assert_non_null(strstr(gov_core_fallback_reason(f->core), "performance"));
	assert_true(avg_bits(f) > 7.9);
	teardown((void **)&f);
}

static void limits_and_pins(void **state)
{
	struct fixture *f;
	struct bmx_governor_policy_config lim = { .min_bits = 4, .max_bits = 6, .n_pinned = 1 };
	struct bmx_governor_policy_config bad = lim;
	char why[256];

	(void)state;
	snprintf(lim.pinned[0].layer, sizeof(lim.pinned[0].layer), "fc");
	lim.pinned[0].bits = 8;
	setup_with((void **)&f, "powersave", &lim);
	tick(f, 40, 0, 0);
	assert_int_equal(f->published[1].w_bits, 4);
	assert_int_equal(f->published[5].w_bits, 8);
	gov_core_set_governor(f->core, "performance", f->now, NULL, 0);
	assert_int_equal(f->published[1].w_bits, 6);
	snprintf(bad.pinned[0].layer, sizeof(bad.pinned[0].layer), "nonesuch");
	assert_int_equal(gov_policy_set_limits(f->p, &bad, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "nonesuch"));
	assert_int_equal(f->published[1].w_bits, 6); /* the old limits stand */
	snprintf(bad.pinned[0].layer, sizeof(bad.pinned[0].layer), "0");
	bad.pinned[0].bits = 4; /* conv0 only knows 8 */
	assert_int_equal(gov_policy_set_limits(f->p, &bad, why, sizeof(why)), -EINVAL);
	teardown((void **)&f);
}

static void holds_aggregate_and_release(void **state)
{
	struct fixture *f;
	uint32_t a, b, c;
	uint8_t floor_bits;
	uint64_t lat;
	size_t n;
	double lo, hi;

	(void)state;
	setup_with((void **)&f, "powersave", NULL);
	tick(f, 40, 0, 0);
	assert_true(avg_bits(f) < 2.1);
	assert_int_equal(gov_policy_hold(f->p, GOV_HOLD_MIN_BITS, 4, 11, &a), 0);
	assert_int_equal(gov_policy_hold(f->p, GOV_HOLD_MIN_BITS, 6, 12, &b), 0);
	assert_int_equal(f->published[1].w_bits, 6);		   /* the highest floor */
	assert_int_equal(gov_policy_release(f->p, b, 11), -EPERM); /* not the owner's */
	assert_int_equal(gov_policy_release(f->p, b, 12), 0);
	assert_int_equal(f->published[1].w_bits, 4);
	assert_int_equal(gov_policy_release(f->p, b, 12), -ENOENT);
	assert_int_equal(gov_policy_hold(f->p, GOV_HOLD_MIN_BITS, 9, 11, &c), -EINVAL);
	/* A latency ceiling under performance: the cost stays within it. */
	gov_core_set_governor(f->core, "performance", f->now, NULL, 0);
	gov_policy_cost_range(f->p, &lo, &hi);
	assert_int_equal(gov_policy_hold(f->p, GOV_HOLD_MAX_LATENCY_NS, (uint64_t)((lo + hi) / 2),
					 13, &c),
			 0);
	assert_true(gov_policy_cost(f->p) <= (lo + hi) / 2);
	assert_true(avg_bits(f) < 7.9);
	gov_policy_qos(f->p, &floor_bits, &lat, &n);
	assert_int_equal(floor_bits, 4);
	assert_int_equal(n, 2);
	/* The client goes away: its holds go with it. */
	gov_core_release_owner(f->core, 13);
	gov_core_release_owner(f->core, 11);
	gov_policy_qos(f->p, &floor_bits, &lat, &n);
	assert_int_equal(n, 0);
	assert_int_equal(floor_bits, 0);
	assert_true(avg_bits(f) > 7.9);
	teardown((void **)&f);
}

static void statistics_as_cpufreq_keeps_them(void **state)
{
	struct fixture *f;
	struct gov_stats st;
	uint64_t total = 0, t0;

	(void)state;
	setup_with((void **)&f, "performance", NULL);
	t0 = f->now;
	tick(f, 40, 0, 0);
	gov_core_set_governor(f->core, "powersave", f->now, NULL, 0);
	tick(f, 40, 0, 0);
	tick(f, 40, 0, 0);
	gov_core_set_governor(f->core, "performance", f->now, NULL, 0);
	tick(f, 40, 0, 0);
	gov_policy_stats(f->p, f->now, &st);
	assert_int_equal(st.transitions, 2);
	uint32_t hi = gov_state_of(8), lo = gov_state_of(avg_bits(f) > 0 ? 2.0 : 2.0);
	assert_int_equal(st.state, hi);
	assert_int_equal(st.trans_table[hi][st.trans_table[hi][lo] ? lo : gov_state_of(2.5)], 1);
	for (int s = 0; s < GOV_STATES; s++)
		total += st.time_in_state_ns[s];
	assert_int_equal(total, f->now - t0);
	assert_int_equal(st.time_in_state_ns[hi], 200 * MS);
	assert_true(st.decisions > 4);
	teardown((void **)&f);
}

static void yaml_block(void **state)
{
	struct bmx_config *c;
	struct bmx_config_error err;

	(void)state;
	assert_int_equal(bmx_config_load_string(
				 "t.yaml",
				 "models: {m: /x.bmx}\n"
				 "governor:\n"
				 "  name: step_wise\n"
				 "  step_wise:\n"
				 "    trips: [{temp: 60, hysteresis: 3}, {temp: 90}]\n"
				 "  power_allocator: {control_temp_c: 70, k_pu: 0.5}\n"
				 "  policies:\n"
				 "    m: {min_bits: 3, pinned: {fc: 8, 0: 8}, precision: policy}\n"
				 "    n: {precision: adaptive}\n",
				 &c, &err),
			 0);
	assert_string_equal(c->governor.name, "step_wise");
	assert_int_equal(c->governor.step_wise.n_trips, 2);
	assert_float_equal(c->governor.step_wise.trips[0].hysteresis_c, 3, 0);
	assert_float_equal(c->governor.power_allocator.k_pu, 0.5, 0);
	assert_int_equal(bmx_config_policy(c, "m")->min_bits, 3);
	assert_int_equal(bmx_config_policy(c, "m")->max_bits, 8);
	assert_int_equal(bmx_config_policy(c, "m")->n_pinned, 2);
	assert_int_equal(bmx_config_policy(c, "other")->min_bits, 2);
	assert_int_equal(bmx_config_policy(c, "m")->precision, 2);
	assert_int_equal(bmx_config_policy(c, "n")->precision, 1); /* adaptive: the cascade */
	assert_int_equal(bmx_config_policy(c, "other")->precision, 0);
	bmx_config_free(c);

	static const struct {
		const char *yaml, *expect;
	} bad[] = {
		{ "governor: {name: turbo}",
		  "t.yaml:2:18: governor.name: \"turbo\" is not one of" },
		{ "governor: {step_wise: {states: 0}}",
		  "governor.step_wise.states: \"0\" is not a number in 1..64" },
		{ "governor: {ondemand: {up_threshold: 101}}", "governor.ondemand.up_threshold" },
		{ "governor: {conservative: {up_threshold: 20, down_threshold: 30}}",
		  "down_threshold 30 must be below" },
		{ "governor: {step_wise: {trips: [{temp: 80}, {temp: 70}]}}", "ascending" },
		{ "governor: {step_wise: {trips: [{hysteresis: 1}]}}", "needs \"temp\"" },
		{ "governor: {policies: {m: {min_bits: 7, max_bits: 3}}}",
		  "min_bits 7 is above max_bits 3" },
		{ "governor: {policies: {m: {pinned: {fc: 9}}}}", "governor.policies.pinned" },
		{ "governor: {power_allocator: {kp: 1}}", "unknown key \"kp\"" },
		{ "governor: {policies: {m: {precision: turbo}}}",
		  "t.yaml:2:38: governor.policies.precision: \"turbo\" is not a precision (expected one of: fixed, cascade, policy, adaptive)" },
		{ "governor: {turbo: 1}", "unknown key \"turbo\"" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[512];

		snprintf(text, sizeof(text), "models: {m: /x.bmx}\n%s\n", bad[i].yaml);
		assert_int_equal(bmx_config_load_string("t.yaml", text, &c, &err), -EINVAL);
		if (!strstr(err.msg, bad[i].expect))
			fail_msg("case %zu: \"%s\" does not contain \"%s\"", i, err.msg,
				 bad[i].expect);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(performance_and_powersave),
		cmocka_unit_test(userspace_only_takes_user_bits_under_userspace),
		cmocka_unit_test(ondemand_follows_load),
		cmocka_unit_test(ondemand_sampling_down_factor_holds_the_cheap_point),
		cmocka_unit_test(conservative_steps),
		cmocka_unit_test(step_wise_trips_with_hysteresis),
		cmocka_unit_test(power_allocator_cools_a_busy_model),
		cmocka_unit_test(saturated_daemon_is_capped_not_lowered),
		cmocka_unit_test(power_allocator_counts_adaptive_cost),
		cmocka_unit_test(power_allocator_falls_back_without_temperature),
		cmocka_unit_test(limits_and_pins),
		cmocka_unit_test(holds_aggregate_and_release),
		cmocka_unit_test(statistics_as_cpufreq_keeps_them),
		cmocka_unit_test(yaml_block),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
