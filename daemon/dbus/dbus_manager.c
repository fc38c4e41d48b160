/* SPDX-License-Identifier: MIT */
/*
 * dbus_manager.c — the manager object, /org/bitmix/Daemon1, interface org.bitmix.Daemon1:
 * the daemon's version, governor, sensors and models as properties; switching the governor,
 * loading and unloading models at run time and reloading the configuration as methods; the
 * BitsChanged and TripCrossed signals. Every method that changes something checks the caller
 * first (dbus_access.c). docs/dbus.md documents each member.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitmix-config.h"
#include "dbus_internal.h"
#include "log.h"

static int prop_version(sd_bus *bus, const char *path, const char *iface, const char *prop,
			sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	(void)bus, (void)path, (void)iface, (void)prop, (void)userdata, (void)error;
	return sd_bus_message_append(reply, "s", BITMIX_VERSION);
}

/* The daemon's counters and set-up, as the socket's STATUS gives them. */
static int prop_daemon(sd_bus *bus, const char *path, const char *iface, const char *prop,
		       sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct bmx_daemon *d = b->d;

	(void)bus, (void)path, (void)iface, (void)error;
	if (strcmp(prop, "UptimeUSec") == 0)
		return sd_bus_message_append(reply, "t", (now_ns() - d->start_ns) / 1000);
	if (strcmp(prop, "Clients") == 0)
		return sd_bus_message_append(reply, "u", d->n_sessions);
	if (strcmp(prop, "Workers") == 0)
		return sd_bus_message_append(reply, "u", d->pool ? worker_pool_size(d->pool) : 0);
	if (strcmp(prop, "RequestsCompleted") == 0)
		return sd_bus_message_append(
			reply, "t", __atomic_load_n(&d->requests_completed, __ATOMIC_RELAXED));
	if (strcmp(prop, "RequestsFailed") == 0)
		return sd_bus_message_append(
			reply, "t", __atomic_load_n(&d->requests_failed, __ATOMIC_RELAXED));
	if (strcmp(prop, "Doorbell") == 0)
		return sd_bus_message_append(reply, "s", doorbell_name(d->doorbell));
	return sd_bus_message_append(
		reply, "s",
		bmx_kernels_name(bmx_kernels_resolve((enum bmx_kernels_path)d->config->kernels)));
}

static int prop_governor(sd_bus *bus, const char *path, const char *iface, const char *prop,
			 sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct gov_core *g = b->d->governor;

	(void)bus, (void)path, (void)iface, (void)error;
	if (strcmp(prop, "Governor") == 0)
		return sd_bus_message_append(reply, "s", g ? gov_core_governor(g) : "none");
	return sd_bus_message_append(reply, "s", g ? gov_core_fallback_reason(g) : "");
}

/* WorkCap (dddtb): the cap (0: none), busy and worker CPUs, microseconds capped, saturated. */
static int prop_work_cap(sd_bus *bus, const char *path, const char *iface, const char *prop,
			 sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct gov_cap_stats cap = { 0 };

	(void)bus, (void)path, (void)iface, (void)prop, (void)error;
	if (b->d->governor)
		gov_core_cap_stats(b->d->governor, now_ns(), &cap);
	return sd_bus_message_append(reply, "(dddtb)", cap.work_cap_cpus, cap.busy_cpus,
				     cap.capacity_cpus, cap.capped_ns / 1000, (int)cap.saturated);
}

static int prop_tunables(sd_bus *bus, const char *path, const char *iface, const char *prop,
			 sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;

	(void)bus, (void)path, (void)iface, (void)prop, (void)error;
	return dbus_append_tunables(reply, b->d->governor);
}

static int prop_tunable_info(sd_bus *bus, const char *path, const char *iface, const char *prop,
			     sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	(void)bus, (void)path, (void)iface, (void)prop, (void)userdata, (void)error;
	return dbus_append_tunable_info(reply);
}

static int prop_available(sd_bus *bus, const char *path, const char *iface, const char *prop,
			  sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	_cleanup_(freep) char *copy = strdup(gov_available());
	char *save = NULL;
	int r;

	(void)bus, (void)path, (void)iface, (void)prop, (void)userdata, (void)error;
	if (!copy)
		return -ENOMEM;
	r = sd_bus_message_open_container(reply, 'a', "s");
	for (char *t = strtok_r(copy, " ", &save); r >= 0 && t; t = strtok_r(NULL, " ", &save))
		r = sd_bus_message_append(reply, "s", t);
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int prop_sensors(sd_bus *bus, const char *path, const char *iface, const char *prop,
			sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	const struct sensor_reading *rd = &b->d->reading;

	(void)bus, (void)path, (void)iface, (void)error;
	if (strcmp(prop, "SensorSource") == 0)
		return sd_bus_message_append(
			reply, "s",
			b->d->sensors ? sensors_source_name(sensors_source(b->d->sensors))
				      : "none");
	/* NaN: no source gives this reading (D-Bus doubles carry it; bitmixctl shows "n/a"). */
	if (strcmp(prop, "Temperature") == 0)
		return sd_bus_message_append(
			reply, "d", rd->have & SENSOR_HAVE_TEMP ? dbus_temp_dc(rd) / 10.0 : NAN);
	return sd_bus_message_append(
		reply, "d", rd->have & SENSOR_HAVE_POWER ? dbus_power_cw(rd) / 100.0 : NAN);
}

/* Sorted by name so that the property reads the same whatever the store's order. */
static int by_name(const void *a, const void *b)
{
	return strcmp((*(struct served_model *const *)a)->name,
		      (*(struct served_model *const *)b)->name);
}

int dbus_append_models(sd_bus_message *reply, const struct bmx_daemon *d)
{
	struct served_model *sorted[BMX_CONFIG_MAX_MODELS];
	size_t n = d->store.count < BMX_CONFIG_MAX_MODELS ? d->store.count : BMX_CONFIG_MAX_MODELS;
	int r;

	memcpy(sorted, d->store.models, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), by_name);
	r = sd_bus_message_open_container(reply, 'a', "(so)");
	for (size_t i = 0; r >= 0 && i < n; i++) {
		_cleanup_(freep) char *path = dbus_model_path(sorted[i]->name);

		r = path ? sd_bus_message_append(reply, "(so)", sorted[i]->name, path) : -ENOMEM;
	}
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int prop_models(sd_bus *bus, const char *path, const char *iface, const char *prop,
		       sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;

	(void)bus, (void)path, (void)iface, (void)prop, (void)error;
	return dbus_append_models(reply, b->d);
}

/*
 * What SetGovernor and SetGovernorWithTunables both start with: read the governor's name, check
 * that the caller may change it and that it exists. > 0 to go on with *NAME; else the reply.
 */
int dbus_read_governor(struct bmx_dbus *b, sd_bus_message *m, const char **name,
		       sd_bus_error *error)
{
	int r = sd_bus_message_read(m, "s", name);

	if (r < 0)
		return r;
	r = dbus_check_admin(b, m, "change the governor", error);
	if (r <= 0)
		return r;
	if (!gov_find(*name))
		return sd_bus_error_setf(error, DBUS_ERROR_NO_SUCH_GOVERNOR,
					 "no governor \"%s\" (available: %s)", *name,
					 gov_available());
	return 1;
}

static int method_set_governor(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct bmx_daemon *d = b->d;
	const char *name, *sender = sd_bus_message_get_sender(m);
	char why[256];
	int r;

	r = dbus_read_governor(b, m, &name, error);
	if (r <= 0)
		return r;
	if (gov_core_set_governor(d->governor, name, now_ns(), why, sizeof(why)) < 0) {
		log_warning("governor: %s", why);
		return sd_bus_error_setf(error, DBUS_ERROR_GOVERNOR_FALLBACK, "%s", why);
	}
	log_info("governor: %s, set over D-Bus by %s", name, sender ? sender : "?");
	return sd_bus_reply_method_return(m, NULL);
}

static int method_get_model(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	const char *name;
	_cleanup_(freep) char *path = NULL;
	int r;

	r = sd_bus_message_read(m, "s", &name);
	if (r < 0)
		return r;
	if (!model_store_find(&b->d->store, name))
		return sd_bus_error_setf(error, DBUS_ERROR_NO_SUCH_MODEL, "no model called \"%s\"",
					 name);
	path = dbus_model_path(name);
	return path ? sd_bus_reply_method_return(m, "o", path) : -ENOMEM;
}

static int method_unload_model(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct bmx_daemon *d = b->d;
	struct model_store *store = &d->store;
	struct served_model *model;
	const char *name;
	int r;

	r = sd_bus_message_read(m, "s", &name);
	if (r < 0)
		return r;
	r = dbus_check_admin(b, m, "unload models", error);
	if (r <= 0)
		return r;
	model = model_store_find(store, name);
	if (!model)
		return sd_bus_error_setf(error, DBUS_ERROR_NO_SUCH_MODEL, "no model called \"%s\"",
					 name);
	/* Requests in flight hold their own references and finish; new ones get -ENODEV. */
	model->retired = true;
	daemon_governor_remove_model(d, model);
	model_fdstore_drop(model); /* a restart must not bring it back from the store either */
	model_store_remove(store, model);
	log_info("model %s: unloaded over D-Bus", name);
	return sd_bus_reply_method_return(m, NULL);
}

static int method_reload(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct bmx_config_error err = { "" };
	int r;

	r = dbus_check_admin(b, m, "reload the configuration", error);
	if (r <= 0)
		return r;
	r = daemon_reload(b->d, &err);
	if (r < 0)
		return sd_bus_error_setf(error, DBUS_ERROR_RELOAD_FAILED, "%s",
					 err.msg[0] ? err.msg : strerror(-r));
	return sd_bus_reply_method_return(m, NULL);
}

#define PROP_CHANGES SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE

static const sd_bus_vtable manager_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("Version", "s", prop_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	/* Counters change all the time: read them, no signal. */
	SD_BUS_PROPERTY("UptimeUSec", "t", prop_daemon, 0, 0),
	SD_BUS_PROPERTY("Clients", "u", prop_daemon, 0, 0),
	SD_BUS_PROPERTY("RequestsCompleted", "t", prop_daemon, 0, 0),
	SD_BUS_PROPERTY("RequestsFailed", "t", prop_daemon, 0, 0),
	SD_BUS_PROPERTY("Workers", "u", prop_daemon, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Doorbell", "s", prop_daemon, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Kernels", "s", prop_daemon, 0, 0),
	SD_BUS_PROPERTY("Governor", "s", prop_governor, 0, PROP_CHANGES),
	SD_BUS_PROPERTY("GovernorFallback", "s", prop_governor, 0, PROP_CHANGES),
	SD_BUS_PROPERTY("GovernorTunables", "a{sv}", prop_tunables, 0, PROP_CHANGES),
	/* The work cap changes with the load: read it, no signal. */
	SD_BUS_PROPERTY("WorkCap", "(dddtb)", prop_work_cap, 0, 0),
	SD_BUS_PROPERTY("AvailableGovernors", "as", prop_available, 0,
			SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("TunableInfo", "a(sssddsss)", prop_tunable_info, 0,
			SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("SensorSource", "s", prop_sensors, 0, PROP_CHANGES),
	SD_BUS_PROPERTY("Temperature", "d", prop_sensors, 0, PROP_CHANGES),
	SD_BUS_PROPERTY("Power", "d", prop_sensors, 0, PROP_CHANGES),
	SD_BUS_PROPERTY("Models", "a(so)", prop_models, 0, PROP_CHANGES),
	SD_BUS_METHOD_WITH_ARGS("SetGovernor", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT,
				method_set_governor, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("SetGovernorWithTunables",
				SD_BUS_ARGS("s", name, "a{sv}", tunables), SD_BUS_NO_RESULT,
				dbus_method_set_governor_tunables, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("GetModel", SD_BUS_ARGS("s", name), SD_BUS_RESULT("o", path),
				method_get_model, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("LoadModel", SD_BUS_ARGS("s", name, "s", path),
				SD_BUS_RESULT("o", object), dbus_method_load_model,
				SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("LoadModelFd", SD_BUS_ARGS("s", name, "h", file),
				SD_BUS_RESULT("o", object), dbus_method_load_model_fd,
				SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("UnloadModel", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT,
				method_unload_model, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("Reload", "", "", method_reload, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_SIGNAL_WITH_ARGS("BitsChanged",
				SD_BUS_ARGS("s", model, "t", generation, "a(yy)", bits), 0),
	SD_BUS_SIGNAL_WITH_ARGS("TripCrossed",
				SD_BUS_ARGS("s", trip, "d", temperature, "s", direction), 0),
	SD_BUS_VTABLE_END,
};

int dbus_manager_register(struct bmx_dbus *b)
{
	int r = sd_bus_add_object_vtable(b->bus, NULL, DBUS_PATH, DBUS_IFACE, manager_vtable, b);

	if (r < 0)
		return r;
	return sd_bus_add_object_manager(b->bus, NULL, DBUS_PATH);
}
