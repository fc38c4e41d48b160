/* SPDX-License-Identifier: MIT */
/*
 * governor.c — the governor core: governors, policies, targets and publication.
 *
 * A policy's target (level, budget or user bits) is turned into bits here and nowhere else:
 * limits and QoS holds narrow each layer's allowed bits, a latency hold caps the budget, the
 * allocator picks the bits, and changed bits go to the actuator and into the statistics
 * (governor_stats.c). Holds live in governor_qos.c. Governors never publish themselves, so
 * switching governors can never leave a half-applied decision behind.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bmx_util.h"
#include "governor_internal.h"

/* The registry: governors/governors.def, one line per governor. */
static const struct governor_ops *const governors[] = {
#define GOVERNOR(name) &governor_##name,
#include "governors/governors.def"
#undef GOVERNOR
};

const struct governor_ops *const *gov_list(size_t *n)
{
	*n = sizeof(governors) / sizeof(governors[0]);
	return governors;
}

const struct governor_ops *gov_find(const char *name)
{
	for (size_t i = 0; i < sizeof(governors) / sizeof(governors[0]); i++)
		if (strcmp(governors[i]->name, name) == 0)
			return governors[i];
	return NULL;
}

const char *gov_available(void)
{
	/* The names joined at compile time; +1 skips the first separator. */
	static const char names[] =
#define GOVERNOR(name) " " #name
#include "governors/governors.def"
#undef GOVERNOR
		;

	return names + 1;
}

int gov_core_new(const struct bmx_governor_config *cfg, struct gov_core **out)
{
	struct gov_core *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->cfg = *cfg;
	c->next_hold_id = 1;
	*out = c;
	return 0;
}

static void governor_stop_all(struct gov_core *c)
{
	if (!c->gov)
		return;
	for (size_t i = 0; i < c->n; i++)
		if (c->gov->stop)
			c->gov->stop(c, c->policies[i]);
	if (c->gov->exit)
		c->gov->exit(c);
	c->gov = NULL;
	c->gov_data = NULL;
}

void gov_core_free(struct gov_core *c)
{
	if (!c)
		return;
	governor_stop_all(c);
	while (c->n)
		gov_core_remove_policy(c, c->policies[c->n - 1]);
	free(c->policies);
	free(c);
}

/* Start GOV on every policy; on failure undo and return the error. */
static int governor_start(struct gov_core *c, const struct governor_ops *gov)
{
	size_t started = 0;
	int r = 0;

	c->gov = gov;
	if (gov->init)
		r = gov->init(c);
	for (; r == 0 && started < c->n; started++)
		if (gov->start)
			r = gov->start(c, c->policies[started]);
	if (r < 0) {
		if (started > 0)
			started--; /* the one that failed cleaned up after itself */
		while (started-- > 0)
			if (gov->stop)
				gov->stop(c, c->policies[started]);
		if (gov->exit)
			gov->exit(c);
		c->gov = NULL;
		c->gov_data = NULL;
	}
	return r;
}

int gov_core_set_governor(struct gov_core *c, const char *name, uint64_t now_ns, char *why,
			  size_t why_len)
{
	const struct governor_ops *gov = gov_find(name);
	int r;

	if (why && why_len)
		why[0] = 0;
	if (!gov) {
		if (why)
			snprintf(why, why_len, "no governor \"%s\" (available: %s)", name,
				 gov_available());
		return -ENOENT;
	}
	c->now = now_ns;
	governor_stop_all(c);
	c->fallback[0] = 0;
	c->next_work_cap = 0; /* a new governor starts uncapped */
	gov_core_publish_cap(c);
	r = governor_start(c, gov);
	if (r < 0) {
		snprintf(c->fallback, sizeof(c->fallback),
			 "%s could not start (%s): running performance instead", name,
			 r == -ENODATA ? "the sensors give no temperature" : strerror(-r));
		if (why)
			snprintf(why, why_len, "%s", c->fallback);
		governor_start(c, &governor_performance);
	}
	for (size_t i = 0; i < c->n; i++)
		gov_policy_apply(c->policies[i]);
	return r;
}

int gov_core_configure(struct gov_core *c, const struct bmx_governor_config *cfg, uint64_t now_ns)
{
	c->cfg = *cfg;
	return gov_core_set_governor(c, cfg->name, now_ns, NULL, 0);
}

const char *gov_core_governor(const struct gov_core *c)
{
	return c->gov ? c->gov->name : "none";
}

const char *gov_core_fallback_reason(const struct gov_core *c)
{
	return c->fallback;
}

void gov_core_update(struct gov_core *c, const struct sensor_reading *r)
{
	c->last = *r;
	c->have_reading = true;
	if (r->time_ns > c->now)
		c->now = r->time_ns;
	c->next_work_cap = c->work_cap; /* kept unless the governor decides otherwise */
	if (c->gov && c->gov->update)
		c->gov->update(c, r);
	for (size_t i = 0; i < c->n; i++)
		gov_policy_apply(c->policies[i]);
	gov_core_publish_cap(c);
}

const struct sensor_reading *gov_core_last_reading(const struct gov_core *c)
{
	return c->have_reading ? &c->last : NULL;
}

void gov_core_set_trip_fn(struct gov_core *c, gov_trip_fn fn, void *userdata)
{
	c->trip_fn = fn;
	c->trip_userdata = userdata;
}

void gov_core_trip(struct gov_core *c, const char *trip, double temp_c, bool rising)
{
	if (c->trip_fn)
		c->trip_fn(c->trip_userdata, trip, temp_c, rising);
}

size_t gov_core_policy_count(const struct gov_core *c)
{
	return c->n;
}
struct gov_policy *gov_core_policy(const struct gov_core *c, size_t i)
{
	return c->policies[i];
}
void *gov_core_data(const struct gov_core *c)
{
	return c->gov_data;
}
void gov_core_set_data(struct gov_core *c, void *data)
{
	c->gov_data = data;
}
const struct bmx_governor_config *gov_core_config(const struct gov_core *c)
{
	return &c->cfg;
}
uint64_t gov_core_now(const struct gov_core *c)
{
	return c->now;
}

struct gov_policy *gov_core_find_policy(const struct gov_core *c, const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->policies[i]->name, name) == 0)
			return c->policies[i];
	return NULL;
}

void *gov_policy_data(const struct gov_policy *p)
{
	return p->gov_data;
}
void gov_policy_set_data(struct gov_policy *p, void *data)
{
	p->gov_data = data;
}

void gov_policy_free_data(struct gov_core *core, struct gov_policy *p)
{
	(void)core;
	free(p->gov_data);
	p->gov_data = NULL;
}
const char *gov_policy_name(const struct gov_policy *p)
{
	return p->name;
}
void *gov_policy_userdata(const struct gov_policy *p)
{
	return p->userdata;
}
const struct bmx_layer_bits *gov_policy_bits(const struct gov_policy *p)
{
	return p->bits;
}
double gov_policy_cost(const struct gov_policy *p)
{
	return p->cost;
}
double gov_policy_rate(const struct gov_policy *p)
{
	return p->rate;
}
uint32_t gov_policy_layer_count(const struct gov_policy *p)
{
	return p->n;
}

const char *gov_policy_layer_name(const struct gov_policy *p, uint32_t layer)
{
	return layer < p->n ? p->layer_names[layer] : "";
}

uint8_t gov_policy_pinned(const struct gov_policy *p, uint32_t layer)
{
	return layer < p->n && p->pinned ? p->pinned[layer] : 0;
}

const struct gov_hold *gov_policy_holds(const struct gov_policy *p, size_t *n)
{
	*n = p->n_holds;
	return p->holds;
}

void gov_policy_set_level(struct gov_policy *p, double level)
{
	p->target = GOV_TARGET_LEVEL;
	p->level = level < 0 ? 0 : level > 1 ? 1 : level;
}

void gov_policy_set_budget(struct gov_policy *p, double ns_per_sample)
{
	p->target = GOV_TARGET_BUDGET;
	p->budget = ns_per_sample;
}

void gov_policy_use_user_bits(struct gov_policy *p)
{
	if (!p->have_user_bits) {
		memcpy(p->user_bits, p->bits, p->n * sizeof(*p->bits));
		p->have_user_bits = true;
	}
	p->target = GOV_TARGET_USER;
}

int gov_policy_set_user_bits(struct gov_policy *p, const struct bmx_layer_bits *bits)
{
	if (p->core->gov != &governor_userspace)
		return -EBUSY;
	memcpy(p->user_bits, bits, p->n * sizeof(*bits));
	p->have_user_bits = true;
	p->target = GOV_TARGET_USER;
	gov_policy_apply(p);
	return 0;
}

void gov_policy_observe(struct gov_policy *p, uint64_t samples_total, uint64_t now_ns)
{
	if (p->last_obs_ns && now_ns > p->last_obs_ns && samples_total >= p->last_samples) {
		double dt = (double)(now_ns - p->last_obs_ns) * 1e-9;
		double inst = (double)(samples_total - p->last_samples) / dt;

		/* An exponential average over about three periods, like the kernel's load averages. */
		p->rate = p->rate == 0 ? inst : p->rate + 0.35 * (inst - p->rate);
		if (inst == 0 && p->rate < 1) /* idle: under one sample a second */
			p->rate = 0;
	}
	p->last_samples = samples_total;
	p->last_obs_ns = now_ns;
}

double gov_policy_average_bits(const struct gov_policy *p)
{
	double num = 0, den = 0;

	for (uint32_t l = 0; l < p->n; l++) {
		double w = p->macs[l] ? (double)p->macs[l] : 1;

		num += w * (p->bits[l].w_bits + p->bits[l].a_bits) / 2.0;
		den += w;
	}
	return den > 0 ? num / den : 0;
}

/* The range of the real points: powersave's cheapest is the cheapest that saves for real. */
void gov_policy_cost_range(const struct gov_policy *p, double *min_ns, double *max_ns)
{
	bit_allocator_cost_range(p->real, p->n, min_ns, max_ns);
}

/* The allowed bit nearest to B in MASK, preferring the higher one on a tie. */
static uint8_t nearest_allowed(uint16_t mask, unsigned b)
{
	for (unsigned d = 0; d <= 6; d++) {
		if (b + d <= 8 && (mask & (1u << (b + d))))
			return (uint8_t)(b + d);
		if (b >= d + 2 && (mask & (1u << (b - d))))
			return (uint8_t)(b - d);
	}
	return 8;
}

static void decide(struct gov_policy *p, struct bmx_layer_bits *bits, double *cost)
{
	double lo, hi, budget;

	if (p->target == GOV_TARGET_USER) {
		*cost = 0;
		for (uint32_t l = 0; l < p->n; l++) {
			bits[l].w_bits = nearest_allowed(p->eff[l].allowed, p->user_bits[l].w_bits);
			bits[l].a_bits = nearest_allowed(p->eff[l].allowed, p->user_bits[l].a_bits);
			*cost += p->eff[l].cost[bits[l].w_bits];
		}
		return;
	}
	bit_allocator_cost_range(p->real, p->n, &lo, &hi);
	budget = p->target == GOV_TARGET_LEVEL ? lo + p->level * (hi - lo) : p->budget;
	/*
	 * Only real savings are spent (p->real), unless a latency ceiling cannot be met with them:
	 * a client's hold, like a limit, may still force bits that save little.
	 */
	const struct alloc_layer *layers = p->real;
	if (p->qos_max_latency_ns && budget > (double)p->qos_max_latency_ns) {
		budget = (double)p->qos_max_latency_ns;
		if (budget < lo)
			layers = p->eff;
	}
	/* A hair of slack so that level 1 always affords the richest point despite rounding. */
	bit_allocator_solve(p->alloc, layers, budget * (1 + 1e-12), ALLOC_AUTO, &p->result);
	for (uint32_t l = 0; l < p->n; l++)
		bits[l].w_bits = bits[l].a_bits = p->result.bits[l];
	*cost = p->result.cost;
}

void gov_policy_apply(struct gov_policy *p)
{
	uint64_t t0 = now_ns();
	double cost;

	decide(p, p->scratch, &cost);
	p->stats.decisions++;
	p->stats.last_decision_ns = now_ns() - t0;
	p->cost = cost;
	if (memcmp(p->scratch, p->bits, p->n * sizeof(*p->bits)) == 0)
		return;
	memcpy(p->bits, p->scratch, p->n * sizeof(*p->bits));
	gov_stats_transition(p, p->core->now);
	if (p->publish)
		p->publish(p->userdata, p->bits);
}
