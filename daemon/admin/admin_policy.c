/* SPDX-License-Identifier: MIT */
/*
 * admin_policy.c — the admin core's calls on one model's policy: QoS holds (anyone may place
 * them; each belongs to its caller and goes with it), limits, statistics and the per-layer cost
 * table. The policy's own rules (ranges, pinned layers) are the governor core's; this file adds
 * who may, the per-caller hold limit and the messages.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "admin_internal.h"
#include "log.h"

const char *admin_hold_kind_name(enum gov_hold_kind kind)
{
	return kind == GOV_HOLD_MIN_BITS	 ? "min-bits"
	       : kind == GOV_HOLD_MAX_LATENCY_NS ? "max-latency-ns"
						 : "?";
}

enum gov_hold_kind admin_hold_kind_parse(const char *name)
{
	if (strcmp(name, "min-bits") == 0)
		return GOV_HOLD_MIN_BITS;
	if (strcmp(name, "max-latency-ns") == 0)
		return GOV_HOLD_MAX_LATENCY_NS;
	return (enum gov_hold_kind)0;
}

/* MODEL's policy, or NULL with ERR set: no such model, or not governed. */
static struct gov_policy *policy_of(struct bmx_daemon *d, const char *model,
				    struct admin_error *err)
{
	struct served_model *m = admin_model(d, model, err);

	if (m && !m->policy)
		admin_fail(err, -EOPNOTSUPP, ADMIN_FAULT_UNGOVERNED,
			   "model %s is not governed (see the log)", model);
	return m ? m->policy : NULL;
}

int admin_hold(struct bmx_daemon *d, const struct admin_caller *c, const char *model,
	       enum gov_hold_kind kind, uint64_t value, uint32_t *id, struct admin_error *err)
{
	struct gov_policy *p;
	int r;

	if (!admin_model(d, model, err))
		return err->code;
	if (kind != GOV_HOLD_MIN_BITS && kind != GOV_HOLD_MAX_LATENCY_NS)
		return admin_fail(err, -EINVAL, ADMIN_FAULT_ARGS,
				  "a hold's kind is min-bits (1) or max-latency-ns (2)");
	p = policy_of(d, model, err);
	if (!p)
		return err->code;
	if (gov_core_holds_of(d->governor, c->owner) >= ADMIN_HOLDS_PER_CALLER)
		return admin_fail(err, -ENOSPC, ADMIN_FAULT_LIMIT,
				  "this connection holds %d already (the most one may)",
				  ADMIN_HOLDS_PER_CALLER);
	r = gov_policy_hold(p, kind, value, c->owner, id);
	if (r == -EINVAL)
		return admin_fail(err, r, ADMIN_FAULT_ARGS, "%s %llu out of range (%s)",
				  admin_hold_kind_name(kind), (unsigned long long)value,
				  kind == GOV_HOLD_MIN_BITS ? "2..8 bits" : "1 ns..1 hour");
	if (r < 0)
		return admin_fail(err, r, ADMIN_FAULT_INTERNAL, "hold: %s", strerror(-r));
	log_info("model %s: %s holds %s %llu (hold %u)", model, c->who, admin_hold_kind_name(kind),
		 (unsigned long long)value, *id);
	return 0;
}

int admin_release(struct bmx_daemon *d, const struct admin_caller *c, const char *model,
		  uint32_t id, struct admin_error *err)
{
	struct served_model *m = admin_model(d, model, err);
	int r;

	if (!m)
		return err->code;
	r = m->policy ? gov_policy_release(m->policy, id, c->owner) : -ENOENT;
	if (r == -EPERM)
		return admin_fail(err, r, ADMIN_FAULT_ACCESS, "hold %u belongs to another client",
				  id);
	if (r < 0)
		return admin_fail(err, -ENOENT, ADMIN_FAULT_NO_HOLD, "model %s has no hold %u",
				  model, id);
	log_info("model %s: %s released hold %u", model, c->who, id);
	return 0;
}

int admin_holds(struct bmx_daemon *d, const struct admin_caller *c, const char *model,
		struct admin_hold *out, size_t max, size_t *n, struct admin_error *err)
{
	struct served_model *m = admin_model(d, model, err);
	const struct gov_hold *holds = NULL;

	(void)c;
	*n = 0;
	if (!m)
		return err->code;
	if (m->policy)
		holds = gov_policy_holds(m->policy, n);
	for (size_t i = 0; i < *n && i < max; i++) {
		out[i] = (struct admin_hold){ .id = holds[i].id,
					      .kind = holds[i].kind,
					      .value = holds[i].value,
					      .owner = holds[i].owner };
		dbus_owner_text(d, holds[i].owner, out[i].owner_name, sizeof(out[i].owner_name));
	}
	return 0;
}

int admin_limits_get(struct bmx_daemon *d, const struct admin_caller *c, const char *model,
		     struct bmx_governor_policy_config *out, struct admin_error *err)
{
	struct served_model *m = admin_model(d, model, err);
	uint8_t lo = 2, hi = 8;

	(void)c;
	if (!m)
		return err->code;
	memset(out, 0, sizeof(*out));
	snprintf(out->model, sizeof(out->model), "%s", m->name);
	if (m->policy)
		gov_policy_limits(m->policy, &lo, &hi);
	out->min_bits = lo;
	out->max_bits = hi;
	for (uint32_t l = 0; m->policy && l < gov_policy_layer_count(m->policy); l++) {
		uint8_t bits = gov_policy_pinned(m->policy, l);

		if (!bits || out->n_pinned == BMX_CONFIG_MAX_PINNED)
			continue;
		snprintf(out->pinned[out->n_pinned].layer, sizeof(out->pinned[0].layer), "%s",
			 gov_policy_layer_name(m->policy, l));
		out->pinned[out->n_pinned++].bits = bits;
	}
	return 0;
}

int admin_limits_set(struct bmx_daemon *d, const struct admin_caller *c, const char *model,
		     const struct bmx_governor_policy_config *limits, struct admin_error *err)
{
	struct bmx_governor_policy_config lim = *limits;
	struct gov_policy *p;
	char why[256];
	int r;

	r = admin_require(d, c, "change limits", err);
	if (r < 0)
		return r;
	p = policy_of(d, model, err);
	if (!p)
		return err->code;
	snprintf(lim.model, sizeof(lim.model), "%s", model);
	/* Checked whole before anything changes: bad limits leave the old ones in force. */
	if (gov_policy_set_limits(p, &lim, why, sizeof(why)) < 0)
		return admin_fail(err, -EINVAL, ADMIN_FAULT_ARGS, "%s", why);
	log_info("model %s: limits %u..%u (%zu pinned) set by %s", model, lim.min_bits,
		 lim.max_bits, lim.n_pinned, c->who);
	return 0;
}

int admin_stats(struct bmx_daemon *d, const struct admin_caller *c, const char *model,
		struct admin_stats *out, struct admin_error *err)
{
	struct served_model *m = admin_model(d, model, err);
	struct bitmix_policy_reply adaptive = { 0 };
	size_t holds;

	(void)c;
	if (!m)
		return err->code;
	*out = (struct admin_stats){ 0 };
	out->samples_completed = __atomic_load_n(&m->samples_completed, __ATOMIC_RELAXED);
	out->min_bits = 2;
	out->max_bits = 8;
	if (!m->policy)
		return 0;
	out->governed = true;
	out->average_bits = gov_policy_average_bits(m->policy);
	out->cost_ns = gov_policy_cost(m->policy);
	out->rate = gov_policy_rate(m->policy);
	gov_policy_limits(m->policy, &out->min_bits, &out->max_bits);
	gov_policy_qos(m->policy, &out->floor_bits, &out->max_latency_ns, &holds);
	out->holds = (uint32_t)holds;
	gov_policy_stats(m->policy, now_ns(), &out->gov);
	policy_reply_adaptive(m, m->policy, &adaptive);
	snprintf(out->precision, sizeof(out->precision), "%s", adaptive.precision);
	out->adaptive_requests = adaptive.adaptive_requests;
	out->adaptive_samples = adaptive.adaptive_samples;
	out->adaptive_escalated = adaptive.adaptive_escalated;
	out->adaptive_bitops = adaptive.adaptive_bitops;
	out->adaptive_ceiling_bitops = adaptive.adaptive_ceiling_bitops;
	out->cost_scale = adaptive.cost_scale;
	return 0;
}

int admin_cost(struct bmx_daemon *d, const struct admin_caller *c, const char *model,
	       struct admin_cost *out, struct admin_error *err)
{
	struct served_model *m = admin_model(d, model, err);
	uint64_t complete_ns;
	uint32_t rows;
	int r;

	(void)c;
	memset(out, 0, sizeof(*out));
	if (!m)
		return err->code;
	r = served_cost_snapshot(m, &out->table, &complete_ns);
	if (r < 0)
		return admin_fail(err, r, ADMIN_FAULT_INTERNAL, "cost table of %s: %s", model,
				  strerror(-r));
	out->model = m;
	snprintf(out->cpu, sizeof(out->cpu), "%.63s", m->cost.key.cpu);
	snprintf(out->kernels, sizeof(out->kernels), "%s", m->cost.key.kernels);
	snprintf(out->source, sizeof(out->source), "%s", m->cost.source);
	out->layer_count = out->table.layer_count;
	out->large_batch = out->table.batch[1];
	cost_table_count_batch(&out->table, 0, &out->rows, &out->measured[0]);
	cost_table_count_batch(&out->table, 1, &rows, &out->measured[1]);
	out->complete = cost_table_complete(&out->table);
	out->complete_s = (double)complete_ns / 1e9;
	out->batch = m->policy ? gov_policy_batch(m->policy) : 1;
	for (uint32_t l = 0; m->policy && l < out->layer_count && l < BMX_MAX_LAYERS; l++)
		out->pruned[l] = gov_policy_pruned(m->policy, l);
	return 0;
}

void admin_cost_free(struct admin_cost *cost)
{
	cost_table_free(&cost->table);
}
