/* SPDX-License-Identifier: MIT */
/*
 * sensor_procstat.c — CPU load from /proc/stat: per-CPU busy share over each sampling period,
 * from the differences of the cpuN lines' jiffy counters. Available wherever procfs is; it is
 * the load source for every other source that has none of its own.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sensor_source.h"

/* The counters of one CPU: idle (idle + iowait) and total jiffies. */
struct cpu_jiffies {
	uint64_t idle, total;
	int present;
};

struct procstat_source {
	char path[300];
	unsigned n_cpus;			   /* highest cpuN seen + 1 */
	struct cpu_jiffies prev[SENSORS_MAX_CPUS]; /* at the previous sample */
};

/*
 * Read every cpuN line of PATH into OUT (indexed by N, which may have holes when CPUs are
 * offline). Returns the number of CPUs (highest N + 1) or -errno.
 */
static int procstat_read(const char *path, struct cpu_jiffies *out)
{
	char line[512];
	unsigned n = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return -errno;
	memset(out, 0, sizeof(*out) * SENSORS_MAX_CPUS);
	while (fgets(line, sizeof(line), f)) {
		uint64_t v[10] = { 0 };
		unsigned cpu;
		int got;

		if (strncmp(line, "cpu", 3) != 0 || line[3] < '0' || line[3] > '9')
			continue;
		got = sscanf(line + 3,
			     "%u %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
			     " %" SCNu64 " %" SCNu64 " %" SCNu64,
			     &cpu, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
		if (got < 5 || cpu >= SENSORS_MAX_CPUS)
			continue;
		/* user nice system idle iowait irq softirq steal; guest is inside user already. */
		out[cpu].idle = v[3] + v[4];
		out[cpu].total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
		out[cpu].present = 1;
		if (cpu + 1 > n)
			n = cpu + 1;
	}
	fclose(f);
	return n ? (int)n : -ENODATA;
}

static int procstat_open(const struct bmx_sensors_config *cfg, void **state, unsigned *provides,
			 char *why, size_t why_size)
{
	struct procstat_source *src = calloc(1, sizeof(*src));
	int r;

	if (!src) {
		snprintf(why, why_size, "out of memory");
		return -ENOMEM;
	}
	snprintf(src->path, sizeof(src->path), "%s/stat", cfg->proc_root);
	r = procstat_read(src->path, src->prev);
	if (r < 0) {
		snprintf(why, why_size, "%s: %s", src->path,
			 r == -ENODATA ? "no cpuN lines" : strerror(-r));
		free(src);
		return r;
	}
	src->n_cpus = (unsigned)r;
	*state = src;
	*provides = SENSOR_HAVE_LOAD;
	snprintf(why, why_size, "per-CPU busy time from %s (%u CPUs, jiffy resolution)", src->path,
		 src->n_cpus);
	return 0;
}

static void procstat_close(void *state)
{
	free(state);
}

static int procstat_sample(void *state, uint64_t now_ns, uint64_t work_ns,
			   struct sensor_reading *out)
{
	struct procstat_source *src = state;
	struct cpu_jiffies now[SENSORS_MAX_CPUS];
	uint64_t busy_sum = 0, total_sum = 0;
	int r = procstat_read(src->path, now);

	(void)now_ns;
	(void)work_ns;
	if (r < 0)
		return r;
	src->n_cpus = (unsigned)r;
	for (unsigned c = 0; c < src->n_cpus; c++) {
		uint64_t total = now[c].total - src->prev[c].total;
		uint64_t idle = now[c].idle - src->prev[c].idle;
		uint64_t busy = idle > total ? 0 : total - idle;

		/* Counters that went backwards (a CPU came back online) count as no time. */
		if (!now[c].present || !src->prev[c].present || now[c].total < src->prev[c].total ||
		    now[c].idle < src->prev[c].idle)
			total = busy = 0;
		out->cpu_load_permille[c] = total ? (uint16_t)(busy * 1000 / total) : 0;
		busy_sum += busy;
		total_sum += total;
	}
	memcpy(src->prev, now, sizeof(now));
	out->n_cpus = src->n_cpus;
	out->load_permille = total_sum ? (uint32_t)(busy_sum * 1000 / total_sum) : 0;
	out->have |= SENSOR_HAVE_LOAD;
	return 0;
}

const struct sensor_source_ops sensor_procstat_ops = {
	.name = "procstat",
	.open = procstat_open,
	.close = procstat_close,
	.sample = procstat_sample,
};
