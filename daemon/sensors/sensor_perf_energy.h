/* SPDX-License-Identifier: MIT */
/*
 * sensor_perf_energy.h — package energy from perf's power/energy-pkg event (the RAPL counters
 * through the perf PMU), for machines whose kernel exposes RAPL to perf but not to powercap.
 * Used by the sysfs source; internal to the sensors library.
 */
#ifndef BITMIX_SENSOR_PERF_ENERGY_H
#define BITMIX_SENSOR_PERF_ENERGY_H

#include <stddef.h>
#include <stdint.h>

struct perf_energy {
	int fd;		 /* the perf event, counting on CPU 0's package */
	uint32_t type;	 /* the power PMU's perf type */
	uint64_t config; /* energy-pkg's event code */
	double joules_per_count;
};

/*
 * Read the PMU's description under SYSFS_ROOT/bus/event_source/devices/power: its type, the
 * energy-pkg event code and scale. Returns 0 or -errno with WHY naming the file that was missing
 * or malformed.
 */
int perf_energy_describe(const char *sysfs_root, struct perf_energy *pe, char *why,
			 size_t why_size);

/* Describe, then open the counter. Returns 0 or -errno with WHY saying what failed. */
int perf_energy_open(const char *sysfs_root, struct perf_energy *pe, char *why, size_t why_size);

/* The counter in joules, or a negative value if it cannot be read. */
double perf_energy_read_joules(const struct perf_energy *pe);

void perf_energy_close(struct perf_energy *pe);

#endif
