/* SPDX-License-Identifier: MIT */
/*
 * governor.h — the governor framework: readings in, per-layer bit-widths out.
 *
 * Modelled on cpufreq. The core owns one policy per served model (its limits, its QoS holds,
 * its statistics, its cost and sensitivity tables) and the one active governor; a governor
 * (daemon/governor/governors/governor_*.c) only decides, by giving each policy a target: a level between
 * the cheapest and the richest operating point (performance = 1, powersave = 0), a cost budget
 * (power_allocator), or explicit bits (userspace). The core turns the target into bits with the
 * QBitOpt-style allocator (bit_allocator.h), within the limits and holds, and hands changed bits
 * to the actuator (a callback: bitmixd publishes them in the model's control page).
 *
 * Costs are in nanoseconds of engine time per sample, from the daemon's per-layer cost table
 * (cost_table.h: measured node by node on the kernel path in use, completed in the background,
 * handed over with gov_policy_set_layer_costs), or from uniform timings (gov_model_desc's
 * uniform_ns); bit-widths that save nothing measurable are pruned (GOV_MIN_SAVING). BitOps
 * is only the explicit fallback where nothing was measured. Everything here runs on one
 * thread (the daemon's event loop) and takes time as an argument, so tests and the closed-loop
 * benchmark drive it with simulated time.
 */
#ifndef BITMIX_GOVERNOR_H
#define BITMIX_GOVERNOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bit_allocator.h"
#include "bmx_engine.h"
#include "config.h"
#include "sensors.h"

#define GOV_STATES 13 /* statistics states: average bits 2.0, 2.5, ... 8.0 */
#define GOV_MAX_HOLDS 64

struct gov_core;
struct gov_policy;

/*
 * A governor's tunable, declared once in the governor's file (after cpufreq's gov_attr_rw()):
 * the YAML block governor.<governor>.<name> (config_governor.c), the D-Bus GovernorTunables
 * property and SetGovernorWithTunables (dbus_tunables.c) and the docs test all read this table,
 * so a tunable's name, range, default and meaning are written in one place.
 */
enum gov_tunable_type {
	GOV_TUNABLE_UNSIGNED, /* unsigned, a whole number in min..max */
	GOV_TUNABLE_DOUBLE,   /* double in min..max */
	GOV_TUNABLE_BOOL,     /* bool: true or false */
	GOV_TUNABLE_TRIPS,    /* struct bmx_config_trip[BMX_CONFIG_MAX_TRIPS], ascending by temp,
				 1..BMX_CONFIG_MAX_TRIPS of them, their count at count_offset */
};

struct gov_tunable {
	const char *name; /* the key in governor.<governor> */
	enum gov_tunable_type type;
	double min, max, def; /* range and default (trips: of each temp; default in def_trips) */
	const char *unit;     /* "%", "C", "W", "periods" ... ("" for none) */
	const char *doc;      /* one line, for bitmixctl and the docs */
	size_t offset;	      /* where the value lives in struct bmx_governor_config */
	size_t count_offset;  /* GOV_TUNABLE_TRIPS: the size_t count of trips */
	const struct bmx_config_trip *def_trips; /* GOV_TUNABLE_TRIPS: the default list */
	size_t n_def_trips;
};

/* Declare GOV's tunable FIELD of struct bmx_governor_config's GOV sub-struct. */
#define GOV_TUNABLE(gov, field, type_, lo, hi, dflt, unit_, doc_)                         \
	{                                                                                 \
		.name = #field, .type = (type_), .min = (lo), .max = (hi), .def = (dflt), \
		.unit = (unit_), .doc = (doc_),                                           \
		.offset = offsetof(struct bmx_governor_config, gov.field),                \
	}
#define gov_attr_unsigned(gov, field, lo, hi, dflt, unit, doc) \
	GOV_TUNABLE(gov, field, GOV_TUNABLE_UNSIGNED, lo, hi, dflt, unit, doc)
#define gov_attr_double(gov, field, lo, hi, dflt, unit, doc) \
	GOV_TUNABLE(gov, field, GOV_TUNABLE_DOUBLE, lo, hi, dflt, unit, doc)
#define gov_attr_bool(gov, field, dflt, doc) \
	GOV_TUNABLE(gov, field, GOV_TUNABLE_BOOL, 0, 1, dflt, "", doc)

/*
 * A governor. update() runs once per sensor reading for the whole machine (the machine is one
 * thermal zone; the models are its cooling devices) and sets every policy's target with
 * gov_policy_set_level/_budget. start() may refuse (-ENODATA: it lacks a reading it needs);
 * the core then falls back to performance and says why.
 *
 * A governor with tunables lists them in TUNABLES; checks between them that a range cannot say
 * (switch_on_temp_c <= control_temp_c) go in CHECK, which fills WHY ("down_threshold 30 must be
 * below up_threshold 20") and returns -EINVAL; the configuration then names the block.
 */
struct governor_ops {
	const char *name;
	int (*init)(struct gov_core *core);  /* optional: governor-wide state */
	void (*exit)(struct gov_core *core); /* optional */
	int (*start)(struct gov_core *core, struct gov_policy *p); /* optional */
	void (*stop)(struct gov_core *core, struct gov_policy *p); /* optional */
	void (*limits)(struct gov_core *core,
		       struct gov_policy *p); /* optional: limits/holds changed */
	void (*update)(struct gov_core *core, const struct sensor_reading *r);
	const struct gov_tunable *tunables; /* optional: [n_tunables] */
	size_t n_tunables;
	int (*check)(const struct bmx_governor_config *g, char *why, size_t why_len); /* optional */
};

#define GOV_TUNABLES(table) .tunables = (table), .n_tunables = sizeof(table) / sizeof((table)[0])

/*
 * The governors, one file each in daemon/governor/governors/, registered by one line each in
 * governors/governors.def (which meson also reads for the sources).
 */
#define GOVERNOR(name) extern const struct governor_ops governor_##name;
#include "governors/governors.def"
#undef GOVERNOR

/* Every registered governor, in registration order. */
const struct governor_ops *const *gov_list(size_t *n);

/* GOVERNOR's tunables (NULL, *N = 0 for an unknown governor or one without tunables). */
const struct gov_tunable *gov_tunables(const char *governor, size_t *n);
/* GOVERNOR's tunable NAME, or NULL. */
const struct gov_tunable *gov_tunable_find(const char *governor, const char *name);
/* The value of a scalar tunable in G (unsigned and bool as numbers); NAN for trips. */
double gov_tunable_get(const struct gov_tunable *t, const struct bmx_governor_config *g);
/*
 * Set a scalar tunable in G: -ERANGE outside min..max (or not whole for unsigned, not 0/1 for
 * bool), -EINVAL for trips. Cross-checks are the governor's check().
 */
int gov_tunable_set(const struct gov_tunable *t, struct bmx_governor_config *g, double value);
/*
 * The value of T in G as one line of YAML ("80", "0.5", "true", "[{temp: 70, hysteresis: 2}]"),
 * parsed back to the same value: the D-Bus path writes the running block out this way. Returns
 * the length snprintf would, like snprintf.
 */
int gov_tunable_format(const struct gov_tunable *t, const struct bmx_governor_config *g, char *buf,
		       size_t size);
/* Copy T's value from FROM to TO. */
void gov_tunable_copy(const struct gov_tunable *t, struct bmx_governor_config *to,
		      const struct bmx_governor_config *from);
/* Every governor's tunables at their defaults in G (the rest of G untouched). */
void gov_tunables_defaults(struct bmx_governor_config *g);
/*
 * Userspace support: target the user's bits (those in force when none were set yet). For the
 * userspace governor's start(); gov_policy_set_user_bits() is the control surface's.
 */
void gov_policy_use_user_bits(struct gov_policy *p);

/*
 * One layer's measured cost per bit-width (the daemon's cost table, cost_table.h): engine ns per
 * sample at batch 1 ([0]) and at the large batch ([1]), and the relative standard error of each
 * (0: exact or unknown). 0 where the layer does not allow those bits.
 */
struct gov_layer_cost {
	double ns[2][9];
	double rel_error[2][9];
};

/* What a model contributes to its policy; copied by gov_core_add_policy(). */
struct gov_model_desc {
	const char *name;
	uint32_t layer_count;
	const char *const *layer_names; /* [layer_count] */
	const uint16_t *bits_mask;	/* [layer_count] from the .bmx */
	const uint64_t *macs;		/* [layer_count] per sample */
	const float *const
		*sensitivity;	  /* [layer_count][popcount(mask)], ascending bits; may be NULL */
	const double *uniform_ns; /* [9]: measured ns/sample at uniform b bits, 0 = unmeasured */
	const struct bmx_layer_bits *initial; /* [layer_count] the bits published now */
	/* [layer_count], or NULL: per-layer measured costs, which then replace uniform_ns. */
	const struct gov_layer_cost *layer_costs;
	uint32_t large_batch; /* the batch of layer_costs' [1] */
};

/* The actuator: publish BITS (layer_count entries) for the policy's model. */
typedef void (*gov_publish_fn)(void *userdata, const struct bmx_layer_bits *bits);
/* Told the lowest bits any layer may run at (max of min_bits and the QoS floor) when it changes. */
typedef void (*gov_floor_fn)(void *userdata, uint8_t floor_bits);

enum gov_hold_kind {
	GOV_HOLD_MIN_BITS = 1,	 /* value: a floor on every layer's bits, 2..8 */
	GOV_HOLD_MAX_LATENCY_NS, /* value: a ceiling on engine time per sample */
};

struct gov_hold {
	uint32_t id;
	enum gov_hold_kind kind;
	uint64_t value;
	uint64_t owner; /* who placed it (a session id); released with it */
};

struct gov_stats {
	uint64_t time_in_state_ns[GOV_STATES];
	uint64_t transitions;
	uint32_t trans_table[GOV_STATES][GOV_STATES];
	uint32_t state; /* current */
	uint64_t decisions;
	uint64_t last_decision_ns; /* cost of the last decision, for status */
};

/* The core. */
int gov_core_new(const struct bmx_governor_config *cfg, struct gov_core **out);
void gov_core_free(struct gov_core *core);

/* Replace the tunables (a reload); the governor restarts if its name or tunables changed. */
int gov_core_configure(struct gov_core *core, const struct bmx_governor_config *cfg,
		       uint64_t now_ns);

/*
 * Switch to governor NAME. A governor that fails to start leaves performance running; the
 * return value is then the governor's error and WHY (if not NULL) says what happened.
 * Unknown names give -ENOENT.
 */
int gov_core_set_governor(struct gov_core *core, const char *name, uint64_t now_ns, char *why,
			  size_t why_len);
const char *gov_core_governor(const struct gov_core *core);
const char *gov_core_fallback_reason(const struct gov_core *core); /* "" when none */
const struct governor_ops *gov_find(const char *name);
/* The names of every governor, space separated. */
const char *gov_available(void);

/* One sensor reading: the governor decides, every policy re-allocates and publishes changes. */
void gov_core_update(struct gov_core *core, const struct sensor_reading *r);
const struct sensor_reading *gov_core_last_reading(const struct gov_core *core);

int gov_core_add_policy(struct gov_core *core, const struct gov_model_desc *desc,
			const struct bmx_governor_policy_config *limits, gov_publish_fn publish,
			void *userdata, uint64_t now_ns, struct gov_policy **out, char *why,
			size_t why_len);
void gov_core_remove_policy(struct gov_core *core, struct gov_policy *p);
size_t gov_core_policy_count(const struct gov_core *core);
struct gov_policy *gov_core_policy(const struct gov_core *core, size_t i);
struct gov_policy *gov_core_find_policy(const struct gov_core *core, const char *name);

/* Governor-private state (one pointer per core and per policy, owned by the governor). */
void *gov_core_data(const struct gov_core *core);
void gov_core_set_data(struct gov_core *core, void *data);
const struct bmx_governor_config *gov_core_config(const struct gov_core *core);
uint64_t gov_core_now(const struct gov_core *core);

/* Policies: what governors use. */
void *gov_policy_data(const struct gov_policy *p);
void gov_policy_set_data(struct gov_policy *p, void *data);
/* A stop op for governors whose per-policy data is one calloc'd block: frees it. */
void gov_policy_free_data(struct gov_core *core, struct gov_policy *p);
const char *gov_policy_name(const struct gov_policy *p);
void *gov_policy_userdata(const struct gov_policy *p); /* the actuator's, from add_policy */
/* Target a level in [0, 1] of the policy's cost range (within limits and holds). */
void gov_policy_set_level(struct gov_policy *p, double level);
/* Target a cost budget, ns of engine time per sample. */
void gov_policy_set_budget(struct gov_policy *p, double ns_per_sample);
/* The cheapest and richest cost within the limits and holds. */
void gov_policy_cost_range(const struct gov_policy *p, double *min_ns, double *max_ns);
/* Samples per second the model served, averaged over recent readings. */
double gov_policy_rate(const struct gov_policy *p);
/*
 * What a sample really costs relative to the cost table at the published bits: 1 for requests at
 * the operating point; lower when adaptive requests (docs/adaptive.md) run cheaper configurations
 * under it (higher if their escalations cost more than they save). Cost and power models
 * multiply the ceiling's cost by it.
 */
double gov_policy_cost_scale(const struct gov_policy *p);

/*
 * A lower bit-width is used for cost only if it saves at least this much (a share of the cost of
 * the higher bit-width it replaces), or twice the measurement's standard error if that is more.
 */
#define GOV_MIN_SAVING 0.03

/* Policies: what the daemon and the control surface use. */
/*
 * New per-layer costs (the cost table's rows as they are measured; [layer_count] entries): the
 * policy re-decides at once and publishes if its bits change. 0 or -EINVAL (no layer costs).
 */
int gov_policy_set_layer_costs(struct gov_policy *p, const struct gov_layer_cost *costs);
/*
 * The traffic's mean batch (samples per request): the cost the allocator uses is the layer's cost
 * interpolated between batch 1 and the large batch in log(batch). Re-decides if that moved the
 * costs by more than 1%.
 */
void gov_policy_set_batch(struct gov_policy *p, double mean_batch);
double gov_policy_batch(const struct gov_policy *p);
/* Bit-widths the allocator may not lower LAYER to for cost (mask of bits), see GOV_MIN_SAVING. */
uint16_t gov_policy_pruned(const struct gov_policy *p, uint32_t layer);
int gov_policy_set_user_bits(struct gov_policy *p, const struct bmx_layer_bits *bits);
void gov_policy_observe(struct gov_policy *p, uint64_t samples_total, uint64_t now_ns);
/* The measured cost scale of the traffic (see gov_policy_cost_scale()); clamped to [0.01, 4]. */
void gov_policy_set_cost_scale(struct gov_policy *p, double scale);
/* Call FN now and whenever the floor changes (limits, holds, their owners leaving). */
void gov_policy_set_floor_observer(struct gov_policy *p, gov_floor_fn fn);
const struct bmx_layer_bits *gov_policy_bits(const struct gov_policy *p);
double gov_policy_cost(const struct gov_policy *p);
double gov_policy_average_bits(const struct gov_policy *p);
int gov_policy_set_limits(struct gov_policy *p, const struct bmx_governor_policy_config *limits,
			  char *why, size_t why_len);
void gov_policy_limits(const struct gov_policy *p, uint8_t *min_bits, uint8_t *max_bits);
int gov_policy_hold(struct gov_policy *p, enum gov_hold_kind kind, uint64_t value, uint64_t owner,
		    uint32_t *id);
int gov_policy_release(struct gov_policy *p, uint32_t id, uint64_t owner);
void gov_core_release_owner(struct gov_core *core, uint64_t owner);
size_t gov_policy_holds_of(const struct gov_policy *p, uint64_t owner);
/* OWNER's holds over every policy of the core (each connection may place only so many). */
size_t gov_core_holds_of(const struct gov_core *core, uint64_t owner);
/* The aggregate of the holds (PM QoS style): the highest floor and the lowest ceiling. */
void gov_policy_qos(const struct gov_policy *p, uint8_t *floor_bits, uint64_t *max_latency_ns,
		    size_t *n_holds);
void gov_policy_stats(const struct gov_policy *p, uint64_t now_ns, struct gov_stats *out);
/* A policy as the D-Bus API shows it: layer names, pinned layers (0: not pinned), holds. */
uint32_t gov_policy_layer_count(const struct gov_policy *p);
const char *gov_policy_layer_name(const struct gov_policy *p, uint32_t layer);
uint8_t gov_policy_pinned(const struct gov_policy *p, uint32_t layer);
const struct gov_hold *gov_policy_holds(const struct gov_policy *p, size_t *n);

/*
 * Thermal thresholds of the running governor (step_wise's trips, power_allocator's switch-on
 * and control temperatures): a governor calls gov_core_trip() when the temperature crosses one
 * (RISING: upwards), and the core tells the callback, if any (the D-Bus TripCrossed signal).
 */
typedef void (*gov_trip_fn)(void *userdata, const char *trip, double temp_c, bool rising);
void gov_core_set_trip_fn(struct gov_core *core, gov_trip_fn fn, void *userdata);
void gov_core_trip(struct gov_core *core, const char *trip, double temp_c, bool rising);

/*
 * The second cooling device (governor_cap.c): a cap on the daemon's work, in CPUs kept busy on
 * average (0: none). The daemon tells the core how many CPUs its workers can use and, every
 * period, the CPU time they spent so far; a governor reads whether the daemon is saturated (it
 * keeps nearly all it may use busy, so cheaper samples only become more samples) and sets the
 * cap in its update; the core hands a changed cap to the actuator. A governor that never sets
 * it runs uncapped; switching governors lifts it.
 */
typedef void (*gov_cap_fn)(void *userdata, double work_cap_cpus);
void gov_core_set_capacity(struct gov_core *core, double cpus);
double gov_core_capacity(const struct gov_core *core);
/*
 * WORK_NS_TOTAL: the CPU time the workers spent so far; OCCUPIED_NS_TOTAL: the wall time they
 * spent on requests (more when other processes take the CPUs from them); THROTTLED_NS_TOTAL: the
 * time they waited for the cap with a request at hand.
 */
void gov_core_observe_work(struct gov_core *core, uint64_t work_ns_total,
			   uint64_t occupied_ns_total, uint64_t throttled_ns_total,
			   uint64_t now_ns);
double gov_core_busy_cpus(const struct gov_core *core);
bool gov_core_saturated(const struct gov_core *core);
/* The deepest cap: clients always make some progress (the kernel's idle injection keeps some too). */
#define GOV_MIN_WORK_CAP 0.05
/* In update(): the cap this decision wants (0 or >= the capacity: none; else at least the min). */
void gov_core_set_work_cap(struct gov_core *core, double cpus);
double gov_core_work_cap(const struct gov_core *core);
/* The actuator; called at once with the current cap, then on every change. */
void gov_core_set_cap_fn(struct gov_core *core, gov_cap_fn fn, void *userdata);

struct gov_cap_stats {
	double work_cap_cpus; /* 0: none */
	double busy_cpus;     /* what the daemon's work kept busy, averaged over a few periods */
	double capacity_cpus; /* the workers */
	bool saturated;
	uint64_t capped_ns; /* time spent under a cap */
	uint64_t changes;
};
void gov_core_cap_stats(const struct gov_core *core, uint64_t now_ns, struct gov_cap_stats *out);

/* The statistics state of an average bit-width. */
uint32_t gov_state_of(double average_bits);

#endif
