/* SPDX-License-Identifier: MIT */
/*
 * sensor_bpf.h — the eBPF probe's loader (sensor_bpf.c) seen from the tests and benchmarks:
 * open, load and attach the skeleton, read its counters and its ring buffer, and reach its
 * programs (to execute them with BPF_PROG_TEST_RUN or read their run-time statistics). The
 * daemon uses it only through the sensors interface (sensor_bpf_ops).
 */
#ifndef BITMIX_SENSOR_BPF_H
#define BITMIX_SENSOR_BPF_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "sensor_probe.h"
#include "sensors.h"

struct sensor_bpf;

/* Load and attach every program. Returns 0 or -errno with WHY saying what failed. */
int sensor_bpf_open(const struct bmx_sensors_config *cfg, struct sensor_bpf **out, char *why,
		    size_t why_size);
void sensor_bpf_close(struct sensor_bpf *b);

/* The program called NAME (its function name in sensor_probe.bpf.c), or -ENOENT. */
int sensor_bpf_prog_fd(const struct sensor_bpf *b, const char *name);
/* The i-th program's fd and name (i from 0), or -ENOENT past the last. */
int sensor_bpf_prog_at(const struct sensor_bpf *b, unsigned i, const char **name);

/* Load, frequency and (from events) temperature since the previous call. */
int sensor_bpf_sample(struct sensor_bpf *b, struct sensor_reading *out);

/* The ring buffer: a descriptor readable when events wait, and how to consume them. */
int sensor_bpf_event_fd(const struct sensor_bpf *b);
int sensor_bpf_consume(struct sensor_bpf *b);

/* What consuming saw: the last event, its kernel-to-daemon latency, the count. */
struct sensor_bpf_stats {
	uint64_t events;
	struct probe_event last;
	uint64_t last_seen_ns;	  /* CLOCK_MONOTONIC when the daemon consumed it */
	uint64_t last_latency_ns; /* last_seen_ns - last.time_ns */
};
void sensor_bpf_stats(const struct sensor_bpf *b, struct sensor_bpf_stats *out);

/* A copy of CPU's counters as the probe has them now. */
int sensor_bpf_cpu(const struct sensor_bpf *b, unsigned cpu, struct probe_cpu *out);

#endif
