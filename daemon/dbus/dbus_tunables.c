/* SPDX-License-Identifier: MIT */
/*
 * dbus_tunables.c — the running governor's tunables over D-Bus: the GovernorTunables property
 * and SetGovernorWithTunables(name, tunables), which switches governor with some of its tunables
 * changed until the next reload (a reload sets what the file says, as for every run-time change).
 *
 * The new values are checked by the configuration parser itself, not by a second copy of its
 * rules: the governor's block is written out as YAML (the running values, with the caller's on
 * top) and parsed, so ranges and cross-checks (switch_on_temp_c <= control_temp_c, ascending
 * trips ...) and their messages are exactly the file's.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbus_internal.h"
#include "log.h"

struct tunable {
	const char *governor, *key;
	char type; /* 'u': unsigned, 'd': double */
	size_t offset;
};

#define T(gov, key, type)                                                       \
	{                                                                       \
#gov, #key, type, offsetof(struct bmx_governor_config, gov.key) \
	}
static const struct tunable tunables[] = {
	T(ondemand, up_threshold, 'u'),
	T(ondemand, sampling_down_factor, 'u'),
	T(conservative, up_threshold, 'u'),
	T(conservative, down_threshold, 'u'),
	T(conservative, freq_step, 'u'),
	T(conservative, sampling_down_factor, 'u'),
	T(step_wise, states, 'u'),
	T(power_allocator, control_temp_c, 'd'),
	T(power_allocator, switch_on_temp_c, 'd'),
	T(power_allocator, sustainable_power_w, 'd'),
	T(power_allocator, k_po, 'd'),
	T(power_allocator, k_pu, 'd'),
	T(power_allocator, k_i, 'd'),
	T(power_allocator, k_d, 'd'),
	T(power_allocator, integral_cutoff_c, 'd'),
	T(power_allocator, dynamic_power_w, 'd'),
};
#undef T

#define MAX_GIVEN 16

struct given {
	char key[32];
	char value[160];
};

static void write_value(FILE *f, const struct tunable *t, const struct bmx_governor_config *g)
{
	const char *field = (const char *)g + t->offset;

	if (t->type == 'u')
		fprintf(f, "%u", *(const unsigned *)(const void *)field);
	else
		fprintf(f, "%.17g", *(const double *)(const void *)field);
}

static void write_trips(FILE *f, const struct bmx_governor_config *g)
{
	fputc('[', f);
	for (size_t i = 0; i < g->step_wise.n_trips; i++)
		fprintf(f, "%s{temp: %.17g, hysteresis: %.17g}", i ? ", " : "",
			g->step_wise.trips[i].temp_c, g->step_wise.trips[i].hysteresis_c);
	fputc(']', f);
}

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
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	if (!f)
		return NULL;
	fprintf(f, "models: {m: /dev/null}\ngovernor:\n  name: %s\n  %s:\n", name, name);
	for (size_t i = 0; i < sizeof(tunables) / sizeof(tunables[0]); i++) {
		const char *v;

		if (strcmp(tunables[i].governor, name) != 0)
			continue;
		fprintf(f, "    %s: ", tunables[i].key);
		if ((v = given_value(given, n, tunables[i].key)))
			fputs(v, f);
		else
			write_value(f, &tunables[i], running);
		fputc('\n', f);
	}
	if (strcmp(name, "step_wise") == 0) {
		const char *v = given_value(given, n, "trips");

		fputs("    trips: ", f);
		if (v)
			fputs(v, f);
		else
			write_trips(f, running);
		fputc('\n', f);
	}
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static bool is_tunable(const char *gov, const char *key)
{
	if (strcmp(gov, "step_wise") == 0 && strcmp(key, "trips") == 0)
		return true;
	for (size_t i = 0; i < sizeof(tunables) / sizeof(tunables[0]); i++)
		if (strcmp(tunables[i].governor, gov) == 0 && strcmp(tunables[i].key, key) == 0)
			return true;
	return false;
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
		if (!is_tunable(gov, key))
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

/* Replace governor NAME's block of G by the one parsed into NEXT. */
static void take_block(struct bmx_governor_config *g, const struct bmx_governor_config *next,
		       const char *name)
{
	if (strcmp(name, "ondemand") == 0)
		g->ondemand = next->ondemand;
	else if (strcmp(name, "conservative") == 0)
		g->conservative = next->conservative;
	else if (strcmp(name, "step_wise") == 0)
		g->step_wise = next->step_wise;
	else if (strcmp(name, "power_allocator") == 0)
		g->power_allocator = next->power_allocator;
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

/* GovernorTunables: the running governor's block, as a{sv}. */
int dbus_append_tunables(sd_bus_message *reply, const struct gov_core *core)
{
	const struct bmx_governor_config *g = gov_core_config(core);
	const char *name = gov_core_governor(core);
	int r = sd_bus_message_open_container(reply, 'a', "{sv}");

	for (size_t i = 0; r >= 0 && i < sizeof(tunables) / sizeof(tunables[0]); i++) {
		const char *field = (const char *)g + tunables[i].offset;

		if (strcmp(tunables[i].governor, name) != 0)
			continue;
		if (tunables[i].type == 'u')
			r = sd_bus_message_append(reply, "{sv}", tunables[i].key, "u",
						  *(const unsigned *)(const void *)field);
		else
			r = sd_bus_message_append(reply, "{sv}", tunables[i].key, "d",
						  *(const double *)(const void *)field);
	}
	if (r >= 0 && strcmp(name, "step_wise") == 0) {
		r = dbus_open_entry(reply, "trips", "a(dd)");
		if (r >= 0)
			r = sd_bus_message_open_container(reply, 'a', "(dd)");
		for (size_t i = 0; r >= 0 && i < g->step_wise.n_trips; i++)
			r = sd_bus_message_append(reply, "(dd)", g->step_wise.trips[i].temp_c,
						  g->step_wise.trips[i].hysteresis_c);
		for (int k = 0; r >= 0 && k < 3; k++)
			r = sd_bus_message_close_container(reply);
	}
	return r < 0 ? r : sd_bus_message_close_container(reply);
}
