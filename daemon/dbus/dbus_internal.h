/* SPDX-License-Identifier: MIT */
/*
 * dbus_internal.h — the D-Bus API's own state, shared by dbus.c (the bus, its place in the
 * io_uring loop, change notification), dbus_manager.c (org.bitmix.Daemon1), dbus_model.c (one
 * org.bitmix.Model1 object per model) and dbus_access.c (who may change things; holds owned by
 * bus peers). The rest of the daemon sees only the dbus_* calls in daemon.h. docs/dbus.md is the
 * interface's documentation.
 */
#ifndef BITMIX_DBUS_INTERNAL_H
#define BITMIX_DBUS_INTERNAL_H

#include <stddef.h>
#include <stdlib.h>
#include <systemd/sd-bus.h>

#include "admin.h"
#include "daemon.h"

/* A model load's thread is done, or its 1 s tick (dbus_load.c). */
loop_fn dbus_on_load;

#define DBUS_NAME "org.bitmix.Daemon1"
#define DBUS_PATH "/org/bitmix/Daemon1"
#define DBUS_MODEL_PREFIX "/org/bitmix/Daemon1/model"
#define DBUS_IFACE "org.bitmix.Daemon1"
#define DBUS_MODEL_IFACE "org.bitmix.Model1"

/* Errors the API returns besides the standard org.freedesktop.DBus.Error.* ones. */
#define DBUS_ERROR_NO_SUCH_MODEL "org.bitmix.Daemon1.Error.NoSuchModel"
#define DBUS_ERROR_NO_SUCH_GOVERNOR "org.bitmix.Daemon1.Error.NoSuchGovernor"
#define DBUS_ERROR_GOVERNOR_BUSY "org.bitmix.Daemon1.Error.GovernorBusy"
#define DBUS_ERROR_GOVERNOR_FALLBACK "org.bitmix.Daemon1.Error.GovernorFallback"
#define DBUS_ERROR_LOAD_FAILED "org.bitmix.Daemon1.Error.LoadFailed"
#define DBUS_ERROR_RELOAD_FAILED "org.bitmix.Daemon1.Error.ReloadFailed"
#define DBUS_ERROR_NO_SUCH_HOLD "org.bitmix.Daemon1.Error.NoSuchHold"

/* Hold owners: sessions use their id (< 2^32), bus peers this base plus a counter. */
#define DBUS_OWNER_BASE (1ull << 32)

/* A bus peer that holds QoS holds: they go when it leaves the bus (sd_bus_track). */
struct dbus_peer {
	struct dbus_peer *next;
	struct bmx_dbus *dbus;
	char *name;	/* its unique name, ":1.42" */
	uint64_t owner; /* the holds' owner id */
	sd_bus_track *track;
};

/* What was last announced for one model, to emit PropertiesChanged only on change. */
struct dbus_model_seen {
	char name[BITMIX_NAME_MAX];
	uint64_t generation;
	uint64_t limits_sig, holds_sig;
};

struct bmx_dbus {
	struct bmx_daemon *d;
	sd_bus *bus;
	char where[400]; /* "system bus", "unix:path=...", or why there is none */

	/* The bus in the io_uring loop: one poll on its fd, one absolute timeout. */
	struct loop_op io_op, timeout_op;
	bool io_armed, io_cancelling;
	uint32_t io_events;
	bool timeout_armed, timeout_cancelling;
	uint64_t timeout_usec; /* CLOCK_MONOTONIC, of the armed timeout */
	struct __kernel_timespec timeout_ts;
	bool need_process;

	/* Announced state (dbus.c: dbus_sync). */
	bool announced;
	char governor[BMX_CONFIG_GOV_NAME_MAX];
	char fallback[200];
	const char *source; /* sensors_source_name(): a static string */
	unsigned char tunables[offsetof(struct bmx_governor_config, policies)];
	long temp_dc, power_cw; /* the announced 0.1 C and 0.01 W steps */
	uint32_t have;
	uint64_t models_sig;
	struct dbus_model_seen seen[BMX_CONFIG_MAX_MODELS];
	size_t n_seen;

	struct dbus_peer *peers;
	uint64_t next_owner;
	/* Models being loaded in threads (dbus_load.c). */
	struct model_load *loads;
	int load_efd; /* a thread is done */
	struct loop_op load_op, load_tick_op;
	bool load_armed, load_tick_armed;
	struct __kernel_timespec load_tick;
};

/* dbus_manager.c */
int dbus_manager_register(struct bmx_dbus *b);
/* Models a(so), the sorted store. */
int dbus_append_models(sd_bus_message *reply, struct bmx_daemon *d);

/* dbus_load.c: LoadModel (a path beneath model_folders) and LoadModelFd, loaded in threads */
int dbus_method_load_model(sd_bus_message *m, void *userdata, sd_bus_error *error);
int dbus_method_load_model_fd(sd_bus_message *m, void *userdata, sd_bus_error *error);
void dbus_loads_pass(struct bmx_dbus *b);
void dbus_loads_arm(struct bmx_dbus *b);
void dbus_loads_stop(struct bmx_dbus *b);
void dbus_loads_free(struct bmx_dbus *b);

/* dbus_tunables.c */
int dbus_method_set_governor_tunables(sd_bus_message *m, void *userdata, sd_bus_error *error);
int dbus_append_tunables(sd_bus_message *reply, const struct gov_core *core);
/* TunableInfo: every governor's declared tunables (dbus_tunables.c). */
int dbus_append_tunable_info(sd_bus_message *reply);

/* dbus_model.c */
int dbus_model_register(struct bmx_dbus *b);
/* The object path of model NAME (free it), or NULL on no memory. */
char *dbus_model_path(const char *name);
int dbus_append_bits(sd_bus_message *m, const struct served_model *model, uint64_t *generation);
/* Signatures of a model's limits and holds, to notice their change. */
uint64_t dbus_model_limits_sig(const struct served_model *m);
uint64_t dbus_model_holds_sig(const struct served_model *m);

/* dbus_access.c */
/*
 * The sender of M as an admin caller (admin.h). With DBUS_CALLER_ADMIN the bus driver is asked
 * for its credentials, whether it may administer; with DBUS_CALLER_OWNER it gets a hold owner
 * (tracked: its holds go when it leaves the bus). WHO (for the log) must outlive C.
 */
#define DBUS_CALLER_ADMIN 1u
#define DBUS_CALLER_OWNER 2u
int dbus_caller(struct bmx_dbus *b, sd_bus_message *m, unsigned what, struct admin_caller *c,
		char *who, size_t size);
/* The core's error ERR as the D-Bus error of its fault. */
int dbus_admin_error(sd_bus_error *error, const struct admin_error *err);
/* dbus_manager.c: read a governor's name; > 0 if the caller may switch to it, else the reply. */
int dbus_read_governor(struct bmx_dbus *b, sd_bus_message *m, const char **name,
		       sd_bus_error *error);
/* The hold owner for the sender of M (created, and tracked, on first use). */
int dbus_peer_owner(struct bmx_dbus *b, sd_bus_message *m, uint64_t *owner);
/* The holds' owner as text: ":1.42" for a bus peer, "client 7" for a socket session. */
void dbus_owner_name(const struct bmx_dbus *b, uint64_t owner, char *buf, size_t size);

/* Open an a{sv} entry: KEY, then a variant of TYPE for the caller to fill; it closes both. */
int dbus_open_entry(sd_bus_message *m, const char *key, const char *type);
void dbus_peers_free(struct bmx_dbus *b);

/* dbus.c */
void dbus_sync(struct bmx_dbus *b);
/*
 * Temperature and Power as published: in steps of 0.1 C and 0.01 W, so that a sensor's noise
 * below that does not become a signal on every reading.
 */
long dbus_temp_dc(const struct sensor_reading *r);
long dbus_power_cw(const struct sensor_reading *r);

#endif
