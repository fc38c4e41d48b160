/* SPDX-License-Identifier: MIT */
/*
 * libbitmix_governor.c — the governor's part of libbitmix: query or switch the governor, read a
 * model's policy and statistics and its per-layer cost table, place and release QoS holds.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bitmix_proto.h"
#include "libbitmix_internal.h"

static int copy_name(char *field, size_t size, const char *name)
{
	if (!name || strlen(name) >= size)
		return -EINVAL;
	memset(field, 0, size);
	memcpy(field, name, strlen(name));
	return 0;
}

int bitmix_governor(struct bitmix *bm, const char *set, struct bitmix_governor_info *info)
{
	struct bitmix_governor_req req = { 0 };
	struct bitmix_governor_reply rep;
	int r;

	if (set && copy_name(req.name, sizeof(req.name), set) < 0)
		return -EINVAL;
	r = bitmix_call(bm, &req, sizeof(req), BITMIX_MSG_GOVERNOR, &rep, sizeof(rep));
	if (r < 0)
		return r;
	memset(info, 0, sizeof(*info));
	memcpy(info->name, rep.name, sizeof(info->name) - 1);
	memcpy(info->available, rep.available, sizeof(info->available) - 1);
	memcpy(info->fallback, rep.fallback, sizeof(info->fallback) - 1);
	info->policies = rep.policies;
	info->work_cap_cpus = rep.work_cap_cpus;
	info->busy_cpus = rep.busy_cpus;
	info->capacity_cpus = rep.capacity_cpus;
	info->capped_ns = rep.capped_ns;
	info->saturated = rep.saturated != 0;
	return 0;
}

int bitmix_get_policy(struct bitmix *bm, const char *model, struct bitmix_policy_info *info)
{
	struct bitmix_policy_req req = { 0 };
	struct bitmix_policy_reply rep;
	int r;

	if (copy_name(req.model, sizeof(req.model), model) < 0)
		return -EINVAL;
	r = bitmix_call(bm, &req, sizeof(req), BITMIX_MSG_POLICY, &rep, sizeof(rep));
	if (r < 0)
		return r;
	memset(info, 0, sizeof(*info));
	info->average_bits = rep.average_bits;
	info->cost_ns = rep.cost_ns;
	info->rate = rep.rate;
	info->min_bits = rep.min_bits;
	info->max_bits = rep.max_bits;
	info->floor_bits = rep.floor_bits;
	info->max_latency_ns = rep.max_latency_ns;
	info->holds = rep.holds;
	info->transitions = rep.transitions;
	info->decisions = rep.decisions;
	info->last_decision_ns = rep.last_decision_ns;
	info->state = rep.state < BITMIX_GOV_STATES ? rep.state : 0;
	memcpy(info->time_in_state_ns, rep.time_in_state_ns, sizeof(info->time_in_state_ns));
	memcpy(info->trans_table, rep.trans_table, sizeof(info->trans_table));
	memcpy(info->precision, rep.precision, sizeof(info->precision));
	info->precision[sizeof(info->precision) - 1] = '\0';
	info->adaptive_requests = rep.adaptive_requests;
	info->adaptive_samples = rep.adaptive_samples;
	info->adaptive_escalated = rep.adaptive_escalated;
	info->adaptive_bitops = rep.adaptive_bitops;
	info->adaptive_ceiling_bitops = rep.adaptive_ceiling_bitops;
	info->cost_scale = rep.cost_scale;
	return 0;
}

int bitmix_hold(struct bitmix *bm, const char *model, unsigned kind, uint64_t value, uint32_t *id)
{
	struct bitmix_hold_req req = { .kind = kind, .value = value };
	struct bitmix_hold_reply rep;
	int r;

	if (copy_name(req.model, sizeof(req.model), model) < 0)
		return -EINVAL;
	r = bitmix_call(bm, &req, sizeof(req), BITMIX_MSG_HOLD, &rep, sizeof(rep));
	if (r == 0 && id)
		*id = rep.id;
	return r;
}

int bitmix_release(struct bitmix *bm, const char *model, uint32_t id)
{
	struct bitmix_hold_req req = { .id = id };
	struct bitmix_reply rep;

	if (copy_name(req.model, sizeof(req.model), model) < 0)
		return -EINVAL;
	return bitmix_call(bm, &req, sizeof(req), BITMIX_MSG_RELEASE, &rep, sizeof(rep));
}

static void cost_layer_from_wire(struct bitmix_cost_layer *l,
				 const struct bitmix_cost_layer_wire *w)
{
	memset(l, 0, sizeof(*l));
	memcpy(l->name, w->name, sizeof(l->name) - 1);
	l->allowed = w->allowed & 0x1fc;
	l->measured[0] = w->measured[0] & l->allowed;
	l->measured[1] = w->measured[1] & l->allowed;
	l->pruned = w->pruned & l->allowed;
	for (int bi = 0; bi < 2; bi++)
		for (int b = 2; b <= 8; b++)
			l->ns[bi][b] = w->ns[bi][b - 2];
}

int bitmix_get_cost(struct bitmix *bm, const char *model, struct bitmix_cost_info *info,
		    struct bitmix_cost_layer *layers, unsigned max_layers)
{
	struct bitmix_cost_req req = { 0 };
	struct bitmix_cost_reply rep;
	unsigned first = 0;
	int r;

	if (copy_name(req.model, sizeof(req.model), model) < 0)
		return -EINVAL;
	do {
		req.first = first;
		r = bitmix_call(bm, &req, sizeof(req), BITMIX_MSG_COST, &rep, sizeof(rep));
		if (r < 0)
			return r;
		if (rep.first != first || rep.n > BITMIX_COST_PAGE ||
		    rep.first + rep.n > rep.layer_count)
			return -EBADMSG;
		for (unsigned i = 0; i < rep.n && first + i < max_layers; i++)
			cost_layer_from_wire(&layers[first + i], &rep.layers[i]);
		first += rep.n;
	} while (rep.n > 0 && first < rep.layer_count && first < max_layers);
	memset(info, 0, sizeof(*info));
	memcpy(info->cpu, rep.cpu, sizeof(info->cpu) - 1);
	memcpy(info->kernels, rep.kernels, sizeof(info->kernels) - 1);
	memcpy(info->source, rep.source, sizeof(info->source) - 1);
	info->layer_count = rep.layer_count;
	info->large_batch = rep.large_batch;
	info->rows = rep.rows;
	info->measured[0] = rep.measured[0];
	info->measured[1] = rep.measured[1];
	info->complete = rep.complete != 0;
	info->complete_s = rep.complete_s;
	info->batch = rep.batch;
	return 0;
}

int bitmix_get_holds(struct bitmix *bm, const char *model, struct bitmix_hold_info *holds,
		     size_t max)
{
	struct bitmix_holds_req req = { 0 };
	struct bitmix_holds_reply rep;
	int r;

	if (copy_name(req.model, sizeof(req.model), model) < 0)
		return -EINVAL;
	r = bitmix_call(bm, &req, sizeof(req), BITMIX_MSG_HOLDS, &rep, sizeof(rep));
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < rep.count && i < BITMIX_HOLDS_MAX && i < max; i++) {
		memset(&holds[i], 0, sizeof(holds[i]));
		holds[i].id = rep.holds[i].id;
		holds[i].kind = rep.holds[i].kind;
		holds[i].value = rep.holds[i].value;
		memcpy(holds[i].owner, rep.holds[i].owner, sizeof(holds[i].owner) - 1);
	}
	return (int)(rep.count < BITMIX_HOLDS_MAX ? rep.count : BITMIX_HOLDS_MAX);
}

/* LIMITS: SET (or NULL to ask) first, then the limits in force into OUT. */
static int limits_call(struct bitmix *bm, const char *model, const struct bitmix_limits *set,
		       struct bitmix_limits *out)
{
	struct bitmix_limits_req req = { 0 };
	struct bitmix_limits_reply rep;
	int r;

	if (copy_name(req.model, sizeof(req.model), model) < 0)
		return -EINVAL;
	if (set) {
		if (set->n_pinned > BITMIX_PINNED_MAX)
			return -EINVAL;
		req.set = 1;
		req.min_bits = set->min_bits;
		req.max_bits = set->max_bits;
		req.n_pinned = set->n_pinned;
		for (unsigned i = 0; i < set->n_pinned; i++) {
			if (copy_name(req.pinned[i].layer, sizeof(req.pinned[i].layer),
				      set->pinned[i].layer) < 0)
				return -EINVAL;
			req.pinned[i].bits = set->pinned[i].bits;
		}
	}
	r = bitmix_call(bm, &req, sizeof(req), BITMIX_MSG_LIMITS, &rep, sizeof(rep));
	if (r < 0 || !out)
		return r;
	memset(out, 0, sizeof(*out));
	out->min_bits = rep.min_bits;
	out->max_bits = rep.max_bits;
	for (uint32_t i = 0; i < rep.n_pinned && i < BITMIX_PINNED_MAX; i++) {
		memcpy(out->pinned[i].layer, rep.pinned[i].layer, sizeof(out->pinned[i].layer) - 1);
		out->pinned[i].bits = rep.pinned[i].bits;
		out->n_pinned++;
	}
	return 0;
}

int bitmix_get_limits(struct bitmix *bm, const char *model, struct bitmix_limits *limits)
{
	return limits_call(bm, model, NULL, limits);
}

int bitmix_set_limits(struct bitmix *bm, const char *model, const struct bitmix_limits *limits)
{
	return limits_call(bm, model, limits, NULL);
}
