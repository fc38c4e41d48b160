/* SPDX-License-Identifier: MIT */
/*
 * governor_internal.h — the core's own structures, shared by governor.c, governor_policy.c,
 * governor_qos.c and governor_stats.c. Governors use governor.h only.
 */
#ifndef BITMIX_GOVERNOR_INTERNAL_H
#define BITMIX_GOVERNOR_INTERNAL_H

#include "governor.h"

enum gov_target {
	GOV_TARGET_LEVEL = 0,
	GOV_TARGET_BUDGET,
	GOV_TARGET_USER,
};

struct gov_policy {
	struct gov_core *core;
	char name[48];
	uint32_t n; /* layers */
	char (*layer_names)[32];
	uint16_t *mask; /* per layer, from the .bmx */
	uint64_t *macs;
	struct alloc_layer *base; /* costs and sensitivities of every bit the model allows */
	struct alloc_layer *eff;  /* the same with limits and holds applied */
	struct alloc_layer *real; /* eff less the bit-widths that save nothing real */
	struct gov_layer_cost *layer_costs; /* [n] measured, or NULL (costs from uniform_ns) */
	double (*rel_error)[ALLOC_NB];	    /* [n] of base's costs, at the batch in use */
	uint32_t large_batch;
	double batch; /* the traffic's mean batch the costs are taken at */
	struct bit_allocator *alloc;
	struct alloc_result result;

	/* Limits (from YAML or the control surface). */
	uint8_t min_bits, max_bits;
	uint8_t *pinned; /* per layer, 0 = not pinned */

	/* QoS holds and their aggregate. */
	struct gov_hold holds[GOV_MAX_HOLDS];
	size_t n_holds;
	uint8_t qos_floor;	     /* 0 = none */
	uint64_t qos_max_latency_ns; /* 0 = none */

	/* The governor's target. */
	enum gov_target target;
	double level, budget;
	struct bmx_layer_bits *user_bits;
	bool have_user_bits;

	/* What is published. */
	struct bmx_layer_bits *bits, *scratch;
	double cost;
	gov_publish_fn publish;
	void *userdata;
	gov_floor_fn floor_changed; /* the actuator's, or NULL */
	double cost_scale; /* measured cost / ceiling's cost of the traffic (adaptive), 1 */

	/* Observed load. */
	uint64_t last_samples, last_obs_ns;
	double rate;

	struct gov_stats stats;
	uint64_t state_since_ns;
	void *gov_data;
};

struct gov_core {
	struct bmx_governor_config cfg;
	const struct governor_ops *gov;
	void *gov_data;
	struct gov_policy **policies;
	size_t n, cap;
	struct sensor_reading last;
	bool have_reading;
	uint64_t now;
	char fallback[200];
	uint32_t next_hold_id;
	gov_trip_fn trip_fn;
	void *trip_userdata;

	/* The work cap (governor_cap.c). */
	double capacity_cpus;		 /* the workers' CPUs */
	double busy_cpus, occupied_cpus; /* averaged, for status */
	bool saturated;			 /* judged per period, under the cap in force then */
	unsigned calm_periods;		 /* periods in a row that were not saturated */
	uint64_t last_work_ns, last_occupied_ns, last_throttled_ns, last_work_obs_ns;
	double work_cap, next_work_cap; /* published, and asked for by this update; 0 = none */
	gov_cap_fn cap_fn;
	void *cap_userdata;
	uint64_t cap_since_ns, capped_ns, cap_changes;
};

/* Hand the cap the governor asked for in this update to the actuator if it changed. */
void gov_core_publish_cap(struct gov_core *c);

/* Recompute the target's bits and publish them if they changed. */
void gov_policy_apply(struct gov_policy *p);
/* Rebuild p->eff from p->base, the limits and the holds, and p->real from p->eff. */
void gov_policy_narrow(struct gov_policy *p);
/* The published bits changed at NOW: account the time in the old state and the transition. */
void gov_stats_transition(struct gov_policy *p, uint64_t now);
void gov_stats_start(struct gov_policy *p, uint64_t now);
/* Tell the governor the limits or holds changed, then re-decide. */
void gov_policy_limits_changed(struct gov_policy *p);

#endif
