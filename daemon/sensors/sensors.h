/* SPDX-License-Identifier: MIT */
/*
 * sensors.h — what bitmixd knows about how hot, how power-hungry and how busy the machine is.
 *
 * One interface over every source: the eBPF probe (daemon/sensors/bpf/), sysfs thermal zones and
 * powercap/RAPL, /proc/stat, and a thermal simulator for machines without sensors (and for
 * tests). The event loop samples the active source every sampling period and hands the reading
 * to the governor core; sources with discrete events (the probe's BPF ring buffer) also expose a
 * descriptor the loop polls, so that a trip crossing is seen at once, not a period later.
 * The governors know only struct sensor_reading; they never see a source.
 */
#ifndef BITMIX_SENSORS_H
#define BITMIX_SENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SENSORS_MAX_CPUS 256

/* Which fields of a reading hold a value. */
enum sensor_have {
	SENSOR_HAVE_TEMP = 1u << 0,  /* temp_mc */
	SENSOR_HAVE_POWER = 1u << 1, /* power_mw */
	SENSOR_HAVE_LOAD = 1u << 2,  /* load_permille and cpu_load_permille */
	SENSOR_HAVE_FREQ = 1u << 3,  /* freq_khz */
};

/* One reading, taken at time_ns (CLOCK_MONOTONIC). */
struct sensor_reading {
	uint64_t time_ns;
	uint32_t have;		/* enum sensor_have */
	int32_t temp_mc;	/* hottest zone, millidegrees Celsius */
	uint32_t power_mw;	/* package power averaged over the last period, milliwatts */
	uint32_t load_permille; /* busy share of all CPUs over the last period, 0..1000 */
	uint32_t freq_khz;	/* mean current CPU frequency */
	uint32_t n_cpus;
	uint16_t cpu_load_permille[SENSORS_MAX_CPUS];
};

/* The source kinds, in the order `auto` tries them. */
enum sensor_source_kind {
	SENSOR_SOURCE_AUTO = 0, /* config only: probe, else sysfs, else simulator */
	SENSOR_SOURCE_BPF,
	SENSOR_SOURCE_SYSFS,
	SENSOR_SOURCE_SIMULATOR,
};

struct sensors;
struct bmx_sensors_config; /* config.h */

/*
 * Open the source CFG asks for (with `auto`, the first that works). Returns 0 or -errno; a source
 * named explicitly that cannot open is an error, `auto` falls back and records why.
 */
int sensors_open(const struct bmx_sensors_config *cfg, struct sensors **out);
/* The same, saying in WHY (if not NULL) why each source tried could not open when it fails. */
int sensors_open_why(const struct bmx_sensors_config *cfg, struct sensors **out, char *why,
		     size_t why_size);
void sensors_close(struct sensors *s);

/* Take a reading now. Returns 0 or -errno (the previous reading stays valid). */
int sensors_sample(struct sensors *s, uint64_t now_ns, struct sensor_reading *out);

/*
 * The daemon's own work since the last call, in CPU nanoseconds (what the workers spent in the
 * engine). Any thread may call it. The simulator turns it into power; other sources ignore it.
 */
void sensors_add_work(struct sensors *s, uint64_t busy_ns);

/* A descriptor that becomes readable when discrete events are waiting, or -1 if none. */
int sensors_event_fd(const struct sensors *s);

/* Consume waiting events (non-blocking); returns how many, or -errno. */
int sensors_handle_events(struct sensors *s);

/* The active source, and one line per source saying why it was or was not chosen. */
enum sensor_source_kind sensors_source(const struct sensors *s);
const char *sensors_source_name(enum sensor_source_kind kind);
const char *sensors_explain(const struct sensors *s);

#endif
