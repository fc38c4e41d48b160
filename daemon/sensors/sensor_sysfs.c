/* SPDX-License-Identifier: MIT */
/*
 * sensor_sysfs.c — temperature from sysfs thermal zones (the hottest zone) and package power
 * from powercap/RAPL energy counters (the sum of the top-level zones, wrap-around handled), read
 * under a configurable root so that tests can point it at a fake tree. Zones are found once, at
 * open; a zone that stops answering is skipped rather than failing the reading.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sensor_perf_energy.h"
#include "sensor_source.h"

#define SYSFS_MAX_ZONES 64
#define SYSFS_PATH_MAX 384

struct rapl_zone {
	char energy_path[SYSFS_PATH_MAX];
	uint64_t max_range_uj; /* the counter wraps after this */
	uint64_t prev_uj;
};

struct sysfs_source {
	char temp_paths[SYSFS_MAX_ZONES][SYSFS_PATH_MAX];
	unsigned n_temps;
	struct rapl_zone rapl[SYSFS_MAX_ZONES];
	unsigned n_rapl;
	struct perf_energy perf; /* when there is no powercap zone; fd -1 if none */
	double perf_prev_j;
	uint64_t prev_ns; /* 0: no energy reading yet */
};

/* Read one unsigned or signed decimal number from PATH. */
static int read_s64(const char *path, int64_t *out)
{
	FILE *f = fopen(path, "re");
	int r;

	if (!f)
		return -errno;
	r = fscanf(f, "%" SCNd64, out) == 1 ? 0 : -EINVAL;
	fclose(f);
	return r;
}

static void find_thermal_zones(struct sysfs_source *src, const char *root)
{
	char dir_path[SYSFS_PATH_MAX];
	struct dirent *e;
	DIR *dir;

	snprintf(dir_path, sizeof(dir_path), "%s/class/thermal", root);
	dir = opendir(dir_path);
	if (!dir)
		return;
	while ((e = readdir(dir)) && src->n_temps < SYSFS_MAX_ZONES) {
		char *path = src->temp_paths[src->n_temps];
		int64_t v;

		if (strncmp(e->d_name, "thermal_zone", 12) != 0)
			continue;
		if (snprintf(path, SYSFS_PATH_MAX, "%s/%s/temp", dir_path, e->d_name) >=
		    SYSFS_PATH_MAX)
			continue;
		if (read_s64(path, &v) == 0)
			src->n_temps++;
	}
	closedir(dir);
}

/* Top-level powercap zones only ("intel-rapl:0", not its subzones "intel-rapl:0:1"). */
static void find_rapl_zones(struct sysfs_source *src, const char *root)
{
	char dir_path[SYSFS_PATH_MAX], path[SYSFS_PATH_MAX + 64];
	struct dirent *e;
	DIR *dir;

	snprintf(dir_path, sizeof(dir_path), "%s/class/powercap", root);
	dir = opendir(dir_path);
	if (!dir)
		return;
	while ((e = readdir(dir)) && src->n_rapl < SYSFS_MAX_ZONES) {
		struct rapl_zone *z = &src->rapl[src->n_rapl];
		const char *colon = strchr(e->d_name, ':');
		int64_t energy, range;

		if (!colon || strchr(colon + 1, ':'))
			continue;
		if (snprintf(z->energy_path, SYSFS_PATH_MAX, "%s/%s/energy_uj", dir_path,
			     e->d_name) >= SYSFS_PATH_MAX)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s/max_energy_range_uj", dir_path,
			     e->d_name) >= (int)sizeof(path))
			continue;
		if (read_s64(z->energy_path, &energy) < 0 || read_s64(path, &range) < 0 ||
		    range <= 0 || energy < 0)
			continue;
		z->max_range_uj = (uint64_t)range;
		z->prev_uj = (uint64_t)energy;
		src->n_rapl++;
	}
	closedir(dir);
}

static int sysfs_open(const struct bmx_sensors_config *cfg, void **state, unsigned *provides,
		      char *why, size_t why_size)
{
	struct sysfs_source *src = calloc(1, sizeof(*src));

	if (!src) {
		snprintf(why, why_size, "out of memory");
		return -ENOMEM;
	}
	char perf_why[256] = "";

	find_thermal_zones(src, cfg->sysfs_root);
	find_rapl_zones(src, cfg->sysfs_root);
	src->perf.fd = -1;
	if (!src->n_rapl &&
	    perf_energy_open(cfg->sysfs_root, &src->perf, perf_why, sizeof(perf_why)) == 0)
		src->perf_prev_j = perf_energy_read_joules(&src->perf);
	if (!src->n_temps && !src->n_rapl && src->perf.fd < 0) {
		snprintf(why, why_size,
			 "no readable thermal zone under %s/class/thermal, no powercap zone "
			 "under %s/class/powercap, %s",
			 cfg->sysfs_root, cfg->sysfs_root, perf_why);
		free(src);
		return -ENODEV;
	}
	*provides = (src->n_temps ? SENSOR_HAVE_TEMP : 0) |
		    (src->n_rapl || src->perf.fd >= 0 ? SENSOR_HAVE_POWER : 0);
	snprintf(why, why_size,
		 "%u thermal zone(s) under %s/class/thermal, %u powercap package(s) under "
		 "%s/class/powercap%s",
		 src->n_temps, cfg->sysfs_root, src->n_rapl, cfg->sysfs_root,
		 src->perf.fd >= 0 ? ", package energy from perf power/energy-pkg" : "");
	*state = src;
	return 0;
}

static void sysfs_close(void *state)
{
	struct sysfs_source *src = state;

	perf_energy_close(&src->perf);
	free(src);
}

static void sample_temp(struct sysfs_source *src, struct sensor_reading *out)
{
	int64_t hottest = INT64_MIN, v;

	for (unsigned i = 0; i < src->n_temps; i++)
		if (read_s64(src->temp_paths[i], &v) == 0 && v > hottest)
			hottest = v;
	if (hottest == INT64_MIN || hottest < INT32_MIN || hottest > INT32_MAX)
		return;
	out->temp_mc = (int32_t)hottest;
	out->have |= SENSOR_HAVE_TEMP;
}

static void sample_perf_power(struct sysfs_source *src, uint64_t now_ns, struct sensor_reading *out)
{
	double j = perf_energy_read_joules(&src->perf);

	if (j < 0)
		return;
	if (src->prev_ns && now_ns > src->prev_ns && j >= src->perf_prev_j) {
		out->power_mw =
			(uint32_t)((j - src->perf_prev_j) * 1e12 / (double)(now_ns - src->prev_ns));
		out->have |= SENSOR_HAVE_POWER;
	}
	src->perf_prev_j = j;
	src->prev_ns = now_ns;
}

static void sample_power(struct sysfs_source *src, uint64_t now_ns, struct sensor_reading *out)
{
	uint64_t joules_uj = 0;
	int64_t v;

	for (unsigned i = 0; i < src->n_rapl; i++) {
		struct rapl_zone *z = &src->rapl[i];
		uint64_t e;

		if (read_s64(z->energy_path, &v) < 0 || v < 0)
			continue;
		e = (uint64_t)v;
		/* The counter wraps at max_energy_range_uj back to 0. */
		joules_uj += e >= z->prev_uj ? e - z->prev_uj : z->max_range_uj - z->prev_uj + e;
		z->prev_uj = e;
	}
	if (src->prev_ns && now_ns > src->prev_ns) {
		/* uJ per ns = kW: mW = uJ * 1e6 / ns. */
		out->power_mw = (uint32_t)(joules_uj * 1000000ull / (now_ns - src->prev_ns));
		out->have |= SENSOR_HAVE_POWER;
	}
	src->prev_ns = now_ns;
}

static int sysfs_sample(void *state, uint64_t now_ns, uint64_t work_ns, struct sensor_reading *out)
{
	struct sysfs_source *src = state;

	(void)work_ns;
	if (src->n_temps)
		sample_temp(src, out);
	if (src->n_rapl)
		sample_power(src, now_ns, out);
	else if (src->perf.fd >= 0)
		sample_perf_power(src, now_ns, out);
	return 0;
}

const struct sensor_source_ops sensor_sysfs_ops = {
	.name = "sysfs",
	.open = sysfs_open,
	.close = sysfs_close,
	.sample = sysfs_sample,
};
