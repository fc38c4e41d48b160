/* SPDX-License-Identifier: MIT */
/*
 * sensor_probe.h — what the eBPF sensor probe (sensor_probe.bpf.c) and its loader
 * (daemon/sensors/sensor_bpf.c) share: the ring-buffer event and the per-CPU counters. Both sides
 * include this one header, so the layouts cannot drift apart.
 *
 * Times are bpf_ktime_get_ns(), which is CLOCK_MONOTONIC: the daemon compares them with its own
 * clock_gettime(CLOCK_MONOTONIC).
 */
#ifndef BITMIX_SENSOR_PROBE_H
#define BITMIX_SENSOR_PROBE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define PROBE_ZONE_TYPE_LEN 20 /* THERMAL_NAME_LENGTH */
#define PROBE_MAX_CPUS 256     /* SENSORS_MAX_CPUS; CPUs beyond are not counted */

/* Discrete events, through the ring buffer `events`. */
enum probe_event_kind {
	PROBE_EVENT_THERMAL = 1, /* a thermal zone's temperature was updated */
};

struct probe_event {
	__u64 time_ns;
	__u32 kind; /* enum probe_event_kind */
	__s32 zone_id;
	__s32 temp_mc; /* millidegrees Celsius */
	__s32 prev_temp_mc;
	char zone_type[PROBE_ZONE_TYPE_LEN]; /* e.g. "x86_pkg_temp", "acpitz" */
	__u32 cpu;			     /* where the update ran */
};

/*
 * One CPU's counters: the probe's global array `cpus[PROBE_MAX_CPUS]` (its .bss map, which the
 * skeleton maps into the daemon, so a sample costs no system call). Each slot is written only by
 * hooks running on that CPU (the tracepoints fire on the CPU they describe), so no locking; one
 * cache line per CPU, so no false sharing. The daemon reads them every sampling period and takes
 * differences; a read that races a switch is off by at most that one update, for one period.
 */
struct probe_cpu {
	__u64 busy_ns;	      /* time a task other than the idle task ran, up to last_switch_ns */
	__u64 last_switch_ns; /* the last sched_switch on this CPU */
	__u64 switches;
	__u32 running;	     /* 1 if a task other than idle runs since last_switch_ns */
	__u32 freq_khz;	     /* the last cpu_frequency event (0: none seen) */
	__u64 idle_ns;	     /* time in cpuidle states, up to idle_since_ns */
	__u64 idle_since_ns; /* the last idle entry, 0 while not idle */
	__u64 idle_entries;
	__u64 freq_changes;
} __attribute__((aligned(64)));

#endif
