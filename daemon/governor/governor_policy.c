/* SPDX-License-Identifier: MIT */
/*
 * governor_policy.c — one policy per served model: its cost and sensitivity tables, its limits.
 *
 * Cost of layer l at b bits, in ns of engine time per sample: the daemon's per-layer cost table
 * (cost_table.h: measured node by node at batch 1 and at the large batch), interpolated at the
 * traffic's mean batch; the bit-widths that save nothing measurable are pruned after the limits
 * and holds apply (gov_policy_pruned). Without that table (bench/governor): the model's time at
 * uniform b bits shared among layers by their MACs, or where a bit-width was not measured,
 * BitOps (MACs x b x b) scaled by the measured time per BitOp, or at a nominal 1 ps per BitOp. Sensitivity of layer l at b bits: the .bmx's
 * (Fisher trace x quantization noise, QBitOpt); a model without them gets the noise term alone
 * (4^-b x MACs share), which still ranks bit-widths and layers sensibly.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "governor_internal.h"

static void policy_free(struct gov_policy *p)
{
	if (!p)
		return;
	bit_allocator_free(p->alloc);
	free(p->layer_names);
	free(p->mask);
	free(p->macs);
	free(p->base);
	free(p->eff);
	free(p->real);
	free(p->layer_costs);
	free(p->rel_error);
	free(p->pinned);
	free(p->user_bits);
	free(p->bits);
	free(p->scratch);
	free(p);
}

/* The weight of the large batch's cost at the traffic's mean batch: 0 at 1, 1 at large_batch. */
static double large_weight(const struct gov_policy *p)
{
	if (p->large_batch <= 1 || p->batch <= 1)
		return 0;
	return fmin(1.0, log(p->batch) / log((double)p->large_batch));
}

/* base's costs (and their errors) from the measured layer costs at the batch in use. */
static void costs_at_batch(struct gov_policy *p)
{
	const double w = large_weight(p);

	for (uint32_t l = 0; l < p->n; l++) {
		const struct gov_layer_cost *c = &p->layer_costs[l];

		for (int b = ALLOC_MIN_BITS; b <= ALLOC_MAX_BITS; b++) {
			if (!(p->base[l].allowed & (1u << b)))
				continue;
			p->base[l].cost[b] = (1 - w) * c->ns[0][b] + w * c->ns[1][b];
			if (!(p->base[l].cost[b] > 0))
				p->base[l].cost[b] = 1e-3;
			p->rel_error[l][b] = (1 - w) * c->rel_error[0][b] + w * c->rel_error[1][b];
		}
	}
}

static void fill_tables(struct gov_policy *p, const struct gov_model_desc *d)
{
	double total_macs = 0, ns_per_bitop = 0;

	for (uint32_t l = 0; l < p->n; l++)
		total_macs += (double)d->macs[l];
	if (total_macs <= 0)
		total_macs = 1;
	for (int b = 8; b >= ALLOC_MIN_BITS && d->uniform_ns; b--) {
		if (d->uniform_ns[b] > 0) {
			ns_per_bitop = d->uniform_ns[b] / (total_macs * b * b);
			break;
		}
	}
	if (ns_per_bitop <= 0)
		ns_per_bitop = 1e-3;
	for (uint32_t l = 0; l < p->n; l++) {
		struct alloc_layer *a = &p->base[l];
		double share = (double)d->macs[l] / total_macs;
		int idx = 0;

		a->allowed = d->bits_mask[l] & 0x1fc;
		for (int b = ALLOC_MIN_BITS; b <= ALLOC_MAX_BITS; b++) {
			if (!(a->allowed & (1u << b)))
				continue;
			if (d->uniform_ns && d->uniform_ns[b] > 0)
				a->cost[b] = d->uniform_ns[b] * share;
			else
				a->cost[b] = ns_per_bitop * (double)d->macs[l] * b * b;
			if (a->cost[b] <= 0)
				a->cost[b] = 1e-3;
			a->sensitivity[b] = d->sensitivity ? d->sensitivity[l][idx] : 0;
			idx++;
		}
	}
	if (p->layer_costs) {
		memcpy(p->layer_costs, d->layer_costs, p->n * sizeof(*p->layer_costs));
		p->large_batch = d->large_batch;
		costs_at_batch(p);
	}
	/* No sensitivities at all: the quantization-noise term alone. */
	bool any = false;
	for (uint32_t l = 0; l < p->n && !any; l++)
		for (int b = ALLOC_MIN_BITS; b <= ALLOC_MAX_BITS; b++)
			any |= (p->base[l].allowed & (1u << b)) && p->base[l].sensitivity[b] > 0;
	for (uint32_t l = 0; l < p->n && !any; l++)
		for (int b = ALLOC_MIN_BITS; b <= ALLOC_MAX_BITS; b++)
			p->base[l].sensitivity[b] =
				ldexp((double)d->macs[l] / total_macs + 1e-6, -2 * b);
}

int gov_policy_set_layer_costs(struct gov_policy *p, const struct gov_layer_cost *costs)
{
	if (!p->layer_costs)
		return -EINVAL;
	memcpy(p->layer_costs, costs, p->n * sizeof(*p->layer_costs));
	costs_at_batch(p);
	gov_policy_limits_changed(p);
	return 0;
}

void gov_policy_set_batch(struct gov_policy *p, double mean_batch)
{
	const double before = large_weight(p);

	p->batch = mean_batch < 1 ? 1 : mean_batch;
	if (!p->layer_costs || fabs(large_weight(p) - before) < 0.01)
		return;
	costs_at_batch(p);
	gov_policy_narrow(p);
	gov_policy_apply(p);
}

double gov_policy_batch(const struct gov_policy *p)
{
	return p->batch;
}

static int resolve_pin(const struct gov_policy *p, const char *layer)
{
	char *end;
	long i;

	for (uint32_t l = 0; l < p->n; l++)
		if (strcmp(p->layer_names[l], layer) == 0)
			return (int)l;
	i = strtol(layer, &end, 10);
	if (*layer && !*end && i >= 0 && i < (long)p->n)
		return (int)i;
	return -1;
}

static int take_limits(struct gov_policy *p, const struct bmx_governor_policy_config *lim,
		       char *why, size_t why_len)
{
	uint8_t *pinned = calloc(p->n, 1);

	if (!pinned)
		return -ENOMEM;
	if (lim->min_bits < 2 || lim->max_bits > 8 || lim->min_bits > lim->max_bits) {
		snprintf(why, why_len, "model %s: limits %u..%u are not within 2..8", p->name,
			 lim->min_bits, lim->max_bits);
		free(pinned);
		return -EINVAL;
	}
	for (size_t i = 0; i < lim->n_pinned; i++) {
		int l = resolve_pin(p, lim->pinned[i].layer);

		if (l < 0 || !(p->mask[l] & (1u << lim->pinned[i].bits))) {
			if (l < 0)
				snprintf(why, why_len, "model %s has no layer \"%s\" to pin",
					 p->name, lim->pinned[i].layer);
			else
				snprintf(why, why_len,
					 "model %s: layer \"%s\" was not trained for %u bits",
					 p->name, lim->pinned[i].layer, lim->pinned[i].bits);
			free(pinned);
			return -EINVAL;
		}
		pinned[l] = (uint8_t)lim->pinned[i].bits;
	}
	free(p->pinned);
	p->pinned = pinned;
	p->min_bits = (uint8_t)lim->min_bits;
	p->max_bits = (uint8_t)lim->max_bits;
	return 0;
}

int gov_policy_set_limits(struct gov_policy *p, const struct bmx_governor_policy_config *lim,
			  char *why, size_t why_len)
{
	int r = take_limits(p, lim, why, why_len);

	if (r == 0)
		gov_policy_limits_changed(p);
	return r;
}

void gov_policy_limits(const struct gov_policy *p, uint8_t *min_bits, uint8_t *max_bits)
{
	*min_bits = p->min_bits;
	*max_bits = p->max_bits;
}

static uint16_t range_mask(unsigned lo, unsigned hi)
{
	uint16_t m = 0;

	for (unsigned b = lo; b <= hi; b++)
		m |= (uint16_t)(1u << b);
	return m;
}

/*
 * Lower bits B do not save measurably against higher bits K: B's cost is not GOV_MIN_SAVING (or
 * twice the standard error of the difference, if more) below K's.
 */
static bool saves_nothing(const struct gov_policy *p, uint32_t l, int b, int k)
{
	const double e = hypot(p->rel_error[l][b], p->rel_error[l][k]);
	const double margin = fmax(GOV_MIN_SAVING, 2 * e);

	return p->eff[l].cost[b] > p->eff[l].cost[k] * (1 - margin);
}

/*
 * Within what the limits and holds leave (eff), a bit-width is pruned when a higher one that is
 * kept is no less accurate and costs no measurably more: lowering to it would pay accuracy for
 * no real saving. A limit or hold that leaves only low bits still gets them (they are all eff
 * has); the highest allowed bit-width is always kept.
 */
uint16_t gov_policy_pruned(const struct gov_policy *p, uint32_t l)
{
	const struct alloc_layer *a = &p->eff[l];
	uint16_t kept = 0, pruned = 0;

	for (int b = ALLOC_MAX_BITS; b >= ALLOC_MIN_BITS; b--) {
		bool dominated = false;

		if (!(a->allowed & (1u << b)))
			continue;
		for (int k = b + 1; k <= ALLOC_MAX_BITS && !dominated; k++)
			dominated = (kept & (1u << k)) && a->sensitivity[k] <= a->sensitivity[b] &&
				    saves_nothing(p, l, b, k);
		if (dominated)
			pruned |= (uint16_t)(1u << b);
		else
			kept |= (uint16_t)(1u << b);
	}
	return pruned;
}

void gov_policy_narrow(struct gov_policy *p)
{
	unsigned lo = p->min_bits > p->qos_floor ? p->min_bits : p->qos_floor;

	for (uint32_t l = 0; l < p->n; l++) {
		uint16_t mask = p->base[l].allowed, allowed;

		if (p->pinned && p->pinned[l])
			allowed = mask & (uint16_t)(1u << p->pinned[l]);
		else
			allowed = mask & range_mask(lo, p->max_bits);
		if (!allowed) /* a floor above what the layer knows: its richest within max_bits */
			for (int b = p->max_bits; b >= 2 && !allowed; b--)
				allowed = mask & (uint16_t)(1u << b);
		if (!allowed) /* max_bits below everything the layer knows: its cheapest */
			for (int b = 2; b <= 8 && !allowed; b++)
				allowed = mask & (uint16_t)(1u << b);
		p->eff[l] = p->base[l];
		p->eff[l].allowed = allowed;
		p->real[l] = p->eff[l];
		p->real[l].allowed = allowed & (uint16_t)~gov_policy_pruned(p, l);
	}
}

static uint8_t floor_of(const struct gov_policy *p)
{
	return p->min_bits > p->qos_floor ? p->min_bits : p->qos_floor;
}

void gov_policy_set_floor_observer(struct gov_policy *p, gov_floor_fn fn)
{
	p->floor_changed = fn;
	if (fn)
		fn(p->userdata, floor_of(p));
}

double gov_policy_cost_scale(const struct gov_policy *p)
{
	return p->cost_scale > 0 ? p->cost_scale : 1.0;
}

void gov_policy_set_cost_scale(struct gov_policy *p, double scale)
{
	p->cost_scale = scale < 0.01 ? 0.01 : scale > 4.0 ? 4.0 : scale;
}

void gov_policy_limits_changed(struct gov_policy *p)
{
	if (p->floor_changed)
		p->floor_changed(p->userdata, floor_of(p));
	gov_policy_narrow(p);
	if (p->core->gov && p->core->gov->limits)
		p->core->gov->limits(p->core, p);
	gov_policy_apply(p);
}

static int policy_alloc(struct gov_policy *p, uint32_t n)
{
	p->n = n;
	p->layer_names = calloc(n, sizeof(*p->layer_names));
	p->mask = calloc(n, sizeof(*p->mask));
	p->macs = calloc(n, sizeof(*p->macs));
	p->base = calloc(n, sizeof(*p->base));
	p->eff = calloc(n, sizeof(*p->eff));
	p->real = calloc(n, sizeof(*p->real));
	p->rel_error = calloc(n, sizeof(*p->rel_error));
	p->user_bits = calloc(n, sizeof(*p->user_bits));
	p->bits = calloc(n, sizeof(*p->bits));
	p->scratch = calloc(n, sizeof(*p->scratch));
	if (!p->layer_names || !p->mask || !p->macs || !p->base || !p->eff || !p->real ||
	    !p->rel_error || !p->user_bits || !p->bits || !p->scratch)
		return -ENOMEM;
	/* 512 cost units: ALLOC_AUTO solves up to 16 layers exactly, larger models greedily. */
	return bit_allocator_new(n, 512, &p->alloc);
}

int gov_core_add_policy(struct gov_core *c, const struct gov_model_desc *d,
			const struct bmx_governor_policy_config *limits, gov_publish_fn publish,
			void *userdata, uint64_t now_ns, struct gov_policy **out, char *why,
			size_t why_len)
{
	struct gov_policy *p = calloc(1, sizeof(*p));
	int r;

	*out = NULL;
	if (!p || d->layer_count == 0 || d->layer_count > 1024) {
		free(p);
		snprintf(why, why_len, "model %s: no layers to govern", d->name);
		return p ? -EINVAL : -ENOMEM;
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 8;
		struct gov_policy **v = realloc(c->policies, cap * sizeof(*v));

		if (!v) {
			free(p);
			return -ENOMEM;
		}
		c->policies = v;
		c->cap = cap;
	}
	p->core = c;
	snprintf(p->name, sizeof(p->name), "%s", d->name);
	r = policy_alloc(p, d->layer_count);
	if (r < 0) {
		policy_free(p);
		snprintf(why, why_len, "model %s: out of memory", d->name);
		return r;
	}
	for (uint32_t l = 0; l < p->n; l++) {
		snprintf(p->layer_names[l], sizeof(p->layer_names[l]), "%s",
			 d->layer_names ? d->layer_names[l] : "");
		p->mask[l] = d->bits_mask[l];
		p->macs[l] = d->macs[l];
		p->bits[l] = d->initial[l];
	}
	p->batch = 1;
	if (d->layer_costs) {
		p->layer_costs = calloc(p->n, sizeof(*p->layer_costs));
		if (!p->layer_costs) {
			policy_free(p);
			snprintf(why, why_len, "model %s: out of memory", d->name);
			return -ENOMEM;
		}
	}
	fill_tables(p, d);
	p->min_bits = 2;
	p->max_bits = 8;
	p->level = 1;
	c->now = now_ns > c->now ? now_ns : c->now;
	gov_stats_start(p, c->now);
	p->publish = publish;
	p->userdata = userdata;
	r = take_limits(p, limits, why, why_len);
	if (r < 0) {
		policy_free(p);
		return r;
	}
	gov_policy_narrow(p);
	c->policies[c->n++] = p;
	if (c->gov && c->gov->start && c->gov->start(c, p) < 0)
		gov_policy_set_level(p, 1);
	gov_policy_apply(p);
	*out = p;
	return 0;
}

void gov_core_remove_policy(struct gov_core *c, struct gov_policy *p)
{
	for (size_t i = 0; i < c->n; i++) {
		if (c->policies[i] != p)
			continue;
		if (c->gov && c->gov->stop)
			c->gov->stop(c, p);
		c->policies[i] = c->policies[--c->n];
		policy_free(p);
		return;
	}
}
