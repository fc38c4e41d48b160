/* SPDX-License-Identifier: MIT */
/*
 * dbus_manager.c — the manager object, /org/bitmix/Daemon1, interface org.bitmix.Daemon1:
 * the daemon's version, governor, sensors and models as properties; switching the governor,
 * loading and unloading models at run time and reloading the configuration as methods; the
 * BitsChanged and TripCrossed signals. Properties and methods marshal to the admin core
 * (admin.h), which checks the caller (dbus_access.c says who it is). docs/dbus.md documents each
 * member.
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

/* The daemon's counters and set-up, as the socket's STATUS gives them (admin_status). */
static int prop_daemon(sd_bus *bus, const char *path, const char *iface, const char *prop,
		       sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct admin_caller c = { .uid = (uid_t)-1, .who = "D-Bus" };
	struct admin_error err = { 0 };
	struct admin_status st;

	(void)bus, (void)path, (void)iface, (void)error;
	admin_status(b->d, &c, &st, &err);
	if (strcmp(prop, "UptimeUSec") == 0)
		return sd_bus_message_append(reply, "t", st.uptime_ns / 1000);
	if (strcmp(prop, "Clients") == 0)
		return sd_bus_message_append(reply, "u", st.clients);
	if (strcmp(prop, "Workers") == 0)
		return sd_bus_message_append(reply, "u", st.workers);
	if (strcmp(prop, "RequestsCompleted") == 0)
		return sd_bus_message_append(reply, "t", st.requests_completed);
	if (strcmp(prop, "RequestsFailed") == 0)
		return sd_bus_message_append(reply, "t", st.requests_failed);
	if (strcmp(prop, "DroppedOnClose") == 0)
		return sd_bus_message_append(reply, "t", st.dropped_on_close);
	if (strcmp(prop, "Doorbell") == 0)
		return sd_bus_message_append(reply, "s", st.doorbell);
	return sd_bus_message_append(reply, "s", st.kernels);
}

static int prop_governor(sd_bus *bus, const char *path, const char *iface, const char *prop,
			 sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct admin_caller c = { .uid = (uid_t)-1, .who = "D-Bus" };
	struct admin_error err = { 0 };
	struct admin_governor g;

	(void)bus, (void)path, (void)iface, (void)error;
	admin_governor_get(b->d, &c, &g, &err);
	if (strcmp(prop, "Governor") == 0)
		return sd_bus_message_append(reply, "s", g.name);
	if (strcmp(prop, "GovernorFallback") == 0)
		return sd_bus_message_append(reply, "s", g.fallback);
	/* WorkCap (dddtb): the cap (0: none), busy and worker CPUs, microseconds capped, saturated. */
	return sd_bus_message_append(reply, "(dddtb)", g.cap.work_cap_cpus, g.cap.busy_cpus,
				     g.cap.capacity_cpus, g.cap.capped_ns / 1000,
				     (int)g.cap.saturated);
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

int dbus_append_models(sd_bus_message *reply, struct bmx_daemon *d)
{
	struct admin_caller c = { .uid = (uid_t)-1, .who = "D-Bus" };
	struct admin_error err = { 0 };
	struct admin_models models;
	int r;

	admin_models(d, &c, &models, &err);
	r = sd_bus_message_open_container(reply, 'a', "(so)");
	for (size_t i = 0; r >= 0 && i < models.n; i++) {
		_cleanup_(freep) char *path = dbus_model_path(models.models[i]->name);

		r = path ? sd_bus_message_append(reply, "(so)", models.models[i]->name, path)
			 : -ENOMEM;
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
	struct admin_error err = { 0 };
	struct admin_caller c;
	char who[96];
	int r = sd_bus_message_read(m, "s", name);

	if (r >= 0)
		r = dbus_caller(b, m, DBUS_CALLER_ADMIN, &c, who, sizeof(who));
	if (r < 0)
		return r;
	if (admin_governor_check(b->d, &c, *name, &err) < 0)
		return dbus_admin_error(error, &err);
	return 1;
}

static int method_set_governor(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct admin_error err = { 0 };
	struct admin_caller c;
	const char *name;
	char who[96];
	int r;

	r = sd_bus_message_read(m, "s", &name);
	if (r >= 0)
		r = dbus_caller(b, m, DBUS_CALLER_ADMIN, &c, who, sizeof(who));
	if (r < 0)
		return r;
	if (admin_governor_set(b->d, &c, name, &err) < 0)
		return dbus_admin_error(error, &err);
	return sd_bus_reply_method_return(m, NULL);
}

static int method_get_model(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct admin_error err = { 0 };
	const char *name;
	_cleanup_(freep) char *path = NULL;
	int r;

	r = sd_bus_message_read(m, "s", &name);
	if (r < 0)
		return r;
	if (!admin_model(b->d, name, &err))
		return dbus_admin_error(error, &err);
	path = dbus_model_path(name);
	return path ? sd_bus_reply_method_return(m, "o", path) : -ENOMEM;
}

static int method_unload_model(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct admin_error err = { 0 };
	struct admin_caller c;
	const char *name;
	char who[96];
	int r;

	r = sd_bus_message_read(m, "s", &name);
	if (r >= 0)
		r = dbus_caller(b, m, DBUS_CALLER_ADMIN, &c, who, sizeof(who));
	if (r < 0)
		return r;
	if (admin_unload(b->d, &c, name, &err) < 0)
		return dbus_admin_error(error, &err);
	return sd_bus_reply_method_return(m, NULL);
}

static int method_reload(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct admin_error err = { 0 };
	struct admin_caller c;
	char who[96];
	int r;

	r = dbus_caller(b, m, DBUS_CALLER_ADMIN, &c, who, sizeof(who));
	if (r < 0)
		return r;
	if (admin_reload(b->d, &c, &err) < 0)
		return dbus_admin_error(error, &err);
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
	SD_BUS_PROPERTY("DroppedOnClose", "t", prop_daemon, 0, 0),
	SD_BUS_PROPERTY("Workers", "u", prop_daemon, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Doorbell", "s", prop_daemon, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Kernels", "s", prop_daemon, 0, 0),
	SD_BUS_PROPERTY("Governor", "s", prop_governor, 0, PROP_CHANGES),
	SD_BUS_PROPERTY("GovernorFallback", "s", prop_governor, 0, PROP_CHANGES),
	SD_BUS_PROPERTY("GovernorTunables", "a{sv}", prop_tunables, 0, PROP_CHANGES),
	/* The work cap changes with the load: read it, no signal. */
	SD_BUS_PROPERTY("WorkCap", "(dddtb)", prop_governor, 0, 0),
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
