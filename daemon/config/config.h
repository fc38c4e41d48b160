/* SPDX-License-Identifier: MIT */
/*
 * config.h — bitmixd's YAML configuration (libyaml), parsed and checked in one step.
 *
 * A config is immutable once loaded; a reload parses a new one and swaps it in only if it is
 * valid, so a typo never costs the daemon its running state. Every error names
 * file:line:column, the key, and what was expected (the accepted keys or values).
 * The schema is documented in config/README.md.
 */
#ifndef BITMIX_CONFIG_H
#define BITMIX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BMX_CONFIG_NAME_MAX 48
#define BMX_CONFIG_MAX_MODELS 64
#define BMX_CONFIG_MAX_WORKERS 256
#define BMX_CONFIG_MAX_WEIGHTS 32

struct bmx_config_model {
	char name[BMX_CONFIG_NAME_MAX]; /* [A-Za-z0-9._-]+ */
	char *path;	 /* absolute: relative paths resolve against the config's folder */
	char where[256]; /* "file:line:column" of the path, for errors found later */
};

/* ipc.doorbell: how bitmixd and its clients wake each other. */
enum bmx_doorbell_choice {
	BMX_DOORBELL_AUTO = 0, /* io_uring futex operations if the kernel has them, else eventfds */
	BMX_DOORBELL_FUTEX,    /* futexes, and refuse to start without the io_uring futex ops */
	BMX_DOORBELL_EVENTFD,  /* one eventfd per direction per client (kernels before 6.7) */
};

/* The ipc: block (config_ipc.c) and the limits: block (config_limits.c). */
struct bmx_config_ipc {
	enum bmx_doorbell_choice doorbell;
	unsigned spin_us; /* the event loop polls the rings this long before it sleeps */
};

struct bmx_config_limits {
	unsigned in_flight;    /* per connection: requests admitted and not yet completed */
	unsigned regions;      /* per connection: registered memfd regions */
	uint64_t mapped_bytes; /* per connection: arena plus regions */
	unsigned connections_per_uid;
	unsigned handshake_timeout_ms; /* a connection that says nothing this long is dropped */
	struct {
		uid_t uid;
		unsigned weight; /* the uid's share of the workers, 1..1000 (default 1) */
	} weights[BMX_CONFIG_MAX_WEIGHTS];
	size_t n_weights;
};

#define BMX_CONFIG_GOV_NAME_MAX 24
#define BMX_CONFIG_MAX_TRIPS 8
#define BMX_CONFIG_MAX_PINNED 32

/* A passive trip point for step_wise: throttle from temp_c, release below temp_c - hysteresis_c. */
struct bmx_config_trip {
	double temp_c;
	double hysteresis_c;
};

/* governor.policies.MODEL: the limits of one model's policy (config/README.md). */
struct bmx_governor_policy_config {
	char model[BMX_CONFIG_NAME_MAX];
	char where[256];	     /* "file:line:column" of its entry, for errors found later */
	unsigned min_bits, max_bits; /* 2..8, every layer */
	unsigned precision; /* requests' default: 0 fixed, 1 cascade, 2 policy (docs/adaptive.md) */
	size_t n_pinned;
	struct {
		char layer[32]; /* a layer name from the .bmx, or its index */
		unsigned bits;
	} pinned[BMX_CONFIG_MAX_PINNED];
};

/* governor: which governor runs and every governor's tunables (names after cpufreq/thermal). */
struct bmx_governor_config {
	char name[BMX_CONFIG_GOV_NAME_MAX]; /* default power_allocator */
	struct {
		unsigned up_threshold;	       /* % load above which the cheapest point is taken */
		unsigned sampling_down_factor; /* periods to stay there before easing off */
	} ondemand;
	struct {
		unsigned up_threshold, down_threshold; /* % load */
		unsigned freq_step;		       /* % of the cost range per step */
		unsigned sampling_down_factor;
	} conservative;
	struct {
		struct bmx_config_trip trips[BMX_CONFIG_MAX_TRIPS]; /* ascending temperatures */
		size_t n_trips;
		unsigned states; /* cooling states: level = 1 - state / states */
	} step_wise;
	struct {
		double control_temp_c;	     /* the temperature the PID holds */
		double switch_on_temp_c;     /* below it: no limit, integral reset */
		double sustainable_power_w;  /* power dissipated at control_temp_c */
		double k_po, k_pu, k_i, k_d; /* 0: estimated as the kernel does */
		double integral_cutoff_c;    /* accumulate the error only when below it */
		double dynamic_power_w;	     /* power of one CPU busy with inference */
	} power_allocator;
	struct bmx_governor_policy_config policies[BMX_CONFIG_MAX_MODELS];
	size_t n_policies;
};
/* The `sensors:` block (daemon/config/config_sensors.c; sensors.h uses it). */
struct bmx_sensors_simulator_config {
	double ambient_c;	    /* the air around the package, degrees Celsius */
	double initial_c;	    /* the package at start; default: idle steady state */
	double resistance_c_per_w;  /* thermal resistance package -> ambient, K/W */
	double capacitance_j_per_c; /* heat capacity of the package and heatsink, J/K */
	double idle_power_w;	    /* what the package draws with no daemon work */
	double power_per_cpu_w;	    /* extra watts per CPU kept busy by the daemon's work */
};

struct bmx_sensors_config {
	int source;	      /* enum sensor_source_kind (sensors.h) */
	unsigned period_ms;   /* sampling period, 1..60000 */
	char sysfs_root[256]; /* "/sys", or a fake tree for tests */
	char proc_root[256];  /* "/proc", or a fake tree for tests */
	struct bmx_sensors_simulator_config simulator;
};

/* Fill SC with the defaults the YAML block starts from. */
void bmx_sensors_config_defaults(struct bmx_sensors_config *sc);

/* The `dbus:` block (daemon/config/config_dbus.c, docs/dbus.md): which bus, and who administers. */
enum bmx_dbus_bus {
	BMX_DBUS_AUTO = 0, /* the system bus when running as root and one exists, else none */
	BMX_DBUS_SYSTEM,
	BMX_DBUS_SESSION,
	BMX_DBUS_NONE,
	BMX_DBUS_ADDRESS, /* dbus.address: a private bus (tests) */
};

#define BMX_CONFIG_MAX_ADMINS 32

struct bmx_config_dbus {
	enum bmx_dbus_bus bus;
	char address[256];
	uid_t admin_uids[BMX_CONFIG_MAX_ADMINS];
	size_t n_admin_uids;
	gid_t admin_gids[BMX_CONFIG_MAX_ADMINS];
	size_t n_admin_gids;
};

struct bmx_config {
	char *source_path; /* the file this came from */
	char *socket_path; /* default /run/bitmix/bitmixd.sock */
	unsigned workers;  /* worker threads, 1..BMX_CONFIG_MAX_WORKERS; default: online CPUs */
	int log_level;	   /* syslog priority: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */
	struct bmx_config_model *models;
	size_t n_models;
	char **model_folders; /* D-Bus LoadModel by path: only beneath these (absolute) */
	size_t n_model_folders;
	uid_t *set_bits_uids; /* besides root, who may change bits */
	size_t n_set_bits_uids;
	gid_t *set_bits_gids;
	size_t n_set_bits_gids;
	struct bmx_governor_config governor;
	struct bmx_sensors_config sensors;
	unsigned kernels; /* enum bmx_kernels_path: 0 auto, 1 ref, 2 avx2, 3 avx512,
					   4 avxvnni */
	struct bmx_config_ipc ipc;
	struct bmx_config_limits limits;
	struct bmx_config_dbus dbus;
};

struct bmx_config_error {
	char msg[512];
};

/* Parse and validate PATH. Returns 0 and a new config in *out, or -errno with *err filled in. */
int bmx_config_load(const char *path, struct bmx_config **out, struct bmx_config_error *err);

/* NAME is a valid model name: 1..BMX_CONFIG_NAME_MAX-1 of A-Z a-z 0-9 . _ - */
bool bmx_config_name_ok(const char *name);

/* The same from a string, with NAME used as the file name in messages (tests, drop-ins). */
int bmx_config_load_string(const char *name, const char *text, struct bmx_config **out,
			   struct bmx_config_error *err);

void bmx_config_free(struct bmx_config *config);

/* The governor block's defaults (config_governor.c). */
void bmx_governor_config_defaults(struct bmx_governor_config *g);

/* The limits for MODEL: its governor.policies entry, or the defaults (2..8, nothing pinned). */
const struct bmx_governor_policy_config *bmx_config_policy(const struct bmx_config *config,
							   const char *model);

/*
 * May this caller change things (bits, governor, limits, models, reload)? Root and the daemon's
 * own user always; besides, access.set_bits.users/groups and dbus.admin_users/admin_groups, one
 * rule for the socket and D-Bus (config_dbus.c). GROUPS are the caller's supplementary groups.
 */
bool bmx_config_is_admin(const struct bmx_config *config, uid_t uid, gid_t gid, const gid_t *groups,
			 size_t n_groups);

/* limits.weights: UID's share of the workers in their deficit round-robin (1 when unlisted). */
unsigned bmx_config_weight(const struct bmx_config *config, uid_t uid);

/* The model entry called NAME, or NULL. */
const struct bmx_config_model *bmx_config_find_model(const struct bmx_config *config,
						     const char *name);

#endif
