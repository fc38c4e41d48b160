/* SPDX-License-Identifier: MIT */
/*
 * bitmixctl_dbus_limits.c — `bitmixctl holds` and `bitmixctl limits` over D-Bus: a model
 * object's Holds and Limits properties and its SetLimits method, read into the structures the
 * socket fills and printed by bitmixctl_limits.c, so both transports print the same.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitmixctl_dbus.h"

static int failed(const char *what, const sd_bus_error *error, int r)
{
	fprintf(stderr, "bitmixctl: %s: %s\n", what,
		error && error->message ? error->message : strerror(-r));
	return 1;
}

/* The holds of the model at PATH, printed as NAME's. */
static int holds_of(sd_bus *bus, const char *name, const char *path, bool json, bool *first)
{
	sd_bus_message *reply = NULL;
	struct bitmix_hold_info h;
	const char *kind, *owner;
	int r;

	r = sd_bus_get_property(bus, CTL_NAME, path, CTL_MODEL_IFACE, "Holds", NULL, &reply,
				"a(usts)");
	if (r >= 0)
		r = sd_bus_message_enter_container(reply, 'a', "(usts)");
	while (r >= 0 &&
	       (r = sd_bus_message_read(reply, "(usts)", &h.id, &kind, &h.value, &owner)) > 0) {
		h.kind = strcmp(kind, "min-bits") == 0 ? 1 : 2;
		snprintf(h.owner, sizeof(h.owner), "%s", owner);
		ctl_hold_print(name, &h, json, first);
	}
	sd_bus_message_unref(reply);
	return r;
}

int ctl_holds_dbus(sd_bus *bus, int argc, char **argv, bool json)
{
	char *names[CTL_MAX_MODELS], *paths[CTL_MAX_MODELS];
	bool first = true;
	int n, r = 0, shown = 0;

	if (argc > 1) {
		fputs("usage: bitmixctl holds [MODEL]\n", stderr);
		return 2;
	}
	n = ctl_list_models(bus, names, paths, CTL_MAX_MODELS);
	if (n < 0)
		return 1;
	if (json)
		printf("{\"holds\":[");
	for (int i = 0; i < n && r >= 0; i++)
		if (argc == 0 || strcmp(argv[0], names[i]) == 0) {
			r = holds_of(bus, names[i], paths[i], json, &first);
			shown++;
		}
	if (json)
		printf("]}\n");
	ctl_free_models(names, paths, n);
	if (argc == 1 && !shown) {
		fprintf(stderr, "bitmixctl: no model called \"%s\"\n", argv[0]);
		return 1;
	}
	return r < 0 ? 1 : 0;
}

static int read_limits(sd_bus *bus, const char *path, struct bitmix_limits *l, sd_bus_error *error)
{
	sd_bus_message *reply = NULL;
	const char *layer;
	uint8_t bits;
	int r;

	memset(l, 0, sizeof(*l));
	r = sd_bus_get_property(bus, CTL_NAME, path, CTL_MODEL_IFACE, "Limits", error, &reply,
				"(yya(sy))");
	if (r >= 0)
		r = sd_bus_message_enter_container(reply, 'r', "yya(sy)");
	if (r >= 0)
		r = sd_bus_message_read(reply, "yy", &l->min_bits, &l->max_bits);
	if (r >= 0)
		r = sd_bus_message_enter_container(reply, 'a', "(sy)");
	while (r >= 0 && (r = sd_bus_message_read(reply, "(sy)", &layer, &bits)) > 0)
		if (l->n_pinned < sizeof(l->pinned) / sizeof(l->pinned[0])) {
			snprintf(l->pinned[l->n_pinned].layer, sizeof(l->pinned[0].layer), "%s",
				 layer);
			l->pinned[l->n_pinned++].bits = bits;
		}
	sd_bus_message_unref(reply);
	return r;
}

static int set_limits(sd_bus *bus, const char *path, const struct bitmix_limits *l,
		      sd_bus_error *error)
{
	sd_bus_message *m = NULL;
	int r;

	r = sd_bus_message_new_method_call(bus, &m, CTL_NAME, path, CTL_MODEL_IFACE, "SetLimits");
	if (r >= 0)
		r = sd_bus_message_append(m, "yy", l->min_bits, l->max_bits);
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'a', "(sy)");
	for (unsigned i = 0; r >= 0 && i < l->n_pinned; i++)
		r = sd_bus_message_append(m, "(sy)", l->pinned[i].layer, l->pinned[i].bits);
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	if (r >= 0)
		r = sd_bus_call(bus, m, 0, error, NULL);
	sd_bus_message_unref(m);
	return r;
}

/* The model's object path from GetModel: its error says what the socket's would. */
static int model_path(sd_bus *bus, const char *name, char **path, sd_bus_error *error)
{
	sd_bus_message *reply = NULL;
	const char *p;
	int r;

	r = sd_bus_call_method(bus, CTL_NAME, CTL_PATH, CTL_IFACE, "GetModel", error, &reply, "s",
			       name);
	if (r >= 0)
		r = sd_bus_message_read(reply, "o", &p);
	if (r >= 0)
		r = (*path = strdup(p)) ? 0 : -ENOMEM;
	sd_bus_message_unref(reply);
	return r;
}

int ctl_limits_dbus(sd_bus *bus, int argc, char **argv, bool json)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	char *path = NULL;
	struct bitmix_limits l;
	int r;

	if (argc < 1 || argc == 2 || (argc > 1 && ctl_limits_parse(argc - 1, argv + 1, &l) < 0)) {
		fputs("usage: bitmixctl limits MODEL [MIN MAX [LAYER=BITS...]]\n", stderr);
		return 2;
	}
	r = model_path(bus, argv[0], &path, &error);
	if (r >= 0 && argc > 1)
		r = set_limits(bus, path, &l, &error);
	if (r >= 0)
		r = read_limits(bus, path, &l, &error);
	if (r >= 0)
		ctl_limits_print(argv[0], &l, json);
	else
		failed("limits", &error, r);
	sd_bus_error_free(&error);
	free(path);
	return r < 0 ? 1 : 0;
}

/* hold over D-Bus: Hold, then Release when the time is up (the bus connection stays open, so
 * the daemon also drops the hold if bitmixctl dies: its peer leaves the bus). */
int ctl_hold_dbus(sd_bus *bus, int argc, char **argv)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	char *path = NULL;
	unsigned kind;
	uint64_t value;
	double seconds;
	uint32_t id = 0;
	int r;

	if (ctl_hold_parse(argc, argv, &kind, &value, &seconds) < 0) {
		fputs("usage: bitmixctl hold MODEL min-bits N|max-latency-us N [SECONDS]\n",
		      stderr);
		return 2;
	}
	r = model_path(bus, argv[0], &path, &error);
	if (r >= 0)
		r = sd_bus_call_method(bus, CTL_NAME, path, CTL_MODEL_IFACE, "Hold", &error, &reply,
				       "st",
				       kind == BITMIX_HOLD_MIN_BITS ? "min-bits" : "max-latency-ns",
				       value);
	if (r >= 0)
		r = sd_bus_message_read(reply, "u", &id);
	sd_bus_message_unref(reply);
	if (r < 0) {
		failed("hold", &error, r);
		goto out;
	}
	ctl_hold_wait(id, argv, seconds);
	r = sd_bus_call_method(bus, CTL_NAME, path, CTL_MODEL_IFACE, "Release", &error, NULL, "u",
			       id);
	if (r < 0)
		failed("release", &error, r);
	else
		printf("released hold %u\n", id);
out:
	sd_bus_error_free(&error);
	free(path);
	return r < 0 ? 1 : 0;
}
