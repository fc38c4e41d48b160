/* SPDX-License-Identifier: MIT */
/*
 * governor_power_allocator.c — a PID controller on temperature grants a power budget, after the
 * kernel's power_allocator (IPA): P = sustainable + k_p e + k_i sum(e) + k_d de/dt, with
 * e = control_temp - temp, k_po when over temperature and k_pu when under, the integral only
 * accumulating while e < integral_cutoff and only while its term stays within the maximum power
 * (anti-windup), and everything reset below switch_on_temp. Unset constants are estimated as
 * the kernel estimates them from sustainable_power and the switch-on..control span.
 *
 * Each model is a cooling device whose power is dynamic_power_w x (samples/s) x (ns/sample):
 * it requests its power at the richest point, the budget is divided in proportion to the
 * requests, and a model's grant becomes a cost budget that the QBitOpt allocator turns into the
 * bits of least summed sensitivity. An idle model costs nothing and keeps full precision. With
 * adaptive traffic a sample costs gov_policy_cost_scale() of the ceiling's cost (measured), so
 * both the request and the grant are converted with that scale (docs/adaptive.md).
 *
 * The budget also caps the daemon's work (the second cooling device, governor_cap.c): at most
 * budget / dynamic_power_w CPUs busy. Precision comes first where it saves energy: while the
 * daemon has idle time, fewer bits mean less CPU time at the same rate, and the cap stays half
 * again above the budget as a backstop (costs measured on a quiet machine read low on a busy
 * one). Once the daemon is saturated (every worker busy, or
 * the cap making requests wait), fewer bits would only serve more samples at the same power, so
 * every model keeps its richest bits and the cap alone holds the power at the budget. Whether
 * the demand behind a saturated daemon is elastic (clients that ask again as soon as they are
 * answered) or fixed (a rate that fewer bits could serve with idle time left) cannot be read
 * from outside, so while capped the governor probes now and then: for PROBE_PERIODS readings
 * every busy model runs at its cheapest real point (the cheapest bits that save measurable time)
 * under the same cap. A fixed demand that fewer bits can serve then leaves the daemon idle time,
 * and precision takes over (which raises the bits again as far as the budget allows); an elastic
 * one keeps it saturated, and the richest bits come back.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "governor.h"

/* While precision meets the budget, the cap stays this much above it (a backstop). */
#define CAP_HEADROOM 1.5
/*
 * While capped and saturated: a probe of precision every PROBE_EVERY_NS, PROBE_PERIODS long (one
 * to drain what the cap held back, then the calm periods the core needs to see idle time).
 */
#define PROBE_EVERY_NS 10000000000ull
#define PROBE_PERIODS 5

struct power_allocator {
	double err_integral;
	double prev_err;
	uint64_t prev_ns;
	bool have_prev;
	double k_po, k_pu, k_i, k_d;
	double last_budget_w;		     /* for status */
	bool above_switch_on, above_control; /* for gov_core_trip */
	uint64_t next_probe_ns;
	unsigned probing; /* readings left in a probe */
};

static int power_allocator_init(struct gov_core *core)
{
	const struct bmx_governor_config *cfg = gov_core_config(core);
	const struct sensor_reading *r = gov_core_last_reading(core);
	double span = cfg->power_allocator.control_temp_c - cfg->power_allocator.switch_on_temp_c;
	double sp = cfg->power_allocator.sustainable_power_w;
	struct power_allocator *pa;

	if (r && !(r->have & SENSOR_HAVE_TEMP))
		return -ENODATA;
	pa = calloc(1, sizeof(*pa));
	if (!pa)
		return -ENOMEM;
	if (span <= 0)
		span = cfg->power_allocator.control_temp_c > 0 ? cfg->power_allocator.control_temp_c
							       : 1;
	pa->k_po = cfg->power_allocator.k_po > 0 ? cfg->power_allocator.k_po : sp / span;
	pa->k_pu = cfg->power_allocator.k_pu > 0 ? cfg->power_allocator.k_pu : 2 * sp / span;
	pa->k_i = cfg->power_allocator.k_i > 0 ? cfg->power_allocator.k_i : pa->k_pu / 10;
	pa->k_d = cfg->power_allocator.k_d;
	gov_core_set_data(core, pa);
	return 0;
}

static void power_allocator_exit(struct gov_core *core)
{
	free(gov_core_data(core));
}

static int power_allocator_start(struct gov_core *core, struct gov_policy *p)
{
	(void)core;
	gov_policy_set_level(p, 1);
	return 0;
}

/* The power each model would draw at its richest point, and their sum. */
static double requested_power(struct gov_core *core, double *req)
{
	double k = gov_core_config(core)->power_allocator.dynamic_power_w * 1e-9, total = 0;

	for (size_t i = 0; i < gov_core_policy_count(core); i++) {
		struct gov_policy *p = gov_core_policy(core, i);
		double lo, hi;

		gov_policy_cost_range(p, &lo, &hi);
		req[i] = k * gov_policy_rate(p) * hi * gov_policy_cost_scale(p);
		total += req[i];
	}
	return total;
}

static double pid(struct gov_core *core, struct power_allocator *pa, double temp, double max_power)
{
	const struct bmx_governor_config *cfg = gov_core_config(core);
	double err = cfg->power_allocator.control_temp_c - temp, p, i, d = 0, power;
	uint64_t now = gov_core_now(core);

	p = (err < 0 ? pa->k_po : pa->k_pu) * err;
	if (err < cfg->power_allocator.integral_cutoff_c) {
		double i_next = pa->k_i * (pa->err_integral + err);

		if (fabs(i_next) < max_power) /* anti-windup */
			pa->err_integral += err;
	}
	i = pa->k_i * pa->err_integral;
	if (pa->have_prev && now > pa->prev_ns)
		d = pa->k_d * (err - pa->prev_err) / ((double)(now - pa->prev_ns) * 1e-9);
	pa->prev_err = err;
	pa->prev_ns = now;
	pa->have_prev = true;
	power = cfg->power_allocator.sustainable_power_w + p + i + d;
	return power < 0 ? 0 : power > max_power ? max_power : power;
}

/* Tell the core when the temperature crosses switch-on or control (no hysteresis: the PID's). */
static void note_thresholds(struct gov_core *core, struct power_allocator *pa, double temp)
{
	const struct bmx_governor_config *cfg = gov_core_config(core);
	bool on = temp >= cfg->power_allocator.switch_on_temp_c;
	bool over = temp >= cfg->power_allocator.control_temp_c;

	if (on != pa->above_switch_on)
		gov_core_trip(core, "switch_on", temp, on);
	if (over != pa->above_control)
		gov_core_trip(core, "control", temp, over);
	pa->above_switch_on = on;
	pa->above_control = over;
}

/* Whether this reading is part of a probe of precision (every PROBE_EVERY_NS while capped). */
static bool probe(struct gov_core *core, struct power_allocator *pa, bool saturated)
{
	uint64_t now = gov_core_now(core);

	if (pa->probing) {
		pa->probing--;
		return true;
	}
	if (!saturated || gov_core_work_cap(core) <= 0 || now < pa->next_probe_ns) {
		if (!saturated || gov_core_work_cap(core) <= 0)
			pa->next_probe_ns = now + PROBE_EVERY_NS;
		return false;
	}
	pa->next_probe_ns = now + PROBE_EVERY_NS;
	pa->probing = PROBE_PERIODS - 1;
	return true;
}

static void power_allocator_update(struct gov_core *core, const struct sensor_reading *r)
{
	const struct bmx_governor_config *cfg = gov_core_config(core);
	struct power_allocator *pa = gov_core_data(core);
	size_t n = gov_core_policy_count(core);
	double k_w = cfg->power_allocator.dynamic_power_w, temp, total, budget;
	double req[n ? n : 1];
	bool saturated, probing;

	if (!(r->have & SENSOR_HAVE_TEMP))
		return;
	temp = r->temp_mc / 1000.0;
	note_thresholds(core, pa, temp);
	total = requested_power(core, req);
	if (temp < cfg->power_allocator.switch_on_temp_c) {
		pa->err_integral = 0;
		pa->have_prev = false;
		pa->last_budget_w = total;
		gov_core_set_work_cap(core, 0);
		for (size_t i = 0; i < n; i++)
			gov_policy_set_level(gov_core_policy(core, i), 1);
		return;
	}
	/*
	 * The PID's range: the most the models could draw at their richest points, the most every
	 * worker could draw, and at least the sustainable power.
	 */
	budget = pid(core, pa, temp,
		     fmax(fmax(total, cfg->power_allocator.sustainable_power_w),
			  k_w * gov_core_capacity(core)));
	pa->last_budget_w = budget;
	saturated = gov_core_saturated(core);
	probing = probe(core, pa, saturated);
	gov_core_set_work_cap(core, fmax(budget / k_w * (saturated || probing ? 1.0 : CAP_HEADROOM),
					 GOV_MIN_WORK_CAP));
	for (size_t i = 0; i < n; i++) {
		struct gov_policy *p = gov_core_policy(core, i);
		double rate = gov_policy_rate(p), granted;

		if (probing && req[i] > 0 && rate > 0) {
			gov_policy_set_level(p, 0);
			continue;
		}
		if (saturated || total <= budget || req[i] <= 0 || rate <= 0) {
			gov_policy_set_level(p, 1);
			continue;
		}
		granted = budget * req[i] / total;
		gov_policy_set_budget(p, granted / (k_w * 1e-9 * rate * gov_policy_cost_scale(p)));
	}
}

/*
 * The default sustainable power matches the simulator's default machine (config_sensors.c):
 * 25 C ambient, 1.5 K/W, 5 W idle: (75 - 25) / 1.5 - 5 = 28 W of inference power at the control
 * temperature, with 20 W per busy CPU. A real machine sets its own (config/README.md says how).
 */
static const struct gov_tunable power_allocator_tunables[] = {
	gov_attr_double(power_allocator, control_temp_c, -50, 200, 75, "C",
			"the temperature the PID holds"),
	gov_attr_double(power_allocator, switch_on_temp_c, -50, 200, 60, "C",
			"below it: no limit, the integral is reset (at most control_temp_c)"),
	gov_attr_double(power_allocator, sustainable_power_w, 0.001, 10000, 28, "W",
			"inference power the machine dissipates at the control temperature"),
	gov_attr_double(power_allocator, k_po, 0, 1e6, 0, "W/C",
			"proportional constant over the control temperature (0: estimated)"),
	gov_attr_double(power_allocator, k_pu, 0, 1e6, 0, "W/C",
			"proportional constant under the control temperature (0: estimated)"),
	gov_attr_double(power_allocator, k_i, 0, 1e6, 0, "W/C", "integral constant (0: estimated)"),
	gov_attr_double(power_allocator, k_d, 0, 1e6, 0, "W s/C", "derivative constant"),
	gov_attr_double(power_allocator, integral_cutoff_c, 0, 200, 0, "C",
			"the error accumulates only while below it"),
	gov_attr_double(power_allocator, dynamic_power_w, 0.001, 10000, 20, "W",
			"power of one CPU busy with inference (the models' power model)"),
};

static int power_allocator_check(const struct bmx_governor_config *g, char *why, size_t why_len)
{
	if (g->power_allocator.switch_on_temp_c <= g->power_allocator.control_temp_c)
		return 0;
	snprintf(why, why_len, "switch_on_temp_c %g is above control_temp_c %g",
		 g->power_allocator.switch_on_temp_c, g->power_allocator.control_temp_c);
	return -EINVAL;
}

const struct governor_ops governor_power_allocator = {
	.name = "power_allocator",
	.init = power_allocator_init,
	.exit = power_allocator_exit,
	.start = power_allocator_start,
	.update = power_allocator_update,
	GOV_TUNABLES(power_allocator_tunables),
	.check = power_allocator_check,
};
