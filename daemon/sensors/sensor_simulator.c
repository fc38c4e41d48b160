/* SPDX-License-Identifier: MIT */
/*
 * sensor_simulator.c — the RC thermal model (sensor_simulator.h) as pure functions, and as a
 * sensor source whose power is the daemon's own measured work. It reports temperature and power;
 * load comes from another source (/proc/stat or the probe), so the model never pretends to know
 * what the rest of the machine does.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "sensor_simulator.h"
#include "sensor_source.h"

double thermal_rc_tau_s(const struct bmx_sensors_simulator_config *p)
{
	return p->resistance_c_per_w * p->capacitance_j_per_c;
}

double thermal_rc_steady_c(const struct bmx_sensors_simulator_config *p, double power_w)
{
	return p->ambient_c + power_w * p->resistance_c_per_w;
}

double thermal_rc_step(const struct bmx_sensors_simulator_config *p, double temp_c, double power_w,
		       double dt_s)
{
	double steady = thermal_rc_steady_c(p, power_w);

	if (dt_s <= 0)
		return temp_c;
	return steady + (temp_c - steady) * exp(-dt_s / thermal_rc_tau_s(p));
}

double thermal_rc_power_w(const struct bmx_sensors_simulator_config *p, uint64_t busy_ns,
			  uint64_t dt_ns)
{
	double cpus = dt_ns ? (double)busy_ns / (double)dt_ns : 0.0;

	return p->idle_power_w + p->power_per_cpu_w * cpus;
}

void thermal_sim_init(struct thermal_sim *sim, const struct bmx_sensors_simulator_config *params,
		      uint64_t now_ns)
{
	sim->params = *params;
	sim->temp_c = params->initial_c;
	sim->power_w = params->idle_power_w;
	sim->busy_cpus = 0;
	sim->now_ns = now_ns;
	sim->work_ns = 0;
}

void thermal_sim_add_work(struct thermal_sim *sim, uint64_t busy_ns)
{
	sim->work_ns += busy_ns;
}

void thermal_sim_advance(struct thermal_sim *sim, uint64_t now_ns)
{
	uint64_t dt_ns;

	if (now_ns <= sim->now_ns)
		return;
	dt_ns = now_ns - sim->now_ns;
	sim->power_w = thermal_rc_power_w(&sim->params, sim->work_ns, dt_ns);
	sim->busy_cpus = (double)sim->work_ns / (double)dt_ns;
	sim->temp_c =
		thermal_rc_step(&sim->params, sim->temp_c, sim->power_w, (double)dt_ns * 1e-9);
	sim->now_ns = now_ns;
	sim->work_ns = 0;
}

/* The source: the model started at the first sample's time. */
struct simulator_source {
	struct thermal_sim sim;
	bool started;
};

static int simulator_open(const struct bmx_sensors_config *cfg, void **state, unsigned *provides,
			  char *why, size_t why_size)
{
	const struct bmx_sensors_simulator_config *p = &cfg->simulator;
	struct simulator_source *src = calloc(1, sizeof(*src));

	if (!src) {
		snprintf(why, why_size, "out of memory");
		return -ENOMEM;
	}
	thermal_sim_init(&src->sim, p, 0);
	*state = src;
	*provides = SENSOR_HAVE_TEMP | SENSOR_HAVE_POWER;
	snprintf(why, why_size,
		 "RC model: ambient %.1f C, R %.2f K/W, C %.1f J/K (tau %.0f s), %.1f W idle + "
		 "%.1f W per CPU of the daemon's work",
		 p->ambient_c, p->resistance_c_per_w, p->capacitance_j_per_c, thermal_rc_tau_s(p),
		 p->idle_power_w, p->power_per_cpu_w);
	return 0;
}

static void simulator_close(void *state)
{
	free(state);
}

static int simulator_sample(void *state, uint64_t now_ns, uint64_t work_ns,
			    struct sensor_reading *out)
{
	struct simulator_source *src = state;

	if (!src->started) {
		/* Time starts at the first sample; work before it heats nothing. */
		src->sim.now_ns = now_ns;
		src->started = true;
	} else {
		thermal_sim_add_work(&src->sim, work_ns);
		thermal_sim_advance(&src->sim, now_ns);
	}
	out->have |= SENSOR_HAVE_TEMP | SENSOR_HAVE_POWER;
	out->temp_mc = (int32_t)lround(src->sim.temp_c * 1000.0);
	out->power_mw = (uint32_t)lround(src->sim.power_w * 1000.0);
	return 0;
}

const struct sensor_source_ops sensor_simulator_ops = {
	.name = "simulator",
	.open = simulator_open,
	.close = simulator_close,
	.sample = simulator_sample,
};
