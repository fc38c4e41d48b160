/* SPDX-License-Identifier: MIT */
/*
 * session_governor.c — the governor's control messages: query or switch the governor, read a
 * model's policy (operating point, limits, holds, statistics) and its per-layer cost table, place
 * and release QoS holds.
 * Every field a client sent is checked here; a hold belongs to the session that placed it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "log.h"

#define HOLDS_PER_SESSION 8

/* NAME from a fixed-size wire field: NUL-terminated within it, or NULL. */
static const char *wire_name(const char *field, size_t size)
{
	return memchr(field, 0, size) ? field : NULL;
}

static struct gov_policy *find_policy(struct session *s, const struct bitmix_msg_hdr *m,
				      const char *field, int *r)
{
	const char *name = wire_name(field, BITMIX_NAME_MAX);
	struct gov_policy *p = name ? gov_core_find_policy(s->daemon->governor, name) : NULL;

	if (!name)
		*r = reply_error(s, m, -EINVAL, "model name is not NUL-terminated");
	else if (!p)
		*r = reply_error(s, m, -ENOENT, "no governed model \"%s\"", name);
	return p;
}

int session_handle_governor(struct session *s, const struct bitmix_msg_hdr *m)
{
	const struct bitmix_governor_req *req = (const void *)m;
	struct bmx_daemon *d = s->daemon;
	struct bitmix_governor_reply rep = { 0 };
	struct gov_cap_stats cap;
	const char *name;
	char why[256];

	if (m->length != sizeof(*req))
		return reply_error(s, m, -EBADMSG, "GOVERNOR: message of %u bytes, expected %zu",
				   m->length, sizeof(*req));
	name = wire_name(req->name, sizeof(req->name));
	if (!name)
		return reply_error(s, m, -EINVAL, "GOVERNOR: name is not NUL-terminated");
	if (*name) {
		if (!session_may_set_bits(s))
			return reply_error(
				s, m, -EPERM,
				"uid %u may not change the governor (see access.set_bits in %s)",
				(unsigned)s->uid, d->config->source_path);
		if (!gov_find(name))
			return reply_error(s, m, -ENOENT, "no governor \"%s\" (available: %s)",
					   name, gov_available());
		if (gov_core_set_governor(d->governor, name, now_ns(), why, sizeof(why)) < 0)
			log_warning("governor: %s", why);
		else
			log_info("governor: %s, set by client %u (uid %u)", name, s->id,
				 (unsigned)s->uid);
	}
	reply_init(&rep.r, m, sizeof(rep));
	snprintf(rep.name, sizeof(rep.name), "%s", gov_core_governor(d->governor));
	snprintf(rep.available, sizeof(rep.available), "%s", gov_available());
	snprintf(rep.fallback, sizeof(rep.fallback), "%s", gov_core_fallback_reason(d->governor));
	rep.policies = (uint32_t)gov_core_policy_count(d->governor);
	gov_core_cap_stats(d->governor, now_ns(), &cap);
	rep.work_cap_cpus = cap.work_cap_cpus;
	rep.busy_cpus = cap.busy_cpus;
	rep.capacity_cpus = cap.capacity_cpus;
	rep.capped_ns = cap.capped_ns;
	rep.saturated = cap.saturated;
	return reply_send(s, &rep, sizeof(rep), NULL, 0);
}

int session_handle_policy(struct session *s, const struct bitmix_msg_hdr *m)
{
	const struct bitmix_policy_req *req = (const void *)m;
	struct bitmix_policy_reply rep = { 0 };
	struct gov_policy *p;
	struct gov_stats st;
	size_t n_holds;
	int r = 0;

	if (m->length != sizeof(*req))
		return reply_error(s, m, -EBADMSG, "POLICY: message of %u bytes, expected %zu",
				   m->length, sizeof(*req));
	p = find_policy(s, m, req->model, &r);
	if (!p)
		return r;
	reply_init(&rep.r, m, sizeof(rep));
	rep.average_bits = gov_policy_average_bits(p);
	rep.cost_ns = gov_policy_cost(p);
	rep.rate = gov_policy_rate(p);
	gov_policy_limits(p, &rep.min_bits, &rep.max_bits);
	gov_policy_qos(p, &rep.floor_bits, &rep.max_latency_ns, &n_holds);
	rep.holds = (uint32_t)n_holds;
	gov_policy_stats(p, now_ns(), &st);
	static_assert(BITMIX_GOV_STATES == GOV_STATES, "one statistics table on both sides");
	rep.transitions = st.transitions;
	rep.decisions = st.decisions;
	rep.last_decision_ns = st.last_decision_ns;
	rep.state = st.state;
	memcpy(rep.time_in_state_ns, st.time_in_state_ns, sizeof(rep.time_in_state_ns));
	memcpy(rep.trans_table, st.trans_table, sizeof(rep.trans_table));
	policy_reply_adaptive(gov_policy_userdata(p), p, &rep);
	return reply_send(s, &rep, sizeof(rep), NULL, 0);
}

int session_handle_hold(struct session *s, const struct bitmix_msg_hdr *m)
{
	const struct bitmix_hold_req *req = (const void *)m;
	struct bitmix_hold_reply rep = { 0 };
	struct gov_policy *p;
	uint32_t id;
	int r = 0;

	if (m->length != sizeof(*req))
		return reply_error(s, m, -EBADMSG, "HOLD: message of %u bytes, expected %zu",
				   m->length, sizeof(*req));
	p = find_policy(s, m, req->model, &r);
	if (!p)
		return r;
	if (gov_core_holds_of(s->daemon->governor, s->id) >= HOLDS_PER_SESSION)
		return reply_error(s, m, -ENOSPC, "HOLD: this connection already holds %d",
				   HOLDS_PER_SESSION);
	if (req->kind != GOV_HOLD_MIN_BITS && req->kind != GOV_HOLD_MAX_LATENCY_NS)
		return reply_error(s, m, -EINVAL,
				   "HOLD: kind %u is not 1 (min bits) or 2 (max latency)",
				   req->kind);
	r = gov_policy_hold(p, (enum gov_hold_kind)req->kind, req->value, s->id, &id);
	if (r == -EINVAL)
		return reply_error(s, m, r, "HOLD: value %llu out of range (%s)",
				   (unsigned long long)req->value,
				   req->kind == GOV_HOLD_MIN_BITS ? "2..8 bits" : "1 ns..1 hour");
	if (r < 0)
		return reply_error(s, m, r, "HOLD: %s", strerror(-r));
	log_info("model %s: client %u (pid %d) holds %s %llu (hold %u)", gov_policy_name(p), s->id,
		 (int)s->pid, req->kind == GOV_HOLD_MIN_BITS ? "min bits" : "max latency ns",
		 (unsigned long long)req->value, id);
	reply_init(&rep.r, m, sizeof(rep));
	rep.id = id;
	return reply_send(s, &rep, sizeof(rep), NULL, 0);
}

int session_handle_release(struct session *s, const struct bitmix_msg_hdr *m)
{
	const struct bitmix_hold_req *req = (const void *)m;
	struct bitmix_reply rep = { 0 };
	struct gov_policy *p;
	int r = 0;

	if (m->length != sizeof(*req))
		return reply_error(s, m, -EBADMSG, "RELEASE: message of %u bytes, expected %zu",
				   m->length, sizeof(*req));
	p = find_policy(s, m, req->model, &r);
	if (!p)
		return r;
	r = gov_policy_release(p, req->id, s->id);
	if (r < 0)
		return reply_error(s, m, r, "RELEASE: hold %u %s", req->id,
				   r == -EPERM ? "belongs to another client" : "does not exist");
	reply_init(&rep, m, sizeof(rep));
	return reply_send(s, &rep, sizeof(rep), NULL, 0);
}

/* The header of a COST reply: what the table was measured on and how far it is. */
static void cost_summary(const struct served_model *m, const struct cost_table *t,
			 uint64_t complete_ns, struct bitmix_cost_reply *rep)
{
	uint32_t rows;

	snprintf(rep->cpu, sizeof(rep->cpu), "%.63s", m->cost.key.cpu);
	snprintf(rep->kernels, sizeof(rep->kernels), "%s", m->cost.key.kernels);
	snprintf(rep->source, sizeof(rep->source), "%s", m->cost.source);
	rep->layer_count = t->layer_count;
	rep->large_batch = t->batch[1];
	cost_table_count_batch(t, 0, &rep->rows, &rep->measured[0]);
	cost_table_count_batch(t, 1, &rows, &rep->measured[1]);
	rep->complete = cost_table_complete(t);
	rep->complete_s = (double)complete_ns / 1e9;
	rep->batch = m->policy ? gov_policy_batch(m->policy) : 1;
}

int session_handle_cost(struct session *s, const struct bitmix_msg_hdr *m)
{
	const struct bitmix_cost_req *req = (const void *)m;
	struct bitmix_cost_reply rep = { 0 };
	struct cost_table t = { 0 };
	struct served_model *model;
	const char *name;
	uint64_t complete_ns;
	int r;

	if (m->length != sizeof(*req))
		return reply_error(s, m, -EBADMSG, "COST: message of %u bytes, expected %zu",
				   m->length, sizeof(*req));
	name = wire_name(req->model, sizeof(req->model));
	if (!name)
		return reply_error(s, m, -EINVAL, "COST: model name is not NUL-terminated");
	model = model_store_find(&s->daemon->store, name);
	if (!model)
		return reply_error(s, m, -ENOENT, "COST: no model \"%s\"", name);
	r = served_cost_snapshot(model, &t, &complete_ns);
	if (r < 0)
		return reply_error(s, m, r, "COST: out of memory");
	if (req->first > t.layer_count) {
		cost_table_free(&t);
		return reply_error(s, m, -EINVAL, "COST: layer %u is past the model's %u",
				   req->first, t.layer_count);
	}
	reply_init(&rep.r, m, sizeof(rep));
	cost_summary(model, &t, complete_ns, &rep);
	rep.first = req->first;
	for (uint32_t l = req->first; l < t.layer_count && rep.n < BITMIX_COST_PAGE; l++) {
		struct bitmix_cost_layer_wire *w = &rep.layers[rep.n++];
		const struct cost_layer *c = &t.layers[l];

		snprintf(w->name, sizeof(w->name), "%s", model->model->layers[l].name);
		w->allowed = c->allowed;
		w->measured[0] = c->measured[0];
		w->measured[1] = c->measured[1];
		w->pruned = model->policy ? gov_policy_pruned(model->policy, l) : 0;
		for (int bi = 0; bi < 2; bi++)
			for (int b = 2; b <= 8; b++)
				w->ns[bi][b - 2] = c->ns[bi][b];
	}
	cost_table_free(&t);
	return reply_send(s, &rep, sizeof(rep), NULL, 0);
}
