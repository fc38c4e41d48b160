/* SPDX-License-Identifier: MIT */
/*
 * admin.h — the daemon's administration, once for every transport: status, models, bits,
 * governor and its tunables, QoS holds, limits, statistics, cost tables, loading, unloading and
 * reloading. The socket handlers (daemon/ipc/session_*.c) and the D-Bus methods and properties
 * (daemon/dbus/dbus_*.c) only turn their arguments into these calls and the results back into
 * their wire format; who may do what, the checks and the error texts live here.
 *
 * Every call takes the caller's identity (struct admin_caller, filled by the transport from the
 * credentials it trusts), checks access itself, and answers 0 with its result, or -errno with
 * ERR filled: the same code, fault and message whichever transport asked.
 */
#ifndef BITMIX_ADMIN_H
#define BITMIX_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon.h"

/* QoS holds one caller (a socket connection, a bus peer) may have at once, on all models. */
#define ADMIN_HOLDS_PER_CALLER 8

/* Who is asking. The transport fills it from the ids the kernel or the bus driver vouches for. */
struct admin_caller {
	uid_t uid; /* (uid_t)-1 when the transport could not learn it */
	gid_t gid;
	const gid_t *groups;
	size_t n_groups;
	pid_t pid;	     /* 0 when unknown */
	uint64_t owner;	     /* owns the caller's holds: a session id, or a bus peer's */
	bool may_administer; /* admin_is_admin() on the vouched ids (the transport may try twice) */
	const char *who;     /* for the log: "client 7 (pid 12, uid 0)", "D-Bus :1.42" */
};

/* What went wrong, in words a transport can map to its own error names. */
enum admin_fault {
	ADMIN_FAULT_NONE,
	ADMIN_FAULT_ACCESS,	 /* the caller may not */
	ADMIN_FAULT_ARGS,	 /* a value out of range or malformed */
	ADMIN_FAULT_NO_MODEL,	 /* no such model */
	ADMIN_FAULT_NO_GOVERNOR, /* no such governor */
	ADMIN_FAULT_NO_HOLD,	 /* no such hold */
	ADMIN_FAULT_BUSY,	 /* the governor decides the bits */
	ADMIN_FAULT_FALLBACK,	 /* the governor could not start; performance runs instead */
	ADMIN_FAULT_UNGOVERNED,	 /* the model has no policy */
	ADMIN_FAULT_LIMIT,	 /* a per-caller or per-daemon limit is reached */
	ADMIN_FAULT_EXISTS,	 /* a model of that name is served already */
	ADMIN_FAULT_LOAD,	 /* the model file could not be opened or loaded */
	ADMIN_FAULT_RELOAD,	 /* the new configuration was refused, the old one kept */
	ADMIN_FAULT_INTERNAL,	 /* out of memory and the like */
};

/* One error type for the whole core: CODE is -errno; MSG names the thing and what was expected. */
struct admin_error {
	int code;
	enum admin_fault fault;
	char msg[512];
};

/* The admin rule of the configuration (root, bitmixd's user, access.set_bits, dbus.admin_*). */
bool admin_is_admin(const struct bmx_daemon *d, uid_t uid, gid_t gid, const gid_t *groups,
		    size_t n_groups);

/* status: the daemon's set-up and counters. */
struct admin_status {
	char version[16];
	uint64_t uptime_ns;
	uint64_t requests_completed, requests_failed;
	uint64_t dropped_on_close;
	uint32_t clients, models, workers;
	char doorbell[16];
	char kernels[16];
};
int admin_status(struct bmx_daemon *d, const struct admin_caller *c, struct admin_status *out,
		 struct admin_error *err);

/* models: the store sorted by name, so that every listing reads the same. */
struct admin_models {
	size_t n;
	struct served_model *models[BMX_CONFIG_MAX_MODELS];
};
int admin_models(struct bmx_daemon *d, const struct admin_caller *c, struct admin_models *out,
		 struct admin_error *err);
/* The served model NAME, or NULL with ERR set (ADMIN_FAULT_NO_MODEL). */
struct served_model *admin_model(struct bmx_daemon *d, const char *name, struct admin_error *err);

/* bits: a model's operating point now. */
struct admin_bits {
	uint64_t generation;
	uint32_t layer_count;
	struct bmx_layer_bits bits[BMX_MAX_LAYERS];
};
int admin_bits_get(struct bmx_daemon *d, const struct admin_caller *c,
		   const struct served_model *model, struct admin_bits *out,
		   struct admin_error *err);
/* Set MODEL's (NULL: the caller named none that is served) bits; *GENERATION is theirs. */
int admin_bits_set(struct bmx_daemon *d, const struct admin_caller *c, struct served_model *model,
		   const struct bmx_layer_bits *bits, uint32_t n, uint64_t *generation,
		   struct admin_error *err);

/* governor: what runs, what could, why it fell back, the work cap. */
struct admin_governor {
	char name[BMX_CONFIG_GOV_NAME_MAX];
	char available[128];
	char fallback[200];
	uint32_t policies;
	struct gov_cap_stats cap;
};
int admin_governor_get(struct bmx_daemon *d, const struct admin_caller *c,
		       struct admin_governor *out, struct admin_error *err);
/* May C switch to governor NAME (access, existence)? 0 or -errno. */
int admin_governor_check(struct bmx_daemon *d, const struct admin_caller *c, const char *name,
			 struct admin_error *err);
int admin_governor_set(struct bmx_daemon *d, const struct admin_caller *c, const char *name,
		       struct admin_error *err);

/* tunables: the running governor's configuration block, and switching with new values. */
const struct bmx_governor_config *admin_tunables_get(struct bmx_daemon *d,
						     const struct admin_caller *c);
/* Switch to governor NAME with the tunables of CFG (parsed and checked by the caller's parser). */
int admin_tunables_set(struct bmx_daemon *d, const struct admin_caller *c, const char *name,
		       const struct bmx_governor_config *cfg, struct admin_error *err);

/* holds: QoS constraints anyone may place; each belongs to the caller that placed it. */
struct admin_hold {
	uint32_t id;
	enum gov_hold_kind kind;
	uint64_t value;
	uint64_t owner;
	char owner_name[64]; /* "client 7", ":1.42" */
};
/* "min-bits", "max-latency-ns"; and back (0 for neither). */
const char *admin_hold_kind_name(enum gov_hold_kind kind);
enum gov_hold_kind admin_hold_kind_parse(const char *name);
int admin_hold(struct bmx_daemon *d, const struct admin_caller *c, const char *model,
	       enum gov_hold_kind kind, uint64_t value, uint32_t *id, struct admin_error *err);
int admin_release(struct bmx_daemon *d, const struct admin_caller *c, const char *model,
		  uint32_t id, struct admin_error *err);
/* Up to MAX of MODEL's holds into OUT; *N is how many there are. */
int admin_holds(struct bmx_daemon *d, const struct admin_caller *c, const char *model,
		struct admin_hold *out, size_t max, size_t *n, struct admin_error *err);

/* limits: a model's bit range and pinned layers (an ungoverned model: 2..8, none pinned). */
int admin_limits_get(struct bmx_daemon *d, const struct admin_caller *c, const char *model,
		     struct bmx_governor_policy_config *out, struct admin_error *err);
int admin_limits_set(struct bmx_daemon *d, const struct admin_caller *c, const char *model,
		     const struct bmx_governor_policy_config *limits, struct admin_error *err);

/* stats: a model's policy and traffic, as cpufreq's stats plus the adaptive figures. */
struct admin_stats {
	uint64_t samples_completed;
	bool governed; /* the rest is only set for a governed model */
	double average_bits, cost_ns, rate;
	uint8_t min_bits, max_bits, floor_bits;
	uint64_t max_latency_ns;
	uint32_t holds;
	struct gov_stats gov;
	char precision[16];
	uint64_t adaptive_requests, adaptive_samples, adaptive_escalated;
	double adaptive_bitops, adaptive_ceiling_bitops, cost_scale;
};
int admin_stats(struct bmx_daemon *d, const struct admin_caller *c, const char *model,
		struct admin_stats *out, struct admin_error *err);

/* cost: a copy of a model's per-layer cost table and what it was measured on (admin_cost_free). */
struct admin_cost {
	char cpu[64], kernels[16], source[16];
	uint32_t layer_count, large_batch;
	uint32_t rows, measured[2];
	bool complete;
	double complete_s, batch;
	struct cost_table table;
	const struct served_model *model; /* its layers' names; valid while it is served */
	uint16_t pruned[BMX_MAX_LAYERS];
};
int admin_cost(struct bmx_daemon *d, const struct admin_caller *c, const char *model,
	       struct admin_cost *out, struct admin_error *err);
void admin_cost_free(struct admin_cost *cost);

/*
 * load/unload. Loading runs in a thread of the transport (it may take seconds); the core checks
 * first: may C load, is NAME a name, free (BEING_LOADED: the transport is loading one of that
 * name) and is there room. admin_load_open() opens FILE beneath a model folder (fd, or -errno).
 */
int admin_load_check(struct bmx_daemon *d, const struct admin_caller *c, const char *name,
		     bool being_loaded, struct admin_error *err);
int admin_load_open(struct bmx_daemon *d, const char *name, const char *file,
		    struct admin_error *err);
int admin_unload(struct bmx_daemon *d, const struct admin_caller *c, const char *name,
		 struct admin_error *err);

/* reload: the configuration files again (what `systemctl reload bitmixd` runs). */
int admin_reload(struct bmx_daemon *d, const struct admin_caller *c, struct admin_error *err);

#endif
