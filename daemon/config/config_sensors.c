/* SPDX-License-Identifier: MIT */
/*
 * config_sensors.c — the `sensors:` block of bitmixd's YAML: which source (auto, bpf, sysfs,
 * simulator), the sampling period, where sysfs and proc live (a fake tree in tests) and the
 * thermal simulator's RC parameters. The schema is documented in config/README.md.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_parse.h"
#include "sensors.h"

static double sim_idle_steady_c(const struct bmx_sensors_simulator_config *sim)
{
	return sim->ambient_c + sim->idle_power_w * sim->resistance_c_per_w;
}

void bmx_sensors_config_defaults(struct bmx_sensors_config *sc)
{
	memset(sc, 0, sizeof(*sc));
	sc->source = SENSOR_SOURCE_AUTO;
	sc->period_ms = 100;
	snprintf(sc->sysfs_root, sizeof(sc->sysfs_root), "/sys");
	snprintf(sc->proc_root, sizeof(sc->proc_root), "/proc");
	/* A small package with a heatsink: tau = R*C = 60 s; two busy CPUs settle near 92 C. */
	sc->simulator.ambient_c = 25.0;
	sc->simulator.resistance_c_per_w = 1.5;
	sc->simulator.capacitance_j_per_c = 40.0;
	sc->simulator.idle_power_w = 5.0;
	sc->simulator.power_per_cpu_w = 20.0;
	sc->simulator.initial_c = sim_idle_steady_c(&sc->simulator); /* 32.5 C */
}

/* A finite number in [lo, hi] (hi_open: hi itself excluded). */
static int parse_number(struct config_parse *p, yaml_node_t *v, const char *path, double lo,
			double hi, bool lo_open, double *out)
{
	const char *s;
	char *end;
	double x;

	if (config_expect(p, v, YAML_SCALAR_NODE, path) < 0)
		return -EINVAL;
	s = config_scalar(v);
	errno = 0;
	x = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(x) || x < lo || x > hi || (lo_open && x == lo))
		return config_fail(p, v, path, "\"%s\" is not a number %s %g and <= %g", s,
				   lo_open ? ">" : ">=", lo, hi);
	*out = x;
	return 0;
}

static int parse_path(struct config_parse *p, yaml_node_t *v, const char *path, char *out,
		      size_t size)
{
	const char *s;

	if (config_expect(p, v, YAML_SCALAR_NODE, path) < 0)
		return -EINVAL;
	s = config_scalar(v);
	if (s[0] != '/')
		return config_fail(p, v, path, "\"%s\" is not an absolute path", s);
	if (strlen(s) >= size)
		return config_fail(p, v, path, "path is %zu bytes, at most %zu allowed", strlen(s),
				   size - 1);
	snprintf(out, size, "%s", s);
	return 0;
}

struct simulator_seen {
	bool initial;
};

static int simulator_pair(struct config_parse *p, const char *key, yaml_node_t *k, yaml_node_t *v,
			  void *u)
{
	struct bmx_sensors_simulator_config *sim = &p->cfg->sensors.simulator;
	struct simulator_seen *seen = u;
	static const struct {
		const char *key;
		size_t offset;
		double lo, hi;
		bool lo_open;
	} fields[] = {
		{ "ambient_c", offsetof(struct bmx_sensors_simulator_config, ambient_c), -50, 150,
		  false },
		{ "initial_c", offsetof(struct bmx_sensors_simulator_config, initial_c), -50, 200,
		  false },
		{ "thermal_resistance_c_per_w",
		  offsetof(struct bmx_sensors_simulator_config, resistance_c_per_w), 0, 100, true },
		{ "heat_capacity_j_per_c",
		  offsetof(struct bmx_sensors_simulator_config, capacitance_j_per_c), 0, 1e6,
		  true },
		{ "idle_power_w", offsetof(struct bmx_sensors_simulator_config, idle_power_w), 0,
		  1e4, false },
		{ "power_per_cpu_w", offsetof(struct bmx_sensors_simulator_config, power_per_cpu_w),
		  0, 1e4, false },
	};
	char path[96];

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (strcmp(key, fields[i].key) != 0)
			continue;
		snprintf(path, sizeof(path), "sensors.simulator.%s", key);
		if (strcmp(key, "initial_c") == 0)
			seen->initial = true;
		return parse_number(p, v, path, fields[i].lo, fields[i].hi, fields[i].lo_open,
				    (double *)((char *)sim + fields[i].offset));
	}
	return config_fail(p, k, "sensors.simulator",
			   "unknown key \"%s\" (expected one of: ambient_c, initial_c, "
			   "thermal_resistance_c_per_w, heat_capacity_j_per_c, idle_power_w, "
			   "power_per_cpu_w)",
			   key);
}

static int parse_source(struct config_parse *p, yaml_node_t *v)
{
	static const char *names[] = { [SENSOR_SOURCE_AUTO] = "auto",
				       [SENSOR_SOURCE_BPF] = "bpf",
				       [SENSOR_SOURCE_SYSFS] = "sysfs",
				       [SENSOR_SOURCE_SIMULATOR] = "simulator" };

	if (config_expect(p, v, YAML_SCALAR_NODE, "sensors.source") < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(config_scalar(v), names[i]) == 0) {
			p->cfg->sensors.source = (int)i;
			return 0;
		}
	return config_fail(p, v, "sensors.source",
			   "\"%s\" is not one of: auto, bpf, sysfs, simulator", config_scalar(v));
}

static int sensors_pair(struct config_parse *p, const char *key, yaml_node_t *k, yaml_node_t *v,
			void *u)
{
	struct bmx_sensors_config *sc = &p->cfg->sensors;

	if (strcmp(key, "source") == 0)
		return parse_source(p, v);
	if (strcmp(key, "period_ms") == 0) {
		double ms;

		if (parse_number(p, v, "sensors.period_ms", 1, 60000, false, &ms) < 0)
			return -EINVAL;
		if (ms != (unsigned)ms)
			return config_fail(p, v, "sensors.period_ms",
					   "\"%s\" is not a whole number of ms", config_scalar(v));
		sc->period_ms = (unsigned)ms;
		return 0;
	}
	if (strcmp(key, "sysfs_root") == 0)
		return parse_path(p, v, "sensors.sysfs_root", sc->sysfs_root,
				  sizeof(sc->sysfs_root));
	if (strcmp(key, "proc_root") == 0)
		return parse_path(p, v, "sensors.proc_root", sc->proc_root, sizeof(sc->proc_root));
	if (strcmp(key, "simulator") == 0) {
		struct simulator_seen *seen = u;

		if (config_expect(p, v, YAML_MAPPING_NODE, "sensors.simulator") < 0)
			return -EINVAL;
		return config_for_each_pair(p, v, "sensors.simulator", simulator_pair, seen);
	}
	return config_fail(p, k, "sensors",
			   "unknown key \"%s\" (expected one of: source, period_ms, sysfs_root, "
			   "proc_root, simulator)",
			   key);
}

int config_parse_sensors(struct config_parse *p, yaml_node_t *v)
{
	struct simulator_seen seen = { false };
	int r;

	if (config_expect(p, v, YAML_MAPPING_NODE, "sensors") < 0)
		return -EINVAL;
	r = config_for_each_pair(p, v, "sensors", sensors_pair, &seen);
	if (r < 0)
		return r;
	/* Unless told otherwise, the package starts where idle power holds it. */
	if (!seen.initial)
		p->cfg->sensors.simulator.initial_c = sim_idle_steady_c(&p->cfg->sensors.simulator);
	return 0;
}
