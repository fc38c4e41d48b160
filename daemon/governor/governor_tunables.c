/* SPDX-License-Identifier: MIT */
/*
 * governor_tunables.c — the governors' tunables by name: lookup, defaults, get, set, copy and
 * their YAML text, all from the tables each governor declares in its ops (governor.h). The
 * configuration parser, D-Bus and the tests go through here, so none of them keeps its own list.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "governor.h"

const struct gov_tunable *gov_tunables(const char *governor, size_t *n)
{
	const struct governor_ops *ops = gov_find(governor);

	*n = ops ? ops->n_tunables : 0;
	return ops ? ops->tunables : NULL;
}

const struct gov_tunable *gov_tunable_find(const char *governor, const char *name)
{
	size_t n;
	const struct gov_tunable *t = gov_tunables(governor, &n);

	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i].name, name) == 0)
			return &t[i];
	return NULL;
}

static void *field(const struct gov_tunable *t, const struct bmx_governor_config *g)
{
	return (char *)g + t->offset;
}

static size_t *trip_count(const struct gov_tunable *t, const struct bmx_governor_config *g)
{
	return (size_t *)(void *)((char *)g + t->count_offset);
}

double gov_tunable_get(const struct gov_tunable *t, const struct bmx_governor_config *g)
{
	switch (t->type) {
	case GOV_TUNABLE_UNSIGNED:
		return *(const unsigned *)field(t, g);
	case GOV_TUNABLE_DOUBLE:
		return *(const double *)field(t, g);
	case GOV_TUNABLE_BOOL:
		return *(const bool *)field(t, g);
	case GOV_TUNABLE_TRIPS:
		break;
	}
	return NAN;
}

int gov_tunable_set(const struct gov_tunable *t, struct bmx_governor_config *g, double value)
{
	if (t->type == GOV_TUNABLE_TRIPS)
		return -EINVAL;
	if (!(value >= t->min && value <= t->max))
		return -ERANGE;
	switch (t->type) {
	case GOV_TUNABLE_UNSIGNED:
		if (value != floor(value))
			return -ERANGE;
		*(unsigned *)field(t, g) = (unsigned)value;
		break;
	case GOV_TUNABLE_DOUBLE:
		*(double *)field(t, g) = value;
		break;
	case GOV_TUNABLE_BOOL:
		if (value != 0 && value != 1)
			return -ERANGE;
		*(bool *)field(t, g) = value != 0;
		break;
	case GOV_TUNABLE_TRIPS:
		break;
	}
	return 0;
}

/* Where the next piece of a text of LEN so far goes in BUF[SIZE], and how much room is left. */
static char *at(char *buf, size_t size, int len)
{
	return (size_t)len < size ? buf + len : NULL;
}

static size_t room(size_t size, int len)
{
	return (size_t)len < size ? size - (size_t)len : 0;
}

int gov_tunable_format(const struct gov_tunable *t, const struct bmx_governor_config *g, char *buf,
		       size_t size)
{
	const struct bmx_config_trip *trips;
	int len = 0, r;

	switch (t->type) {
	case GOV_TUNABLE_UNSIGNED:
		return snprintf(buf, size, "%u", *(const unsigned *)field(t, g));
	case GOV_TUNABLE_DOUBLE:
		return snprintf(buf, size, "%.17g", *(const double *)field(t, g));
	case GOV_TUNABLE_BOOL:
		return snprintf(buf, size, "%s", *(const bool *)field(t, g) ? "true" : "false");
	case GOV_TUNABLE_TRIPS:
		break;
	}
	trips = field(t, g);
	len = snprintf(buf, size, "[");
	for (size_t i = 0; i < *trip_count(t, g); i++) {
		r = snprintf(at(buf, size, len), room(size, len),
			     "%s{temp: %.17g, hysteresis: %.17g}", i ? ", " : "", trips[i].temp_c,
			     trips[i].hysteresis_c);
		if (r < 0)
			return r;
		len += r;
	}
	r = snprintf(at(buf, size, len), room(size, len), "]");
	return r < 0 ? r : len + r;
}

void gov_tunable_copy(const struct gov_tunable *t, struct bmx_governor_config *to,
		      const struct bmx_governor_config *from)
{
	size_t size = 0;

	switch (t->type) {
	case GOV_TUNABLE_UNSIGNED:
		size = sizeof(unsigned);
		break;
	case GOV_TUNABLE_DOUBLE:
		size = sizeof(double);
		break;
	case GOV_TUNABLE_BOOL:
		size = sizeof(bool);
		break;
	case GOV_TUNABLE_TRIPS:
		size = sizeof(struct bmx_config_trip) * BMX_CONFIG_MAX_TRIPS;
		*trip_count(t, to) = *trip_count(t, from);
		break;
	}
	memcpy(field(t, to), field(t, from), size);
}

void gov_tunables_defaults(struct bmx_governor_config *g)
{
	size_t n_gov;
	const struct governor_ops *const *govs = gov_list(&n_gov);

	for (size_t i = 0; i < n_gov; i++) {
		for (size_t k = 0; k < govs[i]->n_tunables; k++) {
			const struct gov_tunable *t = &govs[i]->tunables[k];

			if (t->type != GOV_TUNABLE_TRIPS) {
				gov_tunable_set(t, g, t->def);
				continue;
			}
			memcpy(field(t, g), t->def_trips, t->n_def_trips * sizeof(*t->def_trips));
			*trip_count(t, g) = t->n_def_trips;
		}
	}
}
