/* SPDX-License-Identifier: MIT */
/*
 * dbus_tunables.c — the running governor's tunables over D-Bus: the GovernorTunables property
 * and SetGovernorWithTunables(name, tunables), which switches governor with some of its tunables
 * changed until the next reload (a reload sets what the file says, as for every run-time change).
 *
 * The new values are checked by the configuration parser itself, not by a second copy of its
 * rules: the governor's block is written out as YAML (the running values, with the caller's on
 * top) and parsed, so ranges and cross-checks (switch_on_temp_c <= control_temp_c, ascending
 * trips ...) and their messages are exactly the file's. Which tunables a governor has, their
 * D-Bus types and YAML text all come from the table in its ops (governor.h).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbus_internal.h"
#include "log.h"

#define MAX_GIVEN 16

struct given {
	char key[32];
	char value[160];
};

static const char *given_value(const struct given *given, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(given[i].key, key) == 0)
			return given[i].value;
	return NULL;
}

/* The YAML of governor NAME's block: the running values, the given ones on top. */
static char *block_yaml(const char *name, const struct bmx_governor_config *running,
			const struct given *given, size_t n)
{
	size_t n_tunables;
	const struct gov_tunable *t = gov_tunables(name, &n_tunables);
	char *text = NULL, value[512];
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	if (!f)
		return NULL;
	fprintf(f, "models: {m: /dev/null}\ngovernor:\n  name: %s\n", name);
	if (n_tunables)
		fprintf(f, "  %s:\n", name);
	for (size_t i = 0; i < n_tunables; i++) {
		const char *v = given_value(given, n, t[i].name);

		if (!v) {
			gov_tunable_format(&t[i], running, value, sizeof(value));
			v = value;
		}
		fprintf(f, "    %s: %s\n", t[i].name, v);
	}
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* One a{sv} entry's value as YAML text: numbers, booleans, or a string taken verbatim. */
static int read_value(sd_bus_message *m, char *out, size_t size, sd_bus_error *error)
{
	const char *contents;
	char type;
	union {
		uint8_t y;
		int16_t n;
		uint16_t q;
		int32_t i;
		uint32_t u;
		int64_t x;
		uint64_t t;
		double d;
		const char *s;
	} v;
	int r = sd_bus_message_peek_type(m, &type, &contents);

	if (r < 0 || (r = sd_bus_message_enter_container(m, 'v', contents)) < 0)
		return r;
	if (strlen(contents) != 1 || !strchr("ynqiuxtds", contents[0]))
		return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
					 "a tunable is a number or a string, not \"%s\"", contents);
	r = sd_bus_message_read_basic(m, contents[0], &v);
	if (r < 0)
		return r;
	switch (contents[0]) {
	case 'y':
		snprintf(out, size, "%u", v.y);
		break;
	case 'n':
		snprintf(out, size, "%d", v.n);
		break;
	case 'q':
		snprintf(out, size, "%u", v.q);
		break;
	case 'i':
		snprintf(out, size, "%d", v.i);
		break;
	case 'u':
		snprintf(out, size, "%u", v.u);
		break;
	case 'x':
		snprintf(out, size, "%lld", (long long)v.x);
		break;
	case 't':
		snprintf(out, size, "%llu", (unsigned long long)v.t);
		break;
	case 'd':
		snprintf(out, size, "%.17g", v.d);
		break;
	default:
		/* One YAML value on one line: a list such as trips, or a number given as text. */
		if (strpbrk(v.s, "\n\r#") || strlen(v.s) >= size)
			return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
						 "\"%s\" is not one YAML value on one line", v.s);
		snprintf(out, size, "%s", v.s);
	}
	return sd_bus_message_exit_container(m);
}

static int read_given(sd_bus_message *m, const char *gov, struct given *given, size_t *n,
		      sd_bus_error *error)
{
	const char *key;
	int r = sd_bus_message_enter_container(m, 'a', "{sv}");

	while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		if ((r = sd_bus_message_read(m, "s", &key)) < 0)
			return r;
		if (!gov_tunable_find(gov, key))
			return sd_bus_error_setf(
				error, SD_BUS_ERROR_INVALID_ARGS,
				"the %s governor has no tunable \"%s\" (see governor.%s "
				"in config/README.md)",
				gov, key, gov);
		if (*n == MAX_GIVEN || given_value(given, *n, key))
			return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
						 "tunable \"%s\" given twice, or too many", key);
		snprintf(given[*n].key, sizeof(given[0].key), "%s", key);
		r = read_value(m, given[*n].value, sizeof(given[0].value), error);
		if (r < 0 || sd_bus_error_is_set(error))
			return r < 0 ? r : -EINVAL;
		(*n)++;
		if ((r = sd_bus_message_exit_container(m)) < 0)
			return r;
	}
	return r < 0 ? r : sd_bus_message_exit_container(m);
}

/* Replace governor NAME's tunables in G by the ones parsed into NEXT. */
static void take_block(struct bmx_governor_config *g, const struct bmx_governor_config *next,
		       const char *name)
{
	size_t n;
	const struct gov_tunable *t = gov_tunables(name, &n);

	for (size_t i = 0; i < n; i++)
		gov_tunable_copy(&t[i], g, next);
	snprintf(g->name, sizeof(g->name), "%s", name);
}

int dbus_method_set_governor_tunables(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct bmx_daemon *d = b->d;
	struct given given[MAX_GIVEN];
	struct bmx_config_error err = { "" };
	struct bmx_config *parsed = NULL;
	struct bmx_governor_config g;
	_cleanup_(freep) char *yaml = NULL;
	struct admin_error aerr = { 0 };
	struct admin_caller c;
	const char *name;
	char who[96];
	size_t n = 0;
	int r;

	r = dbus_read_governor(b, m, &name, error);
	if (r <= 0)
		return r;
	r = read_given(m, name, given, &n, error);
	if (r < 0 || sd_bus_error_is_set(error))
		return r < 0 ? r : -EINVAL;
	g = *gov_core_config(d->governor);
	yaml = block_yaml(name, &g, given, n);
	if (!yaml)
		return -ENOMEM;
	if (bmx_config_load_string("tunables", yaml, &parsed, &err) < 0)
		return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "%s", err.msg);
	take_block(&g, &parsed->governor, name);
	bmx_config_free(parsed);
	r = dbus_caller(b, m, DBUS_CALLER_ADMIN, &c, who, sizeof(who));
	if (r < 0)
		return r;
	if (admin_tunables_set(d, &c, name, &g, &aerr) < 0)
		return dbus_admin_error(error, &aerr);
	return sd_bus_reply_method_return(m, NULL);
}

static int append_trips(sd_bus_message *reply, const struct gov_tunable *t,
			const struct bmx_governor_config *g)
{
	const struct bmx_config_trip *trips = (const void *)((const char *)g + t->offset);
	size_t n = *(const size_t *)(const void *)((const char *)g + t->count_offset);
	int r = dbus_open_entry(reply, t->name, "a(dd)");

	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(dd)");
	for (size_t i = 0; r >= 0 && i < n; i++)
		r = sd_bus_message_append(reply, "(dd)", trips[i].temp_c, trips[i].hysteresis_c);
	for (int k = 0; r >= 0 && k < 3; k++)
		r = sd_bus_message_close_container(reply);
	return r;
}

/*
 * TunableInfo: every governor's tunables as their tables declare them, for clients that list
 * them (bitmixctl, busctl): governor, name, type (unsigned, double, bool, trips), min, max, the
 * default as the YAML text the configuration takes, unit, one-line doc.
 */
int dbus_append_tunable_info(sd_bus_message *reply)
{
	static const char *const types[] = { "unsigned", "double", "bool", "trips" };
	struct bmx_governor_config defaults;
	size_t n_gov;
	const struct governor_ops *const *govs = gov_list(&n_gov);
	int r = sd_bus_message_open_container(reply, 'a', "(sssddsss)");

	bmx_governor_config_defaults(&defaults);
	for (size_t i = 0; r >= 0 && i < n_gov; i++) {
		for (size_t k = 0; r >= 0 && k < govs[i]->n_tunables; k++) {
			const struct gov_tunable *t = &govs[i]->tunables[k];
			char def[512];

			gov_tunable_format(t, &defaults, def, sizeof(def));
			r = sd_bus_message_append(reply, "(sssddsss)", govs[i]->name, t->name,
						  types[t->type], t->min, t->max, def, t->unit,
						  t->doc);
		}
	}
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

/* GovernorTunables: the running governor's tunables, as a{sv} (u, d, b, or a(dd) for trips). */
int dbus_append_tunables(sd_bus_message *reply, const struct gov_core *core)
{
	const struct bmx_governor_config *g = gov_core_config(core);
	size_t n;
	const struct gov_tunable *t = gov_tunables(gov_core_governor(core), &n);
	int r = sd_bus_message_open_container(reply, 'a', "{sv}");

	for (size_t i = 0; r >= 0 && i < n; i++) {
		double v = gov_tunable_get(&t[i], g);

		switch (t[i].type) {
		case GOV_TUNABLE_UNSIGNED:
			r = sd_bus_message_append(reply, "{sv}", t[i].name, "u", (uint32_t)v);
			break;
		case GOV_TUNABLE_DOUBLE:
			r = sd_bus_message_append(reply, "{sv}", t[i].name, "d", v);
			break;
		case GOV_TUNABLE_BOOL:
			r = sd_bus_message_append(reply, "{sv}", t[i].name, "b", (int)(v != 0));
			break;
		case GOV_TUNABLE_TRIPS:
			r = append_trips(reply, &t[i], g);
			break;
		}
	}
	return r < 0 ? r : sd_bus_message_close_container(reply);
}
