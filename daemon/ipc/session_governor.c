/* SPDX-License-Identifier: MIT */
/*
 * session_governor.c — the governor's control messages: query or switch the governor, read a
 * model's policy (operating point, limits, holds, statistics) and its per-layer cost table, place,
 * release and list QoS holds, read and set limits. Each handler checks the message's shape (its
 * length, NUL-terminated names) and marshals to the admin core (admin.h), which checks who may
 * and does the work; a hold belongs to the session that placed it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "daemon.h"
#include "log.h"

/* NAME from a fixed-size wire field: NUL-terminated within it, or NULL. */
static const char *wire_name(const char *field, size_t size)
{
	return memchr(field, 0, size) ? field : NULL;
}

/* A request of exactly SIZE bytes whose model name is terminated; else the error reply's r. */
static int check_request(struct session *s, const struct bitmix_msg_hdr *m, size_t size,
			 const char *what, const char *model, int *r)
{
	if (m->length != size)
		*r = reply_error(s, m, -EBADMSG, "%s: message of %u bytes, expected %zu", what,
				 m->length, size);
	else if (model && !wire_name(model, BITMIX_NAME_MAX))
		*r = reply_error(s, m, -EINVAL, "%s: model name is not NUL-terminated", what);
	else
		return 1;
	return 0;
}

int session_handle_governor(struct session *s, const struct bitmix_msg_hdr *m)
{
	const struct bitmix_governor_req *req = (const void *)m;
	struct bitmix_governor_reply rep = { 0 };
	struct admin_error err = { 0 };
	struct admin_governor g;
	struct admin_caller c;
	char who[96];
	int r = 0;

	if (!check_request(s, m, sizeof(*req), "GOVERNOR", NULL, &r))
		return r;
	if (!wire_name(req->name, sizeof(req->name)))
		return reply_error(s, m, -EINVAL, "GOVERNOR: name is not NUL-terminated");
	session_caller(s, &c, who, sizeof(who));
	/* A fallback is no error here: the reply says which governor runs and why. */
	if (*req->name && admin_governor_set(s->daemon, &c, req->name, &err) < 0 &&
	    err.fault != ADMIN_FAULT_FALLBACK)
		return session_reply_admin_error(s, m, &err);
	admin_governor_get(s->daemon, &c, &g, &err);
	reply_init(&rep.r, m, sizeof(rep));
	snprintf(rep.name, sizeof(rep.name), "%s", g.name);
	snprintf(rep.available, sizeof(rep.available), "%s", g.available);
	snprintf(rep.fallback, sizeof(rep.fallback), "%s", g.fallback);
	rep.policies = g.policies;
	rep.work_cap_cpus = g.cap.work_cap_cpus;
	rep.busy_cpus = g.cap.busy_cpus;
	rep.capacity_cpus = g.cap.capacity_cpus;
	rep.capped_ns = g.cap.capped_ns;
	rep.saturated = g.cap.saturated;
	return reply_send(s, &rep, sizeof(rep), NULL, 0);
}

int session_handle_policy(struct session *s, const struct bitmix_msg_hdr *m)
{
	const struct bitmix_policy_req *req = (const void *)m;
	struct bitmix_policy_reply rep = { 0 };
	struct admin_error err = { 0 };
	struct admin_stats st;
	struct admin_caller c;
	char who[96];
	int r = 0;

	if (!check_request(s, m, sizeof(*req), "POLICY", req->model, &r))
		return r;
	session_caller(s, &c, who, sizeof(who));
	if (admin_stats(s->daemon, &c, req->model, &st, &err) < 0)
		return session_reply_admin_error(s, m, &err);
	if (!st.governed)
		return reply_error(s, m, -ENOENT, "no governed model \"%s\"", req->model);
	reply_init(&rep.r, m, sizeof(rep));
	rep.average_bits = st.average_bits;
	rep.cost_ns = st.cost_ns;
	rep.rate = st.rate;
	rep.min_bits = st.min_bits;
	rep.max_bits = st.max_bits;
	rep.floor_bits = st.floor_bits;
	rep.max_latency_ns = st.max_latency_ns;
	rep.holds = st.holds;
	static_assert(BITMIX_GOV_STATES == GOV_STATES, "one statistics table on both sides");
	rep.transitions = st.gov.transitions;
	rep.decisions = st.gov.decisions;
	rep.last_decision_ns = st.gov.last_decision_ns;
	rep.state = st.gov.state;
	memcpy(rep.time_in_state_ns, st.gov.time_in_state_ns, sizeof(rep.time_in_state_ns));
	memcpy(rep.trans_table, st.gov.trans_table, sizeof(rep.trans_table));
	snprintf(rep.precision, sizeof(rep.precision), "%s", st.precision);
	rep.adaptive_requests = st.adaptive_requests;
	rep.adaptive_samples = st.adaptive_samples;
	rep.adaptive_escalated = st.adaptive_escalated;
	rep.adaptive_bitops = st.adaptive_bitops;
	rep.adaptive_ceiling_bitops = st.adaptive_ceiling_bitops;
	rep.cost_scale = st.cost_scale;
	return reply_send(s, &rep, sizeof(rep), NULL, 0);
}

int session_handle_hold(struct session *s, const struct bitmix_msg_hdr *m)
{
	const struct bitmix_hold_req *req = (const void *)m;
	struct bitmix_hold_reply rep = { 0 };
	struct admin_error err = { 0 };
	struct admin_caller c;
	char who[96];
	uint32_t id;
	int r = 0;

	if (!check_request(s, m, sizeof(*req), "HOLD", req->model, &r))
		return r;
	session_caller(s, &c, who, sizeof(who));
	if (admin_hold(s->daemon, &c, req->model, (enum gov_hold_kind)req->kind, req->value, &id,
		       &err) < 0)
		return session_reply_admin_error(s, m, &err);
	reply_init(&rep.r, m, sizeof(rep));
	rep.id = id;
	return reply_send(s, &rep, sizeof(rep), NULL, 0);
}

int session_handle_release(struct session *s, const struct bitmix_msg_hdr *m)
{
	const struct bitmix_hold_req *req = (const void *)m;
	struct bitmix_reply rep = { 0 };
	struct admin_error err = { 0 };
	struct admin_caller c;
	char who[96];
	int r = 0;

	if (!check_request(s, m, sizeof(*req), "RELEASE", req->model, &r))
		return r;
	session_caller(s, &c, who, sizeof(who));
	if (admin_release(s->daemon, &c, req->model, req->id, &err) < 0)
		return session_reply_admin_error(s, m, &err);
	reply_init(&rep, m, sizeof(rep));
	return reply_send(s, &rep, sizeof(rep), NULL, 0);
}

int session_handle_holds(struct session *s, const struct bitmix_msg_hdr *m)
{
	const struct bitmix_holds_req *req = (const void *)m;
	struct bitmix_holds_reply rep = { 0 };
	struct admin_hold holds[BITMIX_HOLDS_MAX];
	struct admin_error err = { 0 };
	struct admin_caller c;
	char who[96];
	size_t n;
	int r = 0;

	if (!check_request(s, m, sizeof(*req), "HOLDS", req->model, &r))
		return r;
	session_caller(s, &c, who, sizeof(who));
	if (admin_holds(s->daemon, &c, req->model, holds, BITMIX_HOLDS_MAX, &n, &err) < 0)
		return session_reply_admin_error(s, m, &err);
	reply_init(&rep.r, m, sizeof(rep));
	rep.count = (uint32_t)n;
	for (size_t i = 0; i < n && i < BITMIX_HOLDS_MAX; i++) {
		rep.holds[i].id = holds[i].id;
		rep.holds[i].kind = holds[i].kind;
		rep.holds[i].value = holds[i].value;
		snprintf(rep.holds[i].owner, sizeof(rep.holds[i].owner), "%s", holds[i].owner_name);
	}
	return reply_send(s, &rep, sizeof(rep), NULL, 0);
}

int session_handle_limits(struct session *s, const struct bitmix_msg_hdr *m)
{
	const struct bitmix_limits_req *req = (const void *)m;
	struct bitmix_limits_reply rep = { 0 };
	struct bmx_governor_policy_config lim = { 0 };
	struct admin_error err = { 0 };
	struct admin_caller c;
	char who[96];
	int r = 0;

	if (!check_request(s, m, sizeof(*req), "LIMITS", req->model, &r))
		return r;
	session_caller(s, &c, who, sizeof(who));
	if (req->set) {
		if (req->n_pinned > BITMIX_PINNED_MAX || req->n_pinned > BMX_CONFIG_MAX_PINNED)
			return reply_error(s, m, -EINVAL, "LIMITS: %u pinned layers, at most %d",
					   req->n_pinned, BITMIX_PINNED_MAX);
		lim.min_bits = req->min_bits;
		lim.max_bits = req->max_bits;
		lim.n_pinned = req->n_pinned;
		for (uint32_t i = 0; i < req->n_pinned; i++) {
			if (!wire_name(req->pinned[i].layer, sizeof(req->pinned[i].layer)))
				return reply_error(s, m, -EINVAL,
						   "LIMITS: layer name %u is not NUL-terminated",
						   i);
			snprintf(lim.pinned[i].layer, sizeof(lim.pinned[i].layer), "%s",
				 req->pinned[i].layer);
			lim.pinned[i].bits = req->pinned[i].bits;
		}
		if (admin_limits_set(s->daemon, &c, req->model, &lim, &err) < 0)
			return session_reply_admin_error(s, m, &err);
	}
	if (admin_limits_get(s->daemon, &c, req->model, &lim, &err) < 0)
		return session_reply_admin_error(s, m, &err);
	reply_init(&rep.r, m, sizeof(rep));
	rep.min_bits = (uint8_t)lim.min_bits;
	rep.max_bits = (uint8_t)lim.max_bits;
	for (size_t i = 0; i < lim.n_pinned && i < BITMIX_PINNED_MAX; i++) {
		snprintf(rep.pinned[i].layer, sizeof(rep.pinned[i].layer), "%s",
			 lim.pinned[i].layer);
		rep.pinned[i].bits = (uint8_t)lim.pinned[i].bits;
		rep.n_pinned++;
	}
	return reply_send(s, &rep, sizeof(rep), NULL, 0);
}

int session_handle_cost(struct session *s, const struct bitmix_msg_hdr *m)
{
	const struct bitmix_cost_req *req = (const void *)m;
	struct bitmix_cost_reply rep = { 0 };
	struct admin_error err = { 0 };
	struct admin_caller c;
	struct admin_cost cost;
	char who[96];
	int r = 0;

	if (!check_request(s, m, sizeof(*req), "COST", req->model, &r))
		return r;
	session_caller(s, &c, who, sizeof(who));
	if (admin_cost(s->daemon, &c, req->model, &cost, &err) < 0)
		return session_reply_admin_error(s, m, &err);
	if (req->first > cost.layer_count) {
		admin_cost_free(&cost);
		return reply_error(s, m, -EINVAL, "COST: layer %u is past the model's %u",
				   req->first, cost.layer_count);
	}
	reply_init(&rep.r, m, sizeof(rep));
	snprintf(rep.cpu, sizeof(rep.cpu), "%s", cost.cpu);
	snprintf(rep.kernels, sizeof(rep.kernels), "%s", cost.kernels);
	snprintf(rep.source, sizeof(rep.source), "%s", cost.source);
	rep.layer_count = cost.layer_count;
	rep.large_batch = cost.large_batch;
	rep.rows = cost.rows;
	rep.measured[0] = cost.measured[0];
	rep.measured[1] = cost.measured[1];
	rep.complete = cost.complete;
	rep.complete_s = cost.complete_s;
	rep.batch = cost.batch;
	rep.first = req->first;
	for (uint32_t l = req->first; l < cost.layer_count && rep.n < BITMIX_COST_PAGE; l++) {
		struct bitmix_cost_layer_wire *w = &rep.layers[rep.n++];
		const struct cost_layer *cl = &cost.table.layers[l];

		snprintf(w->name, sizeof(w->name), "%s", cost.model->model->layers[l].name);
		w->allowed = cl->allowed;
		w->measured[0] = cl->measured[0];
		w->measured[1] = cl->measured[1];
		w->pruned = cost.pruned[l];
		for (int bi = 0; bi < 2; bi++)
			for (int b = 2; b <= 8; b++)
				w->ns[bi][b - 2] = cl->ns[bi][b];
	}
	admin_cost_free(&cost);
	return reply_send(s, &rep, sizeof(rep), NULL, 0);
}
