/* SPDX-License-Identifier: MIT */
/*
 * sensor_simulator.h — a first-order RC thermal model of one CPU package, heated by the
 * daemon's own measured work: for machines without thermal sensors, for tests, and for the
 * governor's closed-loop benchmarks (which link these pure functions directly).
 *
 * Model: C dT/dt = P - (T - T_ambient) / R, with P = P_idle + k * busy_cpus, where busy_cpus is
 * the CPU time the daemon's workers spent in the engine divided by the wall time it was spent in.
 * For a power held constant over a step of dt seconds the exact solution is
 *   T(t + dt) = T_ss + (T(t) - T_ss) * exp(-dt / (R C)),  T_ss = T_ambient + P R,
 * which thermal_rc_step() uses: exact and stable for any step, so the sampling period does not
 * change the trajectory.
 */
#ifndef BITMIX_SENSOR_SIMULATOR_H
#define BITMIX_SENSOR_SIMULATOR_H

#include <stdint.h>

#include "config.h"

/* The package temperature after DT_S seconds at POWER_W watts, starting from TEMP_C. */
double thermal_rc_step(const struct bmx_sensors_simulator_config *p, double temp_c, double power_w,
		       double dt_s);

/* The temperature the package settles at under POWER_W watts. */
double thermal_rc_steady_c(const struct bmx_sensors_simulator_config *p, double power_w);

/* The time constant R*C in seconds. */
double thermal_rc_tau_s(const struct bmx_sensors_simulator_config *p);

/* The package power when the daemon's work kept BUSY_NS CPU-nanoseconds busy over DT_NS. */
double thermal_rc_power_w(const struct bmx_sensors_simulator_config *p, uint64_t busy_ns,
			  uint64_t dt_ns);

/*
 * The model with its state, driven by whatever clock the caller has (the daemon's monotonic
 * clock, or a benchmark's simulated time): feed work with thermal_sim_add_work(), advance time
 * with thermal_sim_advance().
 */
struct thermal_sim {
	struct bmx_sensors_simulator_config params;
	double temp_c;
	double power_w;	  /* over the last step */
	double busy_cpus; /* the daemon's work over the last step, in CPUs */
	uint64_t now_ns;  /* the time of the last step */
	uint64_t work_ns; /* work added since the last step */
};

void thermal_sim_init(struct thermal_sim *sim, const struct bmx_sensors_simulator_config *params,
		      uint64_t now_ns);
void thermal_sim_add_work(struct thermal_sim *sim, uint64_t busy_ns);
/* Move to NOW_NS (earlier times are ignored), spending the work added since the last step. */
void thermal_sim_advance(struct thermal_sim *sim, uint64_t now_ns);

#endif
