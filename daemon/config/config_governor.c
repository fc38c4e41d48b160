/* SPDX-License-Identifier: MIT */
/*
 * config_governor.c — the `governor:` block of bitmixd's YAML: which governor runs, its
 * tunables, step_wise's trip points and each model's policy limits.
 *
 * Each governor's block is read from the tunables its ops declare (governor.h): the keys, their
 * types, ranges and defaults, and its check() for what a range cannot say. Every number is
 * range-checked here, so the governors trust their tunables.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_parse.h"
#include "governor.h"

void bmx_governor_config_defaults(struct bmx_governor_config *g)
{
	memset(g, 0, sizeof(*g));
	snprintf(g->name, sizeof(g->name), "power_allocator");
	gov_tunables_defaults(g);
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

/* A governor's block being parsed: its governor and the config it goes into. */
struct governor_block {
	const struct governor_ops *gov;
	struct bmx_governor_config *g;
};

/* One trip point of a GOV_TUNABLE_TRIPS list: temp in the tunable's range, hysteresis 0..50. */
struct trip_parse {
	const struct gov_tunable *tunable;
	const char *path; /* "governor.step_wise.trips[]" */
	struct bmx_config_trip trip;
};

static int trip_pair(struct config_parse *p, const char *key, yaml_node_t *k, yaml_node_t *v,
		     void *u)
{
	struct trip_parse *tp = u;
	char path[128];

	snprintf(path, sizeof(path), "%s.%s", tp->path, key);
	if (strcmp(key, "temp") == 0)
		return parse_number(p, v, path, tp->tunable->min, tp->tunable->max,
				    &tp->trip.temp_c);
	if (strcmp(key, "hysteresis") == 0)
		return parse_number(p, v, path, 0, 50, &tp->trip.hysteresis_c);
	return config_fail(p, k, tp->path, "unknown key \"%s\" (expected one of: temp, hysteresis)",
			   key);
}

/* A GOV_TUNABLE_TRIPS list: 1..BMX_CONFIG_MAX_TRIPS trip points, ascending by temp. */
static int parse_trips(struct config_parse *p, yaml_node_t *v, const char *list_path,
		       const struct gov_tunable *tunable, struct bmx_governor_config *g)
{
	struct bmx_config_trip *trips = (void *)((char *)g + tunable->offset);
	char path[112];
	size_t n = 0;

	snprintf(path, sizeof(path), "%s[]", list_path);
	if (config_expect(p, v, YAML_SEQUENCE_NODE, list_path) < 0)
		return -EINVAL;
	for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++) {
		yaml_node_t *item = yaml_document_get_node(&p->doc, *it);
		struct trip_parse tp = {
			.tunable = tunable,
			.path = path,
			.trip = { .temp_c = NAN, .hysteresis_c = 2 },
		};
		int r;

		if (n == BMX_CONFIG_MAX_TRIPS)
			return config_fail(p, item, list_path, "more than %d trip points",
					   BMX_CONFIG_MAX_TRIPS);
		if (config_expect(p, item, YAML_MAPPING_NODE, path) < 0)
			return -EINVAL;
		r = config_for_each_pair(p, item, path, trip_pair, &tp);
		if (r < 0)
			return r;
		if (isnan(tp.trip.temp_c))
			return config_fail(p, item, path,
					   "a trip point needs \"temp\" (degrees Celsius)");
		if (n > 0 && tp.trip.temp_c <= trips[n - 1].temp_c)
			return config_fail(p, item, path,
					   "trip points must be in ascending order of temp");
		trips[n++] = tp.trip;
	}
	if (n == 0)
		return config_fail(p, v, list_path, "name at least one trip point");
	*(size_t *)(void *)((char *)g + tunable->count_offset) = n;
	return 0;
}

static int parse_bool(struct config_parse *p, yaml_node_t *v, const char *path, bool *out)
{
	if (config_expect(p, v, YAML_SCALAR_NODE, path) < 0)
		return -EINVAL;
	if (strcmp(config_scalar(v), "true") == 0 || strcmp(config_scalar(v), "false") == 0) {
		*out = strcmp(config_scalar(v), "true") == 0;
		return 0;
	}
	return config_fail(p, v, path, "\"%s\" is not true or false", config_scalar(v));
}

/* One tunable of a governor's block, as its descriptor says. */
static int parse_tunable(struct config_parse *p, const struct gov_tunable *t, yaml_node_t *v,
			 const char *path, struct bmx_governor_config *g)
{
	void *field = (char *)g + t->offset;

	switch (t->type) {
	case GOV_TUNABLE_UNSIGNED:
		return parse_unsigned(p, v, path, (unsigned)t->min, (unsigned)t->max, field);
	case GOV_TUNABLE_DOUBLE:
		return parse_number(p, v, path, t->min, t->max, field);
	case GOV_TUNABLE_BOOL:
		return parse_bool(p, v, path, field);
	case GOV_TUNABLE_TRIPS:
		return parse_trips(p, v, path, t, g);
	}
	return -EINVAL;
}

/* "a, b, c": the names of GOV's tunables, for "expected one of" messages. */
static void tunable_names(const struct governor_ops *gov, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = 0;
	for (size_t i = 0; i < gov->n_tunables && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? ", " : "",
					gov->tunables[i].name);
}

static int governor_block_pair(struct config_parse *p, const char *key, yaml_node_t *k,
			       yaml_node_t *v, void *u)
{
	struct governor_block *b = u;
	char path[96], names[256];

	for (size_t i = 0; i < b->gov->n_tunables; i++) {
		if (strcmp(key, b->gov->tunables[i].name) != 0)
			continue;
		snprintf(path, sizeof(path), "governor.%s.%s", b->gov->name, key);
		return parse_tunable(p, &b->gov->tunables[i], v, path, b->g);
	}
	snprintf(path, sizeof(path), "governor.%s", b->gov->name);
	tunable_names(b->gov, names, sizeof(names));
	return config_fail(p, k, path, "unknown key \"%s\" (expected one of: %s)", key, names);
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

/* "a, b, c": the registered governors, with tunables only if WITH_TUNABLES. */
static void governor_names(bool with_tunables, char *buf, size_t size)
{
	size_t n, len = 0;
	const struct governor_ops *const *govs = gov_list(&n);

	buf[0] = 0;
	for (size_t i = 0; i < n && len < size; i++)
		if (!with_tunables || govs[i]->n_tunables)
			len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? ", " : "",
						govs[i]->name);
}

static int parse_name(struct config_parse *p, yaml_node_t *v, struct bmx_governor_config *g)
{
	char names[256];

	if (config_expect(p, v, YAML_SCALAR_NODE, "governor.name") < 0)
		return -EINVAL;
	if (gov_find(config_scalar(v))) {
		snprintf(g->name, sizeof(g->name), "%s", config_scalar(v));
		return 0;
	}
	governor_names(false, names, sizeof(names));
	return config_fail(p, v, "governor.name", "\"%s\" is not one of: %s", config_scalar(v),
			   names);
}

static int governor_pair(struct config_parse *p, const char *key, yaml_node_t *k, yaml_node_t *v,
			 void *u)
{
	struct bmx_governor_config *g = u;
	const struct governor_ops *gov = gov_find(key);
	char path[64], names[256];

	if (strcmp(key, "name") == 0)
		return parse_name(p, v, g);
	if (strcmp(key, "policies") == 0) {
		if (config_expect(p, v, YAML_MAPPING_NODE, "governor.policies") < 0)
			return -EINVAL;
		return config_for_each_pair(p, v, "governor.policies", policies_pair, g);
	}
	if (gov && gov->n_tunables) {
		struct governor_block b = { .gov = gov, .g = g };

		snprintf(path, sizeof(path), "governor.%s", gov->name);
		if (config_expect(p, v, YAML_MAPPING_NODE, path) < 0)
			return -EINVAL;
		return config_for_each_pair(p, v, path, governor_block_pair, &b);
	}
	governor_names(true, names, sizeof(names));
	return config_fail(p, k, "governor",
			   "unknown key \"%s\" (expected one of: name, %s, policies)", key, names);
}

int config_parse_governor(struct config_parse *p, yaml_node_t *v)
{
	struct bmx_governor_config *g = &p->cfg->governor;
	const struct governor_ops *const *govs;
	size_t n;
	int r;

	if (config_expect(p, v, YAML_MAPPING_NODE, "governor") < 0)
		return -EINVAL;
	r = config_for_each_pair(p, v, "governor", governor_pair, g);
	if (r < 0)
		return r;
	/* What the tables cannot say, every governor's block checked whichever one runs. */
	govs = gov_list(&n);
	for (size_t i = 0; i < n; i++) {
		char why[256], path[64];

		if (!govs[i]->check || govs[i]->check(g, why, sizeof(why)) == 0)
			continue;
		snprintf(path, sizeof(path), "governor.%s", govs[i]->name);
		return config_fail(p, v, path, "%s", why);
	}
	return 0;
}
