/* SPDX-License-Identifier: MIT */
/*
 * bitmixctl_dbus.c — bitmixctl's side of the D-Bus API: connecting to org.bitmix.Daemon1
 * (the system bus, or --bus-address / $BITMIX_BUS_ADDRESS), reading its properties, and the
 * JSON writer for --json. The verbs themselves are in bitmixctl_dbus_verbs.c.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "bitmixctl_dbus.h"

const char *ctl_bus_name(const char *address)
{
	return address ? address : "the system bus";
}

int ctl_bus_open(const char *address, sd_bus **out)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	sd_bus *bus = NULL;
	int r, has = 0;

	*out = NULL;
	if (address) {
		r = sd_bus_new(&bus);
		if (r >= 0)
			r = sd_bus_set_address(bus, address);
		if (r >= 0)
			r = sd_bus_set_bus_client(bus, 1);
		if (r >= 0)
			r = sd_bus_start(bus);
	} else {
		r = sd_bus_open_system(&bus);
	}
	if (r < 0) {
		sd_bus_unref(bus);
		return r == -ENOENT || r == -ECONNREFUSED ? -ENOENT : r;
	}
	/* Is the daemon there? NameHasOwner asks the bus driver, without activating anything. */
	r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
			       "org.freedesktop.DBus", "NameHasOwner", &error, &reply, "s",
			       CTL_NAME);
	if (r >= 0)
		r = sd_bus_message_read(reply, "b", &has);
	if (r >= 0 && !has)
		r = -ENOENT;
	sd_bus_message_unref(reply);
	sd_bus_error_free(&error);
	if (r < 0) {
		sd_bus_flush_close_unref(bus);
		return r;
	}
	*out = bus;
	return 0;
}

int ctl_get_string(sd_bus *bus, const char *path, const char *iface, const char *prop, char **out)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	int r = sd_bus_get_property_string(bus, CTL_NAME, path, iface, prop, &error, out);

	if (r < 0)
		fprintf(stderr, "bitmixctl: reading %s: %s\n", prop,
			error.message ? error.message : strerror(-r));
	sd_bus_error_free(&error);
	return r;
}

int ctl_get_double(sd_bus *bus, const char *path, const char *iface, const char *prop, double *out)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	int r = sd_bus_get_property_trivial(bus, CTL_NAME, path, iface, prop, &error, 'd', out);

	if (r < 0)
		fprintf(stderr, "bitmixctl: reading %s: %s\n", prop,
			error.message ? error.message : strerror(-r));
	sd_bus_error_free(&error);
	return r;
}

int ctl_get_work_cap(sd_bus *bus, struct bitmix_governor_info *g)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	int saturated = 0, r;

	r = sd_bus_get_property(bus, CTL_NAME, CTL_PATH, CTL_IFACE, "WorkCap", &error, &reply,
				"(dddtb)");
	if (r >= 0)
		r = sd_bus_message_read(reply, "(dddtb)", &g->work_cap_cpus, &g->busy_cpus,
					&g->capacity_cpus, &g->capped_ns, &saturated);
	if (r < 0)
		fprintf(stderr, "bitmixctl: reading WorkCap: %s\n",
			error.message ? error.message : strerror(-r));
	g->capped_ns *= 1000;
	g->saturated = saturated;
	sd_bus_message_unref(reply);
	sd_bus_error_free(&error);
	return r < 0 ? r : 0;
}

char *ctl_model_path(const char *name)
{
	char *path = NULL;

	return sd_bus_path_encode(CTL_PATH "/model", name, &path) < 0 ? NULL : path;
}

/* Read property PROP of PATH into *REPLY, positioned at its value. */
static int get_property(sd_bus *bus, const char *path, const char *iface, const char *prop,
			const char *type, sd_bus_message **reply)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	int r = sd_bus_get_property(bus, CTL_NAME, path, iface, prop, &error, reply, type);

	if (r < 0)
		fprintf(stderr, "bitmixctl: reading %s of %s: %s\n", prop, path,
			error.message ? error.message : strerror(-r));
	sd_bus_error_free(&error);
	return r;
}

int ctl_list_models(sd_bus *bus, char **names, char **paths, int max)
{
	sd_bus_message *reply = NULL;
	const char *name, *path;
	int n = 0, r;

	r = get_property(bus, CTL_PATH, CTL_IFACE, "Models", "a(so)", &reply);
	if (r >= 0)
		r = sd_bus_message_enter_container(reply, 'a', "(so)");
	while (r >= 0 && n < max && (r = sd_bus_message_read(reply, "(so)", &name, &path)) > 0) {
		names[n] = strdup(name);
		paths[n] = strdup(path);
		n++;
	}
	sd_bus_message_unref(reply);
	if (r < 0) {
		ctl_free_models(names, paths, n);
		return r;
	}
	return n;
}

void ctl_free_models(char **names, char **paths, int n)
{
	for (int i = 0; i < n; i++) {
		free(names[i]);
		free(paths[i]);
	}
}

int ctl_get_bits(sd_bus *bus, const char *path, struct bitmix_layer_bits *bits,
		 uint64_t *generation)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	uint8_t w, a;
	int n = 0, r;

	r = sd_bus_get_property_trivial(bus, CTL_NAME, path, CTL_MODEL_IFACE, "Generation", &error,
					't', generation);
	sd_bus_error_free(&error);
	if (r >= 0)
		r = get_property(bus, path, CTL_MODEL_IFACE, "CurrentBits", "a(yy)", &reply);
	if (r >= 0)
		r = sd_bus_message_enter_container(reply, 'a', "(yy)");
	while (r >= 0 && n < CTL_MAX_LAYERS && (r = sd_bus_message_read(reply, "(yy)", &w, &a)) > 0)
		bits[n++] = (struct bitmix_layer_bits){ w, a };
	sd_bus_message_unref(reply);
	return r < 0 ? r : n;
}

int ctl_get_masks(sd_bus *bus, const char *path, uint16_t *masks)
{
	sd_bus_message *reply = NULL;
	uint8_t b;
	int n = 0, r;

	r = get_property(bus, path, CTL_MODEL_IFACE, "AvailableBits", "aay", &reply);
	if (r >= 0)
		r = sd_bus_message_enter_container(reply, 'a', "ay");
	while (r >= 0 && n < CTL_MAX_LAYERS &&
	       (r = sd_bus_message_enter_container(reply, 'a', "y")) > 0) {
		masks[n] = 0;
		while ((r = sd_bus_message_read(reply, "y", &b)) > 0)
			if (b < 16)
				masks[n] |= (uint16_t)(1u << b);
		if (r >= 0)
			r = sd_bus_message_exit_container(reply);
		n++;
	}
	sd_bus_message_unref(reply);
	return r < 0 ? r : n;
}

static int read_stats_entry(sd_bus_message *m, const char *key, struct ctl_stats *st)
{
	static const struct {
		const char *key;
		char type;
		size_t off;
	} fields[] = {
		{ "average_bits", 'd', offsetof(struct ctl_stats, average_bits) },
		{ "cost_ns", 'd', offsetof(struct ctl_stats, cost_ns) },
		{ "samples_per_second", 'd', offsetof(struct ctl_stats, samples_per_second) },
		{ "samples_completed", 't', offsetof(struct ctl_stats, samples_completed) },
		{ "transitions", 't', offsetof(struct ctl_stats, transitions) },
		{ "decisions", 't', offsetof(struct ctl_stats, decisions) },
		{ "last_decision_ns", 't', offsetof(struct ctl_stats, last_decision_ns) },
		{ "state", 'u', offsetof(struct ctl_stats, state) },
		{ "min_bits", 'y', offsetof(struct ctl_stats, min_bits) },
		{ "max_bits", 'y', offsetof(struct ctl_stats, max_bits) },
		{ "floor_bits", 'y', offsetof(struct ctl_stats, floor_bits) },
		{ "max_latency_ns", 't', offsetof(struct ctl_stats, max_latency_ns) },
		{ "holds", 'u', offsetof(struct ctl_stats, holds) },
		{ "adaptive_requests", 't', offsetof(struct ctl_stats, adaptive_requests) },
		{ "adaptive_samples", 't', offsetof(struct ctl_stats, adaptive_samples) },
		{ "adaptive_escalated", 't', offsetof(struct ctl_stats, adaptive_escalated) },
		{ "adaptive_bitops_per_request", 'd', offsetof(struct ctl_stats, adaptive_bitops) },
		{ "adaptive_ceiling_bitops_per_request", 'd',
		  offsetof(struct ctl_stats, adaptive_ceiling_bitops) },
		{ "cost_scale", 'd', offsetof(struct ctl_stats, cost_scale) },
	};
	const void *array;
	size_t size;
	int r;

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (strcmp(key, fields[i].key) == 0)
			return sd_bus_message_read_basic(m, fields[i].type,
							 (char *)st + fields[i].off);
	if (strcmp(key, "precision") == 0) {
		const char *v;

		r = sd_bus_message_read_basic(m, 's', &v);
		if (r >= 0)
			snprintf(st->precision, sizeof(st->precision), "%s", v);
		return r;
	}
	if (strcmp(key, "time_in_state_ns") == 0) {
		r = sd_bus_message_read_array(m, 't', &array, &size);
		if (r >= 0)
			memcpy(st->time_in_state_ns, array,
			       size < sizeof(st->time_in_state_ns) ? size
								   : sizeof(st->time_in_state_ns));
		return r;
	}
	if (strcmp(key, "transition_table") == 0) {
		uint32_t from, to, count;

		r = sd_bus_message_enter_container(m, 'a', "(uuu)");
		while (r >= 0 && (r = sd_bus_message_read(m, "(uuu)", &from, &to, &count)) > 0)
			if (st->n_trans < 169)
				st->trans[st->n_trans].from = from, st->trans[st->n_trans].to = to,
				st->trans[st->n_trans++].count = count;
		return r < 0 ? r : sd_bus_message_exit_container(m);
	}
	return sd_bus_message_skip(m, NULL); /* a field this bitmixctl does not know */
}

int ctl_get_stats(sd_bus *bus, const char *path, struct ctl_stats *st)
{
	sd_bus_message *reply = NULL;
	const char *key, *type;
	int r;

	memset(st, 0, sizeof(*st));
	r = get_property(bus, path, CTL_MODEL_IFACE, "Stats", "a{sv}", &reply);
	if (r >= 0)
		r = sd_bus_message_enter_container(reply, 'a', "{sv}");
	while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
		r = sd_bus_message_read(reply, "s", &key);
		if (r >= 0)
			r = sd_bus_message_peek_type(reply, NULL, &type);
		if (r >= 0)
			r = sd_bus_message_enter_container(reply, 'v', type);
		if (r >= 0)
			r = read_stats_entry(reply, key, st);
		if (r >= 0)
			r = sd_bus_message_exit_container(reply);
		if (r >= 0)
			r = sd_bus_message_exit_container(reply);
	}
	sd_bus_message_unref(reply);
	return r;
}
