/* SPDX-License-Identifier: MIT */
/*
 * sensor_bpf.c — the eBPF probe's loader and sensor source: opens, loads and attaches the
 * sensor_probe skeleton (daemon/sensors/bpf/sensor_probe.bpf.c), turns its per-CPU counters into load and
 * frequency every sampling period (read from the mapped .bss, no system call), and consumes its
 * ring buffer of thermal-zone updates when the event loop says the descriptor is readable.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bmx_util.h"
#include "sensor_bpf.h"
#include "sensor_probe.skel.h"
#include "sensor_source.h"

#define BPF_MAX_ZONES 64

struct zone_temp {
	int32_t id;
	int32_t temp_mc;
};

struct sensor_bpf {
	struct sensor_probe *skel;
	struct ring_buffer *rb;
	unsigned n_cpus;
	bool zones_exist; /* thermal zones under sysfs: temperature can come */
	uint64_t prev_ns; /* the previous sample, 0 before the first */
	uint64_t prev_busy[PROBE_MAX_CPUS];
	struct zone_temp zones[BPF_MAX_ZONES];
	unsigned n_zones;
	struct sensor_bpf_stats stats;
};

static int on_event(void *ctx, void *data, size_t size)
{
	struct sensor_bpf *b = ctx;
	struct probe_event e;
	unsigned i;

	if (size < sizeof(e))
		return 0;
	memcpy(&e, data, sizeof(e));
	b->stats.last_seen_ns = now_ns();
	b->stats.last = e;
	b->stats.last_latency_ns = b->stats.last_seen_ns - e.time_ns;
	b->stats.events++;
	if (e.kind != PROBE_EVENT_THERMAL)
		return 0;
	for (i = 0; i < b->n_zones && b->zones[i].id != e.zone_id; i++)
		;
	if (i == b->n_zones) {
		if (b->n_zones == BPF_MAX_ZONES)
			return 0;
		b->zones[b->n_zones++].id = e.zone_id;
	}
	b->zones[i].temp_mc = e.temp_mc;
	return 0;
}

static bool any_thermal_zone(const char *sysfs_root)
{
	char path[300];
	struct dirent *e;
	bool found = false;
	DIR *dir;

	snprintf(path, sizeof(path), "%s/class/thermal", sysfs_root);
	dir = opendir(path);
	if (!dir)
		return false;
	while (!found && (e = readdir(dir)))
		found = strncmp(e->d_name, "thermal_zone", 12) == 0;
	closedir(dir);
	return found;
}

/* The current frequency of each CPU before the first cpu_frequency event (0 if no cpufreq). */
static void seed_frequencies(struct sensor_bpf *b, const char *sysfs_root)
{
	for (unsigned c = 0; c < b->n_cpus; c++) {
		char path[320];
		unsigned khz = 0;
		FILE *f;

		snprintf(path, sizeof(path), "%s/devices/system/cpu/cpu%u/cpufreq/scaling_cur_freq",
			 sysfs_root, c);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fscanf(f, "%u", &khz) == 1)
			b->skel->bss->cpus[c].freq_khz = khz;
		fclose(f);
	}
}

int sensor_bpf_open(const struct bmx_sensors_config *cfg, struct sensor_bpf **out, char *why,
		    size_t why_size)
{
	struct sensor_bpf *b = calloc(1, sizeof(*b));
	int cpus, r;

	*out = NULL;
	if (!b)
		return -ENOMEM;
	cpus = libbpf_num_possible_cpus();
	b->n_cpus = cpus < 1 ? 1 : cpus > PROBE_MAX_CPUS ? PROBE_MAX_CPUS : (unsigned)cpus;
	b->skel = sensor_probe__open();
	if (!b->skel) {
		r = -errno;
		snprintf(why, why_size, "cannot open the probe's BPF object: %s", strerror(-r));
		goto fail;
	}
	r = sensor_probe__load(b->skel);
	if (r < 0) {
		snprintf(why, why_size, "the kernel refused the probe's programs (%s)%s",
			 strerror(-r),
			 r == -EPERM ? ": BPF needs root or CAP_BPF+CAP_PERFMON" : "");
		goto fail;
	}
	seed_frequencies(b, cfg->sysfs_root);
	r = sensor_probe__attach(b->skel);
	if (r < 0) {
		snprintf(why, why_size, "cannot attach the probe's tracepoints: %s", strerror(-r));
		goto fail;
	}
	b->rb = ring_buffer__new(bpf_map__fd(b->skel->maps.events), on_event, b, NULL);
	if (!b->rb) {
		r = -errno;
		snprintf(why, why_size, "cannot map the probe's ring buffer: %s", strerror(-r));
		goto fail;
	}
	b->zones_exist = any_thermal_zone(cfg->sysfs_root);
	*out = b;
	return 0;
fail:
	sensor_bpf_close(b);
	return r < 0 ? r : -EINVAL;
}

void sensor_bpf_close(struct sensor_bpf *b)
{
	if (!b)
		return;
	ring_buffer__free(b->rb);
	sensor_probe__destroy(b->skel);
	free(b);
}

int sensor_bpf_prog_at(const struct sensor_bpf *b, unsigned i, const char **name)
{
	struct bpf_program *prog;
	unsigned n = 0;

	bpf_object__for_each_program(prog, b->skel->obj)
	{
		if (n++ != i)
			continue;
		if (name)
			*name = bpf_program__name(prog);
		return bpf_program__fd(prog);
	}
	return -ENOENT;
}

int sensor_bpf_prog_fd(const struct sensor_bpf *b, const char *name)
{
	struct bpf_program *prog = bpf_object__find_program_by_name(b->skel->obj, name);

	return prog ? bpf_program__fd(prog) : -ENOENT;
}

int sensor_bpf_cpu(const struct sensor_bpf *b, unsigned cpu, struct probe_cpu *out)
{
	if (cpu >= b->n_cpus)
		return -ERANGE;
	*out = *(volatile struct probe_cpu *)&b->skel->bss->cpus[cpu];
	return 0;
}

/* CPU's busy nanoseconds up to NOW, counting the task running since the last switch. */
static uint64_t busy_until(const struct probe_cpu *c, uint64_t now)
{
	uint64_t busy = c->busy_ns;

	if (c->running && c->last_switch_ns && now > c->last_switch_ns)
		busy += now - c->last_switch_ns;
	return busy;
}

int sensor_bpf_sample(struct sensor_bpf *b, struct sensor_reading *out)
{
	uint64_t now = now_ns(), dt = b->prev_ns ? now - b->prev_ns : 0;
	uint64_t busy_sum = 0, khz_sum = 0;
	unsigned n_freq = 0;

	for (unsigned c = 0; c < b->n_cpus; c++) {
		struct probe_cpu pc;
		uint64_t busy, delta;

		sensor_bpf_cpu(b, c, &pc);
		busy = busy_until(&pc, now);
		delta = busy > b->prev_busy[c] ? busy - b->prev_busy[c] : 0;
		if (delta > dt)
			delta = dt;
		out->cpu_load_permille[c] = dt ? (uint16_t)(delta * 1000 / dt) : 0;
		busy_sum += delta;
		b->prev_busy[c] = busy;
		if (pc.freq_khz) {
			khz_sum += pc.freq_khz;
			n_freq++;
		}
	}
	out->n_cpus = b->n_cpus;
	out->load_permille = dt ? (uint32_t)(busy_sum * 1000 / (dt * b->n_cpus)) : 0;
	out->have |= SENSOR_HAVE_LOAD;
	if (n_freq) {
		out->freq_khz = (uint32_t)(khz_sum / n_freq);
		out->have |= SENSOR_HAVE_FREQ;
	}
	if (b->n_zones) {
		int32_t hottest = b->zones[0].temp_mc;

		for (unsigned i = 1; i < b->n_zones; i++)
			if (b->zones[i].temp_mc > hottest)
				hottest = b->zones[i].temp_mc;
		out->temp_mc = hottest;
		out->have |= SENSOR_HAVE_TEMP;
	}
	b->prev_ns = now;
	return 0;
}

int sensor_bpf_event_fd(const struct sensor_bpf *b)
{
	return ring_buffer__epoll_fd(b->rb);
}

int sensor_bpf_consume(struct sensor_bpf *b)
{
	return ring_buffer__consume(b->rb); /* events consumed, or -errno */
}

void sensor_bpf_stats(const struct sensor_bpf *b, struct sensor_bpf_stats *out)
{
	*out = b->stats;
}

/* The sensor source. */
static int bpf_open(const struct bmx_sensors_config *cfg, void **state, unsigned *provides,
		    char *why, size_t why_size)
{
	struct sensor_bpf *b;
	int r = sensor_bpf_open(cfg, &b, why, why_size);

	if (r < 0)
		return r;
	*state = b;
	*provides = SENSOR_HAVE_LOAD | SENSOR_HAVE_FREQ | (b->zones_exist ? SENSOR_HAVE_TEMP : 0);
	snprintf(
		why, why_size,
		"eBPF probe on %u CPUs: load from sched_switch, idle from cpu_idle, frequency from "
		"cpu_frequency%s, temperature from thermal_temperature events%s",
		b->n_cpus, b->skel->bss->cpus[0].freq_khz ? "" : " (no cpufreq here yet)",
		b->zones_exist ? "" : " (no thermal zone here: none will come)");
	return 0;
}

static void bpf_close(void *state)
{
	sensor_bpf_close(state);
}

static int bpf_sample(void *state, uint64_t now_ns, uint64_t work_ns, struct sensor_reading *out)
{
	(void)now_ns;
	(void)work_ns;
	return sensor_bpf_sample(state, out);
}

static int bpf_event_fd(const void *state)
{
	return sensor_bpf_event_fd(state);
}

static int bpf_handle_events(void *state)
{
	return sensor_bpf_consume(state);
}

const struct sensor_source_ops sensor_bpf_ops = {
	.name = "bpf",
	.open = bpf_open,
	.close = bpf_close,
	.sample = bpf_sample,
	.event_fd = bpf_event_fd,
	.handle_events = bpf_handle_events,
};
