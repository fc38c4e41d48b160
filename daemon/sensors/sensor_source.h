/* SPDX-License-Identifier: MIT */
/*
 * sensor_source.h — the ops struct every sensor source fills (sensor_bpf.c, sensor_sysfs.c,
 * sensor_procstat.c, sensor_simulator.c), and nothing else. The front (sensors.c) picks the
 * sources, merges their readings and owns the explanation of the choice. Internal to the
 * sensors library.
 */
#ifndef BITMIX_SENSOR_SOURCE_H
#define BITMIX_SENSOR_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "sensors.h"

struct sensor_source_ops {
	const char *name;
	/*
	 * Open the source. On success *state is its private state and *provides the reading fields
	 * (enum sensor_have) it fills; WHY says in a few words what it measures. On failure WHY says
	 * why not (naming the file or call that failed) and the return value is -errno.
	 */
	int (*open)(const struct bmx_sensors_config *cfg, void **state, unsigned *provides,
		    char *why, size_t why_size);
	void (*close)(void *state);
	/*
	 * Fill the fields this source has into OUT (cleared by the caller) as of NOW_NS. WORK_NS is
	 * the daemon's engine time since the previous sample (the simulator's heat).
	 */
	int (*sample)(void *state, uint64_t now_ns, uint64_t work_ns, struct sensor_reading *out);
	/* Optional: a descriptor readable when events wait, and how to consume them. */
	int (*event_fd)(const void *state);
	int (*handle_events)(void *state);
};

extern const struct sensor_source_ops sensor_bpf_ops;
extern const struct sensor_source_ops sensor_sysfs_ops;
extern const struct sensor_source_ops sensor_procstat_ops;
extern const struct sensor_source_ops sensor_simulator_ops;

#endif
