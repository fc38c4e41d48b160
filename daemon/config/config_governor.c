/* SPDX-License-Identifier: MIT */
/*
 * config_governor.c — the `governor:` block of bitmixd's YAML: which governor runs, its
 * tunables, step_wise's trip points and each model's policy limits.
 *
 * Names follow the Linux cpufreq and thermal governors they come from (up_threshold,
 * sampling_down_factor, freq_step, k_po, k_pu, k_i, k_d, integral_cutoff, sustainable_power).
 * Every number is range-checked here, so the governors trust their tunables.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_parse.h"

static const char *const governor_names[] = {
	"performance",	"powersave", "userspace",	"ondemand",
	"conservative", "step_wise", "power_allocator",
};

void bmx_governor_config_defaults(struct bmx_governor_config *g)
{
	memset(g, 0, sizeof(*g));
	snprintf(g->name, sizeof(g->name), "power_allocator");
	g->ondemand.up_threshold = 80;
	g->ondemand.sampling_down_factor = 1;
	g->conservative.up_threshold = 80;
	g->conservative.down_threshold = 20;
	g->conservative.freq_step = 5;
	g->conservative.sampling_down_factor = 1;
	g->step_wise.trips[0] = (struct bmx_config_trip){ .temp_c = 70, .hysteresis_c = 2 };
	g->step_wise.trips[1] = (struct bmx_config_trip){ .temp_c = 80, .hysteresis_c = 2 };
	g->step_wise.n_trips = 2;
	g->step_wise.states = 6;
	g->power_allocator.control_temp_c = 75;
	g->power_allocator.switch_on_temp_c = 60;
	/* Matched to the simulator's default machine (config_sensors.c): 25 C ambient, 1.5 K/W,
	 * 5 W idle: (75 - 25) / 1.5 - 5 = 28 W of inference power at the control temperature, with
	 * 20 W per busy CPU. A real machine sets its own (config/README.md says how). */
	g->power_allocator.sustainable_power_w = 28.0;
	g->power_allocator.integral_cutoff_c = 0;
	g->power_allocator.dynamic_power_w = 20.0;
}

static const struct bmx_governor_policy_config default_policy = { .min_bits = 2, .max_bits = 8 };

const struct bmx_governor_policy_config *bmx_config_policy(const struct bmx_config *c,
							   const char *model)
{
	for (size_t i = 0; i < c->governor.n_policies; i++)
		if (strcmp(c->governor.policies[i].model, model) == 0)
			return &c->governor.policies[i];
	return &default_policy;
}

static int parse_number(struct config_parse *p, yaml_node_t *v, const char *path, double lo,
			double hi, double *out)
{
	char *end;
	double x;

	if (config_expect(p, v, YAML_SCALAR_NODE, path) < 0)
		return -EINVAL;
	errno = 0;
	x = strtod(config_scalar(v), &end);
	if (errno || end == config_scalar(v) || *end || !isfinite(x) || x < lo || x > hi)
		return config_fail(p, v, path, "\"%s\" is not a number in %g..%g", config_scalar(v),
				   lo, hi);
	*out = x;
	return 0;
}

static int parse_unsigned(struct config_parse *p, yaml_node_t *v, const char *path, unsigned lo,
			  unsigned hi, unsigned *out)
{
	double x;

	if (parse_number(p, v, path, lo, hi, &x) < 0)
		return -EINVAL;
	if (x != floor(x))
		return config_fail(p, v, path, "\"%s\" is not a whole number in %u..%u",
				   config_scalar(v), lo, hi);
	*out = (unsigned)x;
	return 0;
}

static int ondemand_pair(struct config_parse *p, const char *key, yaml_node_t *k, yaml_node_t *v,
			 void *u)
{
	struct bmx_governor_config *g = u;

	if (strcmp(key, "up_threshold") == 0)
		return parse_unsigned(p, v, "governor.ondemand.up_threshold", 1, 100,
				      &g->ondemand.up_threshold);
	if (strcmp(key, "sampling_down_factor") == 0)
		return parse_unsigned(p, v, "governor.ondemand.sampling_down_factor", 1, 100000,
				      &g->ondemand.sampling_down_factor);
	return config_fail(
		p, k, "governor.ondemand",
		"unknown key \"%s\" (expected one of: up_threshold, sampling_down_factor)", key);
}

static int conservative_pair(struct config_parse *p, const char *key, yaml_node_t *k,
			     yaml_node_t *v, void *u)
{
	struct bmx_governor_config *g = u;

	if (strcmp(key, "up_threshold") == 0)
		return parse_unsigned(p, v, "governor.conservative.up_threshold", 1, 100,
				      &g->conservative.up_threshold);
	if (strcmp(key, "down_threshold") == 0)
		return parse_unsigned(p, v, "governor.conservative.down_threshold", 0, 99,
				      &g->conservative.down_threshold);
	if (strcmp(key, "freq_step") == 0)
		return parse_unsigned(p, v, "governor.conservative.freq_step", 1, 100,
				      &g->conservative.freq_step);
	if (strcmp(key, "sampling_down_factor") == 0)
		return parse_unsigned(p, v, "governor.conservative.sampling_down_factor", 1, 100000,
				      &g->conservative.sampling_down_factor);
	return config_fail(p, k, "governor.conservative",
			   "unknown key \"%s\" (expected one of: up_threshold, down_threshold, "
			   "freq_step, sampling_down_factor)",
			   key);
}

static int trip_pair(struct config_parse *p, const char *key, yaml_node_t *k, yaml_node_t *v,
		     void *u)
{
	struct bmx_config_trip *t = u;

	if (strcmp(key, "temp") == 0)
		return parse_number(p, v, "governor.step_wise.trips[].temp", -50, 200, &t->temp_c);
	if (strcmp(key, "hysteresis") == 0)
		return parse_number(p, v, "governor.step_wise.trips[].hysteresis", 0, 50,
				    &t->hysteresis_c);
	return config_fail(p, k, "governor.step_wise.trips[]",
			   "unknown key \"%s\" (expected one of: temp, hysteresis)", key);
}

static int parse_trips(struct config_parse *p, yaml_node_t *v, struct bmx_governor_config *g)
{
	size_t n = 0;

	if (config_expect(p, v, YAML_SEQUENCE_NODE, "governor.step_wise.trips") < 0)
		return -EINVAL;
	for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++) {
		yaml_node_t *item = yaml_document_get_node(&p->doc, *it);
		struct bmx_config_trip t = { .temp_c = NAN, .hysteresis_c = 2 };
		int r;

		if (n == BMX_CONFIG_MAX_TRIPS)
			return config_fail(p, item, "governor.step_wise.trips",
					   "more than %d trip points", BMX_CONFIG_MAX_TRIPS);
		if (config_expect(p, item, YAML_MAPPING_NODE, "governor.step_wise.trips[]") < 0)
			return -EINVAL;
		r = config_for_each_pair(p, item, "governor.step_wise.trips[]", trip_pair, &t);
		if (r < 0)
			return r;
		if (isnan(t.temp_c))
			return config_fail(p, item, "governor.step_wise.trips[]",
					   "a trip point needs \"temp\" (degrees Celsius)");
		if (n > 0 && t.temp_c <= g->step_wise.trips[n - 1].temp_c)
			return config_fail(p, item, "governor.step_wise.trips[]",
					   "trip points must be in ascending order of temp");
		g->step_wise.trips[n++] = t;
	}
	if (n == 0)
		return config_fail(p, v, "governor.step_wise.trips",
				   "name at least one trip point");
	g->step_wise.n_trips = n;
	return 0;
}

static int step_wise_pair(struct config_parse *p, const char *key, yaml_node_t *k, yaml_node_t *v,
			  void *u)
{
	struct bmx_governor_config *g = u;

	if (strcmp(key, "trips") == 0)
		return parse_trips(p, v, g);
	if (strcmp(key, "states") == 0)
		return parse_unsigned(p, v, "governor.step_wise.states", 1, 64,
				      &g->step_wise.states);
	return config_fail(p, k, "governor.step_wise",
			   "unknown key \"%s\" (expected one of: trips, states)", key);
}

static int power_allocator_pair(struct config_parse *p, const char *key, yaml_node_t *k,
				yaml_node_t *v, void *u)
{
	struct bmx_governor_config *g = u;
	static const struct {
		const char *key;
		size_t offset;
		double lo, hi;
	} fields[] = {
#define F(name, lo, hi) \
	{ #name, offsetof(struct bmx_governor_config, power_allocator.name), lo, hi }
		F(control_temp_c, -50, 200),
		F(switch_on_temp_c, -50, 200),
		F(sustainable_power_w, 0.001, 10000),
		F(k_po, 0, 1e6),
		F(k_pu, 0, 1e6),
		F(k_i, 0, 1e6),
		F(k_d, 0, 1e6),
		F(integral_cutoff_c, 0, 200),
		F(dynamic_power_w, 0.001, 10000),
#undef F
	};
	char path[96];

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (strcmp(key, fields[i].key) != 0)
			continue;
		snprintf(path, sizeof(path), "governor.power_allocator.%s", key);
		return parse_number(p, v, path, fields[i].lo, fields[i].hi,
				    (double *)((char *)g + fields[i].offset));
	}
	return config_fail(p, k, "governor.power_allocator",
			   "unknown key \"%s\" (expected one of: control_temp_c, switch_on_temp_c, "
			   "sustainable_power_w, k_po, k_pu, k_i, k_d, integral_cutoff_c, "
			   "dynamic_power_w)",
			   key);
}

static int pinned_pair(struct config_parse *p, const char *key, yaml_node_t *k, yaml_node_t *v,
		       void *u)
{
	struct bmx_governor_policy_config *pc = u;

	if (pc->n_pinned == BMX_CONFIG_MAX_PINNED)
		return config_fail(p, k, "governor.policies.pinned", "more than %d pinned layers",
				   BMX_CONFIG_MAX_PINNED);
	if (strlen(key) >= sizeof(pc->pinned[0].layer))
		return config_fail(p, k, "governor.policies.pinned",
				   "layer name \"%s\" is too long", key);
	snprintf(pc->pinned[pc->n_pinned].layer, sizeof(pc->pinned[0].layer), "%s", key);
	return parse_unsigned(p, v, "governor.policies.pinned", 2, 8,
			      &pc->pinned[pc->n_pinned++].bits);
}

/* fixed, cascade (or its alias adaptive), policy: what requests that name no precision get. */
static int parse_precision(struct config_parse *p, yaml_node_t *v, unsigned *out)
{
	static const char *const names[] = { "fixed", "cascade", "policy", "adaptive" };

	if (config_expect(p, v, YAML_SCALAR_NODE, "governor.policies.precision") < 0)
		return -EINVAL;
	for (unsigned i = 0; i < 4; i++)
		if (strcmp(config_scalar(v), names[i]) == 0) {
			*out = i == 3 ? 1 : i;
			return 0;
		}
	return config_fail(
		p, v, "governor.policies.precision",
		"\"%s\" is not a precision (expected one of: fixed, cascade, policy, adaptive)",
		config_scalar(v));
}

static int policy_pair(struct config_parse *p, const char *key, yaml_node_t *k, yaml_node_t *v,
		       void *u)
{
	struct bmx_governor_policy_config *pc = u;

	if (strcmp(key, "min_bits") == 0)
		return parse_unsigned(p, v, "governor.policies.min_bits", 2, 8, &pc->min_bits);
	if (strcmp(key, "max_bits") == 0)
		return parse_unsigned(p, v, "governor.policies.max_bits", 2, 8, &pc->max_bits);
	if (strcmp(key, "pinned") == 0) {
		if (config_expect(p, v, YAML_MAPPING_NODE, "governor.policies.pinned") < 0)
			return -EINVAL;
		return config_for_each_pair(p, v, "governor.policies.pinned", pinned_pair, pc);
	}
	if (strcmp(key, "precision") == 0)
		return parse_precision(p, v, &pc->precision);
	return config_fail(
		p, k, "governor.policies",
		"unknown key \"%s\" (expected one of: min_bits, max_bits, pinned, precision)", key);
}

static int policies_pair(struct config_parse *p, const char *key, yaml_node_t *k, yaml_node_t *v,
			 void *u)
{
	struct bmx_governor_config *g = u;
	struct bmx_governor_policy_config *pc;
	int r;

	if (g->n_policies == BMX_CONFIG_MAX_MODELS)
		return config_fail(p, k, "governor.policies", "more than %d policies",
				   BMX_CONFIG_MAX_MODELS);
	if (strlen(key) >= sizeof(pc->model))
		return config_fail(p, k, "governor.policies", "model name \"%s\" is too long", key);
	pc = &g->policies[g->n_policies];
	*pc = default_policy;
	snprintf(pc->model, sizeof(pc->model), "%s", key);
	config_where(p, k, pc->where, sizeof(pc->where));
	if (config_expect(p, v, YAML_MAPPING_NODE, "governor.policies") < 0)
		return -EINVAL;
	r = config_for_each_pair(p, v, "governor.policies", policy_pair, pc);
	if (r < 0)
		return r;
	if (pc->min_bits > pc->max_bits)
		return config_fail(p, v, "governor.policies",
				   "model \"%s\": min_bits %u is above max_bits %u", key,
				   pc->min_bits, pc->max_bits);
	g->n_policies++;
	return 0;
}

static int parse_name(struct config_parse *p, yaml_node_t *v, struct bmx_governor_config *g)
{
	if (config_expect(p, v, YAML_SCALAR_NODE, "governor.name") < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(governor_names) / sizeof(governor_names[0]); i++) {
		if (strcmp(config_scalar(v), governor_names[i]) == 0) {
			snprintf(g->name, sizeof(g->name), "%s", governor_names[i]);
			return 0;
		}
	}
	return config_fail(p, v, "governor.name",
			   "\"%s\" is not one of: performance, powersave, userspace, ondemand, "
			   "conservative, step_wise, power_allocator",
			   config_scalar(v));
}

static int governor_pair(struct config_parse *p, const char *key, yaml_node_t *k, yaml_node_t *v,
			 void *u)
{
	struct bmx_governor_config *g = u;
	struct {
		const char *key;
		config_pair_fn fn;
	} blocks[] = {
		{ "ondemand", ondemand_pair },	 { "conservative", conservative_pair },
		{ "step_wise", step_wise_pair }, { "power_allocator", power_allocator_pair },
		{ "policies", policies_pair },
	};
	char path[64];

	if (strcmp(key, "name") == 0)
		return parse_name(p, v, g);
	for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++) {
		if (strcmp(key, blocks[i].key) != 0)
			continue;
		snprintf(path, sizeof(path), "governor.%s", key);
		if (config_expect(p, v, YAML_MAPPING_NODE, path) < 0)
			return -EINVAL;
		return config_for_each_pair(p, v, path, blocks[i].fn, g);
	}
	return config_fail(p, k, "governor",
			   "unknown key \"%s\" (expected one of: name, ondemand, "
			   "conservative, step_wise, power_allocator, policies)",
			   key);
}

int config_parse_governor(struct config_parse *p, yaml_node_t *v)
{
	struct bmx_governor_config *g = &p->cfg->governor;
	int r;

	if (config_expect(p, v, YAML_MAPPING_NODE, "governor") < 0)
		return -EINVAL;
	r = config_for_each_pair(p, v, "governor", governor_pair, g);
	if (r < 0)
		return r;
	if (g->conservative.down_threshold >= g->conservative.up_threshold)
		return config_fail(p, v, "governor.conservative",
				   "down_threshold %u must be below up_threshold %u",
				   g->conservative.down_threshold, g->conservative.up_threshold);
	if (g->power_allocator.switch_on_temp_c > g->power_allocator.control_temp_c)
		return config_fail(p, v, "governor.power_allocator",
				   "switch_on_temp_c %g is above control_temp_c %g",
				   g->power_allocator.switch_on_temp_c,
				   g->power_allocator.control_temp_c);
	return 0;
}
