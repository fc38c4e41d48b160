/* SPDX-License-Identifier: MIT */
/*
 * governor_step_wise.c — thermal trip points with hysteresis, after the kernel's step_wise.
 * The machine is one thermal zone and every model a cooling device with `states` cooling
 * states (level = 1 - state / states); trip i may push the state up to (i + 1) / n_trips of the
 * range. A crossed trip stays crossed until the temperature falls below temp - hysteresis. While
 * a trip is crossed and the temperature is rising the state goes up one step per period; when
 * no trip is crossed and the temperature is not rising it comes down one step per period.
 *
 * A second cooling device, the cap on the daemon's work (governor_cap.c), has as many states:
 * cap state c lets the workers keep capacity x (1 - c / (states + 1)) CPUs busy. Precision steps
 * first while the daemon has idle time (fewer bits, less CPU time for the same samples); once it
 * is saturated fewer bits would only serve more samples at the same power, so a step up moves
 * the cap instead and gives a precision step back. Coming down, the cap lifts first.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "governor.h"
#include "log.h"

struct step_wise {
	bool crossed[BMX_CONFIG_MAX_TRIPS];
	unsigned state;
	unsigned cap_state;
	double prev_temp;
	bool have_prev;
};

static int step_wise_init(struct gov_core *core)
{
	const struct sensor_reading *r = gov_core_last_reading(core);
	struct step_wise *sw;

	if (r && !(r->have & SENSOR_HAVE_TEMP))
		return -ENODATA;
	sw = calloc(1, sizeof(*sw));
	if (!sw)
		return -ENOMEM;
	gov_core_set_data(core, sw);
	return 0;
}

static void step_wise_exit(struct gov_core *core)
{
	free(gov_core_data(core));
}

static int step_wise_start(struct gov_core *core, struct gov_policy *p)
{
	struct step_wise *sw = gov_core_data(core);

	gov_policy_set_level(p, 1.0 - (double)sw->state / gov_core_config(core)->step_wise.states);
	return 0;
}

/* One step more cooling, up to UPPER on each device: precision first unless SATURATED. */
static void step_up(struct step_wise *sw, unsigned upper, bool saturated)
{
	if (!saturated && sw->state < upper) {
		sw->state++;
		return;
	}
	if (sw->cap_state < upper) {
		sw->cap_state++;
		if (saturated && sw->state > 0)
			sw->state--; /* the cap holds the power; precision buys nothing here */
	}
}

static void step_wise_update(struct gov_core *core, const struct sensor_reading *r)
{
	const struct bmx_governor_config *cfg = gov_core_config(core);
	struct step_wise *sw = gov_core_data(core);
	unsigned states = cfg->step_wise.states, upper = 0;
	double temp, trend;
	int highest = -1;

	if (!(r->have & SENSOR_HAVE_TEMP))
		return;
	temp = r->temp_mc / 1000.0;
	trend = sw->have_prev ? temp - sw->prev_temp : 0;
	sw->prev_temp = temp;
	sw->have_prev = true;
	for (size_t i = 0; i < cfg->step_wise.n_trips; i++) {
		const struct bmx_config_trip *t = &cfg->step_wise.trips[i];
		bool was = sw->crossed[i];

		sw->crossed[i] = was ? temp >= t->temp_c - t->hysteresis_c : temp >= t->temp_c;
		if (sw->crossed[i] != was) {
			char name[32];

			log_info("step_wise: %.1f C %s trip %zu (%.1f C)", temp,
				 sw->crossed[i] ? "crossed" : "back under", i, t->temp_c);
			snprintf(name, sizeof(name), "trip%zu", i);
			gov_core_trip(core, name, temp, sw->crossed[i]);
		}
		if (sw->crossed[i])
			highest = (int)i;
	}
	if (highest >= 0) {
		upper = (unsigned)((highest + 1) * states / cfg->step_wise.n_trips);
		if (trend > 0)
			step_up(sw, upper, gov_core_saturated(core));
		else if (sw->cap_state > upper)
			sw->cap_state--;
		else if (sw->state > upper)
			sw->state--;
	} else if (trend <= 0 && sw->cap_state > 0) {
		sw->cap_state--;
	} else if (trend <= 0 && sw->state > 0) {
		sw->state--;
	}
	for (size_t i = 0; i < gov_core_policy_count(core); i++)
		gov_policy_set_level(gov_core_policy(core, i), 1.0 - (double)sw->state / states);
	gov_core_set_work_cap(core, sw->cap_state
					    ? gov_core_capacity(core) *
						      (1.0 - (double)sw->cap_state / (states + 1))
					    : 0);
}

static const struct bmx_config_trip step_wise_default_trips[] = {
	{ .temp_c = 70, .hysteresis_c = 2 },
	{ .temp_c = 80, .hysteresis_c = 2 },
};

static const struct gov_tunable step_wise_tunables[] = {
	{
		.name = "trips",
		.type = GOV_TUNABLE_TRIPS,
		.min = -50, /* temp; hysteresis is 0..50, defaulting to 2 */
		.max = 200,
		.unit = "C",
		.doc = "passive trip points {temp, hysteresis}, ascending; a crossed trip stays "
		       "crossed until temp - hysteresis",
		.offset = offsetof(struct bmx_governor_config, step_wise.trips),
		.count_offset = offsetof(struct bmx_governor_config, step_wise.n_trips),
		.def_trips = step_wise_default_trips,
		.n_def_trips = sizeof(step_wise_default_trips) / sizeof(step_wise_default_trips[0]),
	},
	gov_attr_unsigned(step_wise, states, 1, 64, 6, "states",
			  "cooling states; each trip may take the state up to its share of them"),
};

const struct governor_ops governor_step_wise = {
	.name = "step_wise",
	.init = step_wise_init,
	.exit = step_wise_exit,
	.start = step_wise_start,
	.update = step_wise_update,
	GOV_TUNABLES(step_wise_tunables),
};
