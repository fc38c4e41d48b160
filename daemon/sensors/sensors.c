/* SPDX-License-Identifier: MIT */
/*
 * sensors.c — the front of the sensors library: picks the sources the config asks for, merges
 * their readings into one struct sensor_reading, and says why each source was or was not chosen.
 *
 * A reading is assembled from up to four parts in priority order: the primary source (the probe,
 * sysfs, or the simulator), then helpers for what the primary cannot measure: sysfs for
 * temperature or power the probe lacks, the simulator for a temperature nobody measures (the
 * governor needs one to act on), /proc/stat for load. A field comes from the first part that
 * has it. The choice is made once, at open, and logged by the daemon through sensors_explain().
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "sensor_source.h"
#include "sensors.h"

#define SENSORS_MAX_PARTS 4

struct sensor_part {
	const struct sensor_source_ops *ops;
	void *state;
	unsigned provides; /* what the source can measure */
	unsigned used;	   /* what the reading may take from it, when no earlier part had it */
};

struct sensors {
	enum sensor_source_kind kind; /* the primary */
	struct sensor_part parts[SENSORS_MAX_PARTS];
	unsigned n_parts;
	unsigned have;		  /* union of the parts' used fields */
	_Atomic uint64_t work_ns; /* sensors_add_work() since the last sample */
	char explain[2048];
};

static const char *const kind_names[] = {
	[SENSOR_SOURCE_AUTO] = "auto",
	[SENSOR_SOURCE_BPF] = "bpf",
	[SENSOR_SOURCE_SYSFS] = "sysfs",
	[SENSOR_SOURCE_SIMULATOR] = "simulator",
};

const char *sensors_source_name(enum sensor_source_kind kind)
{
	if ((unsigned)kind < sizeof(kind_names) / sizeof(kind_names[0]))
		return kind_names[kind];
	return "unknown";
}

static const struct sensor_source_ops *kind_ops(enum sensor_source_kind kind)
{
	switch (kind) {
	case SENSOR_SOURCE_BPF:
		return &sensor_bpf_ops;
	case SENSOR_SOURCE_SYSFS:
		return &sensor_sysfs_ops;
	case SENSOR_SOURCE_SIMULATOR:
		return &sensor_simulator_ops;
	default:
		return NULL;
	}
}

static void explain_add(struct sensors *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void explain_add(struct sensors *s, const char *fmt, ...)
{
	size_t len = strlen(s->explain);
	va_list ap;

	if (len >= sizeof(s->explain) - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(s->explain + len, sizeof(s->explain) - len, fmt, ap);
	va_end(ap);
}

static void have_names(unsigned have, char *buf, size_t size)
{
	static const char *names[] = { "temperature", "power", "load", "frequency" };
	size_t len = 0;

	buf[0] = 0;
	for (unsigned i = 0; i < 4; i++)
		if (have & (1u << i))
			len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? ", " : "",
						names[i]);
	if (!len)
		snprintf(buf, size, "nothing");
}

/*
 * Try to open OPS as a part of S, taking the fields of WANT it provides that S lacks. Returns
 * 0, or -errno with a line in the explanation saying why not (ROLE says what it was tried as).
 */
static int try_part(struct sensors *s, const struct bmx_sensors_config *cfg,
		    const struct sensor_source_ops *ops, unsigned want, const char *role)
{
	struct sensor_part *part = &s->parts[s->n_parts];
	char why[512], fields[96];
	int r;

	why[0] = 0;
	r = ops->open(cfg, &part->state, &part->provides, why, sizeof(why));
	if (r < 0) {
		explain_add(s, "%s: not chosen as %s: %s\n", ops->name, role, why);
		return r;
	}
	part->ops = ops;
	part->used = part->provides & want;
	if (!part->used) {
		explain_add(s, "%s: opened as %s but measures nothing wanted there (%s); closed\n",
			    ops->name, role, why);
		ops->close(part->state);
		return -ENODATA;
	}
	s->have |= part->used;
	s->n_parts++;
	have_names(part->used, fields, sizeof(fields));
	explain_add(s, "%s: active as %s, for %s: %s\n", ops->name, role, fields, why);
	return 0;
}

/* The primary: the kind asked for, or with `auto` the first of bpf, sysfs, simulator. */
static int open_primary(struct sensors *s, const struct bmx_sensors_config *cfg)
{
	enum sensor_source_kind k = (enum sensor_source_kind)cfg->source;
	const unsigned all = SENSOR_HAVE_TEMP | SENSOR_HAVE_POWER | SENSOR_HAVE_LOAD |
			     SENSOR_HAVE_FREQ;
	int r;

	if (k != SENSOR_SOURCE_AUTO) {
		if (!kind_ops(k))
			return -EINVAL;
		r = try_part(s, cfg, kind_ops(k), all, "the configured source");
		if (r == 0)
			s->kind = k;
		return r;
	}
	for (k = SENSOR_SOURCE_BPF; k <= SENSOR_SOURCE_SIMULATOR; k++)
		if (try_part(s, cfg, kind_ops(k), all, "primary (auto)") == 0) {
			s->kind = k;
			return 0;
		}
	return -ENODEV; /* not reached: the simulator always opens */
}

static bool has_part(const struct sensors *s, const struct sensor_source_ops *ops)
{
	for (unsigned i = 0; i < s->n_parts; i++)
		if (s->parts[i].ops == ops)
			return true;
	return false;
}

int sensors_open(const struct bmx_sensors_config *cfg, struct sensors **out)
{
	return sensors_open_why(cfg, out, NULL, 0);
}

int sensors_open_why(const struct bmx_sensors_config *cfg, struct sensors **out, char *why,
		     size_t why_size)
{
	struct sensors *s = calloc(1, sizeof(*s));
	int r;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	r = open_primary(s, cfg);
	if (r < 0) {
		if (why && why_size) {
			size_t n = strlen(s->explain);

			snprintf(why, why_size, "%.*s",
				 (int)(n && s->explain[n - 1] == '\n' ? n - 1 : n), s->explain);
		}
		sensors_close(s);
		return r;
	}
	/* Helpers for what the primary does not measure; failures only go into the explanation. */
	/* Zones the probe hears about only when they update are still read between updates. */
	if (s->kind == SENSOR_SOURCE_BPF)
		try_part(s, cfg, &sensor_sysfs_ops, SENSOR_HAVE_TEMP | SENSOR_HAVE_POWER,
			 "helper for temperature and power");
	if (!(s->have & SENSOR_HAVE_TEMP)) {
		explain_add(s,
			    "no source measures a temperature here: the simulator supplies one\n");
		try_part(s, cfg, &sensor_simulator_ops, SENSOR_HAVE_TEMP | SENSOR_HAVE_POWER,
			 "stand-in for the missing temperature");
	}
	if (!(s->have & SENSOR_HAVE_LOAD))
		try_part(s, cfg, &sensor_procstat_ops, SENSOR_HAVE_LOAD, "load helper");
	if (cfg->source != SENSOR_SOURCE_AUTO)
		for (enum sensor_source_kind k = SENSOR_SOURCE_BPF; k <= SENSOR_SOURCE_SIMULATOR;
		     k++)
			if (!has_part(s, kind_ops(k)))
				explain_add(s, "%s: not tried: the config names source %s\n",
					    sensors_source_name(k), sensors_source_name(s->kind));
	*out = s;
	return 0;
}

void sensors_close(struct sensors *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < s->n_parts; i++)
		s->parts[i].ops->close(s->parts[i].state);
	free(s);
}

/* Copy the fields USED of FROM into TO. */
static void merge(struct sensor_reading *to, const struct sensor_reading *from, unsigned used)
{
	if (used & SENSOR_HAVE_TEMP)
		to->temp_mc = from->temp_mc;
	if (used & SENSOR_HAVE_POWER)
		to->power_mw = from->power_mw;
	if (used & SENSOR_HAVE_FREQ)
		to->freq_khz = from->freq_khz;
	if (used & SENSOR_HAVE_LOAD) {
		to->load_permille = from->load_permille;
		to->n_cpus = from->n_cpus;
		memcpy(to->cpu_load_permille, from->cpu_load_permille,
		       sizeof(to->cpu_load_permille));
	}
	to->have |= used;
}

int sensors_sample(struct sensors *s, uint64_t now_ns, struct sensor_reading *out)
{
	struct sensor_reading tmp, next;
	uint64_t work = atomic_exchange_explicit(&s->work_ns, 0, memory_order_relaxed);
	int first_err = 0;

	memset(&next, 0, sizeof(next));
	next.time_ns = now_ns;
	for (unsigned i = 0; i < s->n_parts; i++) {
		struct sensor_part *part = &s->parts[i];
		int r;

		memset(&tmp, 0, sizeof(tmp));
		r = part->ops->sample(part->state, now_ns, work, &tmp);
		if (r < 0) {
			if (!first_err)
				first_err = r;
			continue;
		}
		merge(&next, &tmp, part->used & tmp.have & ~next.have);
	}
	if (first_err)
		return first_err;
	*out = next;
	return 0;
}

void sensors_add_work(struct sensors *s, uint64_t busy_ns)
{
	atomic_fetch_add_explicit(&s->work_ns, busy_ns, memory_order_relaxed);
}

int sensors_event_fd(const struct sensors *s)
{
	for (unsigned i = 0; i < s->n_parts; i++)
		if (s->parts[i].ops->event_fd)
			return s->parts[i].ops->event_fd(s->parts[i].state);
	return -1;
}

int sensors_handle_events(struct sensors *s)
{
	int n = 0;

	for (unsigned i = 0; i < s->n_parts; i++)
		if (s->parts[i].ops->handle_events) {
			int r = s->parts[i].ops->handle_events(s->parts[i].state);

			if (r < 0)
				return r;
			n += r;
		}
	return n;
}

enum sensor_source_kind sensors_source(const struct sensors *s)
{
	return s->kind;
}

const char *sensors_explain(const struct sensors *s)
{
	return s->explain;
}
