/* SPDX-License-Identifier: MIT */
/*
 * dbus_model.c — one object per served model, /org/bitmix/Daemon1/model/<escaped name>,
 * interface org.bitmix.Model1: its operating point (CurrentBits, Generation), what it allows
 * (AvailableBits, LayerNames), its policy (Limits, Holds, Stats), its per-layer cost table
 * (CostTable) and the methods that change them (SetBits, SetLimits, Hold, Release).
 *
 * The objects are not registered one by one: a fallback vtable under the prefix finds the
 * model from the path on every call, and a node enumerator lists the store, so a model that
 * was loaded, replaced or unloaded is never reachable through a stale pointer.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dbus_internal.h"
#include "log.h"

char *dbus_model_path(const char *name)
{
	char *path = NULL;

	return sd_bus_path_encode(DBUS_MODEL_PREFIX, name, &path) < 0 ? NULL : path;
}

static struct served_model *model_of(struct bmx_dbus *b, const char *path)
{
	_cleanup_(freep) char *name = NULL;

	if (sd_bus_path_decode(path, DBUS_MODEL_PREFIX, &name) <= 0 || !name)
		return NULL;
	return model_store_find(&b->d->store, name);
}

static int find_model(sd_bus *bus, const char *path, const char *iface, void *userdata,
		      void **found, sd_bus_error *error)
{
	(void)bus, (void)iface, (void)error;
	if (!model_of(userdata, path))
		return 0;
	*found = userdata;
	return 1;
}

static int enumerate_models(sd_bus *bus, const char *prefix, void *userdata, char ***nodes,
			    sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	char **v = calloc(b->d->store.count + 1, sizeof(*v));

	(void)bus, (void)prefix, (void)error;
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < b->d->store.count; i++) {
		v[i] = dbus_model_path(b->d->store.models[i]->name);
		if (!v[i]) {
			for (size_t k = 0; k < i; k++)
				free(v[k]);
			free(v);
			return -ENOMEM;
		}
	}
	*nodes = v;
	return 0;
}

int dbus_append_bits(sd_bus_message *m, const struct served_model *model, uint64_t *generation)
{
	struct bmx_layer_bits bits[BMX_MAX_LAYERS];
	uint64_t g = served_model_snapshot(model, bits);
	int r;

	if (generation)
		*generation = g;
	r = sd_bus_message_open_container(m, 'a', "(yy)");
	for (uint32_t l = 0; r >= 0 && l < model->model->layer_count; l++)
		r = sd_bus_message_append(m, "(yy)", bits[l].w_bits, bits[l].a_bits);
	return r < 0 ? r : sd_bus_message_close_container(m);
}

uint64_t dbus_model_limits_sig(const struct served_model *m)
{
	uint8_t lo, hi;
	uint64_t h;

	if (!m->policy)
		return 0;
	gov_policy_limits(m->policy, &lo, &hi);
	h = (uint64_t)lo << 8 | hi;
	for (uint32_t l = 0; l < gov_policy_layer_count(m->policy); l++)
		h = (h ^ gov_policy_pinned(m->policy, l)) * 1099511628211ull;
	return h;
}

uint64_t dbus_model_holds_sig(const struct served_model *m)
{
	const struct gov_hold *holds;
	uint64_t h = 1469598103934665603ull;
	size_t n;

	if (!m->policy)
		return 0;
	holds = gov_policy_holds(m->policy, &n);
	for (size_t i = 0; i < n; i++)
		h = (h ^ holds[i].id ^ holds[i].value) * 1099511628211ull;
	return h ^ n;
}

/* Every property of org.bitmix.Model1 in one getter: they share the lookup. */
static int prop_get(sd_bus *bus, const char *path, const char *iface, const char *prop,
		    sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct served_model *m = model_of(b, path);
	const struct bmx_model *model;
	int r;

	(void)bus, (void)iface;
	if (!m)
		return sd_bus_error_setf(error, DBUS_ERROR_NO_SUCH_MODEL, "no model at %s", path);
	model = m->model;
	if (strcmp(prop, "Name") == 0)
		return sd_bus_message_append(reply, "s", m->name);
	if (strcmp(prop, "File") == 0)
		return sd_bus_message_append(reply, "s", m->path);
	if (strcmp(prop, "Generation") == 0)
		return sd_bus_message_append(
			reply, "t", __atomic_load_n(&m->control->generation, __ATOMIC_ACQUIRE));
	if (strcmp(prop, "CurrentBits") == 0)
		return dbus_append_bits(reply, m, NULL);
	if (strcmp(prop, "LayerNames") == 0) {
		r = sd_bus_message_open_container(reply, 'a', "s");
		for (uint32_t l = 0; r >= 0 && l < model->layer_count; l++)
			r = sd_bus_message_append(reply, "s", model->layers[l].name);
		return r < 0 ? r : sd_bus_message_close_container(reply);
	}
	/* AvailableBits: per layer, the bit-widths it was trained for. */
	r = sd_bus_message_open_container(reply, 'a', "ay");
	for (uint32_t l = 0; r >= 0 && l < model->layer_count; l++) {
		r = sd_bus_message_open_container(reply, 'a', "y");
		for (uint8_t bits = 2; r >= 0 && bits <= 8; bits++)
			if (model->layers[l].bits_mask & (1u << bits))
				r = sd_bus_message_append(reply, "y", bits);
		if (r >= 0)
			r = sd_bus_message_close_container(reply);
	}
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int prop_limits(sd_bus *bus, const char *path, const char *iface, const char *prop,
		       sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct served_model *m = model_of(userdata, path);
	uint8_t lo = 2, hi = 8;
	int r;

	(void)bus, (void)iface, (void)prop;
	if (!m)
		return sd_bus_error_setf(error, DBUS_ERROR_NO_SUCH_MODEL, "no model at %s", path);
	if (m->policy)
		gov_policy_limits(m->policy, &lo, &hi);
	r = sd_bus_message_open_container(reply, 'r', "yya(sy)");
	if (r >= 0)
		r = sd_bus_message_append(reply, "yy", lo, hi);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(sy)");
	for (uint32_t l = 0; r >= 0 && m->policy && l < gov_policy_layer_count(m->policy); l++)
		if (gov_policy_pinned(m->policy, l))
			r = sd_bus_message_append(reply, "(sy)",
						  gov_policy_layer_name(m->policy, l),
						  gov_policy_pinned(m->policy, l));
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int prop_holds(sd_bus *bus, const char *path, const char *iface, const char *prop,
		      sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct served_model *m = model_of(b, path);
	const struct gov_hold *holds = NULL;
	size_t n = 0;
	int r;

	(void)bus, (void)iface, (void)prop;
	if (!m)
		return sd_bus_error_setf(error, DBUS_ERROR_NO_SUCH_MODEL, "no model at %s", path);
	if (m->policy)
		holds = gov_policy_holds(m->policy, &n);
	r = sd_bus_message_open_container(reply, 'a', "(usts)");
	for (size_t i = 0; r >= 0 && i < n; i++) {
		char owner[64];

		dbus_owner_name(b, holds[i].owner, owner, sizeof(owner));
		r = sd_bus_message_append(reply, "(usts)", holds[i].id,
					  holds[i].kind == GOV_HOLD_MIN_BITS ? "min-bits"
									     : "max-latency-ns",
					  holds[i].value, owner);
	}
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int append_entry(sd_bus_message *reply, const char *key, const char *type, ...)
{
	va_list ap;
	int r = dbus_open_entry(reply, key, type);

	va_start(ap, type);
	if (r >= 0)
		r = sd_bus_message_appendv(reply, type, ap);
	va_end(ap);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int append_tables(sd_bus_message *reply, const struct gov_stats *st)
{
	int r = dbus_open_entry(reply, "time_in_state_ns", "at");

	if (r >= 0)
		r = sd_bus_message_append_array(reply, 't', st->time_in_state_ns,
						sizeof(st->time_in_state_ns));
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	/* The transition table, sparse: (from state, to state, count). */
	if (r >= 0)
		r = dbus_open_entry(reply, "transition_table", "a(uuu)");
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(uuu)");
	for (uint32_t s = 0; r >= 0 && s < GOV_STATES; s++)
		for (uint32_t t = 0; r >= 0 && t < GOV_STATES; t++)
			if (st->trans_table[s][t])
				r = sd_bus_message_append(reply, "(uuu)", s, t,
							  st->trans_table[s][t]);
	for (int k = 0; r >= 0 && k < 3; k++)
		r = sd_bus_message_close_container(reply);
	return r;
}

/* Per-sample adaptive precision (docs/adaptive.md): the same figures the socket's POLICY has. */
static int append_adaptive(sd_bus_message *reply, const struct served_model *m)
{
	struct bitmix_policy_reply rep = { 0 };
	int r;

	policy_reply_adaptive(m, m->policy, &rep);
	if ((r = append_entry(reply, "precision", "s", rep.precision)) < 0 ||
	    (r = append_entry(reply, "adaptive_requests", "t", rep.adaptive_requests)) < 0 ||
	    (r = append_entry(reply, "adaptive_samples", "t", rep.adaptive_samples)) < 0 ||
	    (r = append_entry(reply, "adaptive_escalated", "t", rep.adaptive_escalated)) < 0 ||
	    (r = append_entry(reply, "adaptive_bitops_per_request", "d", rep.adaptive_bitops)) <
		    0 ||
	    (r = append_entry(reply, "adaptive_ceiling_bitops_per_request", "d",
			      rep.adaptive_ceiling_bitops)) < 0)
		return r;
	return append_entry(reply, "cost_scale", "d", rep.cost_scale);
}

/* Stats: a dictionary, so that fields can be added without breaking callers. */
static int prop_stats(sd_bus *bus, const char *path, const char *iface, const char *prop,
		      sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct served_model *m = model_of(userdata, path);
	struct gov_stats st;
	int r;

	(void)bus, (void)iface, (void)prop;
	if (!m)
		return sd_bus_error_setf(error, DBUS_ERROR_NO_SUCH_MODEL, "no model at %s", path);
	r = sd_bus_message_open_container(reply, 'a', "{sv}");
	if (r >= 0)
		r = append_entry(reply, "samples_completed", "t",
				 __atomic_load_n(&m->samples_completed, __ATOMIC_RELAXED));
	if (r >= 0 && m->policy) {
		gov_policy_stats(m->policy, now_ns(), &st);
		if ((r = append_entry(reply, "average_bits", "d",
				      gov_policy_average_bits(m->policy))) < 0 ||
		    (r = append_entry(reply, "cost_ns", "d", gov_policy_cost(m->policy))) < 0 ||
		    (r = append_entry(reply, "samples_per_second", "d",
				      gov_policy_rate(m->policy))) < 0 ||
		    (r = append_entry(reply, "transitions", "t", st.transitions)) < 0 ||
		    (r = append_entry(reply, "decisions", "t", st.decisions)) < 0 ||
		    (r = append_entry(reply, "last_decision_ns", "t", st.last_decision_ns)) < 0 ||
		    (r = append_entry(reply, "state", "u", st.state)) < 0 ||
		    (r = append_adaptive(reply, m)) < 0)
			return r;
		r = append_tables(reply, &st);
	}
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

/* One layer of CostTable: (name, allowed, measured at batch 1, at the large one, pruned, ns...). */
static int append_cost_layer(sd_bus_message *reply, const struct served_model *m,
			     const struct cost_table *t, uint32_t l)
{
	const struct cost_layer *c = &t->layers[l];
	double ns[2][7];
	int r;

	for (int bi = 0; bi < 2; bi++)
		for (int b = 2; b <= 8; b++)
			ns[bi][b - 2] = c->ns[bi][b];
	r = sd_bus_message_open_container(reply, 'r', "sqqqqadad");
	if (r >= 0)
		r = sd_bus_message_append(reply, "sqqqq", m->model->layers[l].name, c->allowed,
					  c->measured[0], c->measured[1],
					  m->policy ? gov_policy_pruned(m->policy, l) : 0);
	for (int bi = 0; r >= 0 && bi < 2; bi++)
		r = sd_bus_message_append_array(reply, 'd', ns[bi], sizeof(ns[bi]));
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

/* CostTable: (cpu, kernels, source, large batch, seconds to complete, mean batch, complete, layers). */
static int prop_cost(sd_bus *bus, const char *path, const char *iface, const char *prop,
		     sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct served_model *m = model_of(userdata, path);
	struct cost_table t = { 0 };
	uint64_t complete_ns;
	int r;

	(void)bus, (void)iface, (void)prop;
	if (!m)
		return sd_bus_error_setf(error, DBUS_ERROR_NO_SUCH_MODEL, "no model at %s", path);
	r = served_cost_snapshot(m, &t, &complete_ns);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'r', "sssuddba(sqqqqadad)");
	if (r >= 0)
		r = sd_bus_message_append(reply, "sssuddb", m->cost.key.cpu, m->cost.key.kernels,
					  m->cost.source, t.batch[1], (double)complete_ns / 1e9,
					  m->policy ? gov_policy_batch(m->policy) : 1.0,
					  (int)cost_table_complete(&t));
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(sqqqqadad)");
	for (uint32_t l = 0; r >= 0 && l < t.layer_count; l++)
		r = append_cost_layer(reply, m, &t, l);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	cost_table_free(&t);
	return r;
}

/* The model a method was called on, or an error reply. */
static struct served_model *method_model(sd_bus_message *m, struct bmx_dbus *b, sd_bus_error *error)
{
	struct served_model *model = model_of(b, sd_bus_message_get_path(m));

	if (!model)
		sd_bus_error_setf(error, DBUS_ERROR_NO_SUCH_MODEL, "no model at %s",
				  sd_bus_message_get_path(m));
	return model;
}

static int method_set_bits(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct served_model *model;
	struct bmx_layer_bits bits[BMX_MAX_LAYERS];
	uint32_t n = 0, bad;
	uint8_t w, a;
	int r;

	r = dbus_check_admin(b, m, "change bits", error);
	if (r <= 0)
		return r;
	if (!(model = method_model(m, b, error)))
		return -EINVAL;
	r = sd_bus_message_enter_container(m, 'a', "(yy)");
	while (r >= 0 && (r = sd_bus_message_read(m, "(yy)", &w, &a)) > 0) {
		if (n == model->model->layer_count)
			return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
						 "more than the %u layers of model %s", n,
						 model->name);
		bits[n++] = (struct bmx_layer_bits){ w, a };
	}
	if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
		return r;
	if (n != model->model->layer_count)
		return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
					 "%u layers given, model %s has %u", n, model->name,
					 model->model->layer_count);
	if (bmx_engine_check_bits(model->engine, bits, &bad) < 0)
		return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
					 "layer %u (%s) cannot run at w%ua%u", bad,
					 model->model->layers[bad].name, bits[bad].w_bits,
					 bits[bad].a_bits);
	if (model->policy) {
		if (gov_policy_set_user_bits(model->policy, bits) == -EBUSY)
			return sd_bus_error_setf(
				error, DBUS_ERROR_GOVERNOR_BUSY,
				"the %s governor decides the bits; switch to userspace "
				"first (SetGovernor \"userspace\")",
				gov_core_governor(b->d->governor));
	} else {
		served_model_set_bits(model, (const struct bitmix_bits *)bits);
	}
	log_info("model %s: bits set over D-Bus by %s", model->name, sd_bus_message_get_sender(m));
	return sd_bus_reply_method_return(
		m, "t", __atomic_load_n(&model->control->generation, __ATOMIC_ACQUIRE));
}

static int method_set_limits(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct bmx_governor_policy_config lim = { 0 };
	struct served_model *model;
	const char *layer;
	uint8_t lo, hi, bits;
	char why[256];
	int r;

	r = dbus_check_admin(b, m, "change limits", error);
	if (r <= 0)
		return r;
	if (!(model = method_model(m, b, error)))
		return -EINVAL;
	if (!model->policy)
		return sd_bus_error_setf(error, SD_BUS_ERROR_NOT_SUPPORTED,
					 "model %s is not governed (see the log)", model->name);
	r = sd_bus_message_read(m, "yy", &lo, &hi);
	if (r >= 0)
		r = sd_bus_message_enter_container(m, 'a', "(sy)");
	while (r >= 0 && (r = sd_bus_message_read(m, "(sy)", &layer, &bits)) > 0) {
		if (lim.n_pinned == BMX_CONFIG_MAX_PINNED)
			return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
						 "more than %d pinned layers",
						 BMX_CONFIG_MAX_PINNED);
		snprintf(lim.pinned[lim.n_pinned].layer, sizeof(lim.pinned[0].layer), "%s", layer);
		lim.pinned[lim.n_pinned++].bits = bits;
	}
	if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
		return r;
	snprintf(lim.model, sizeof(lim.model), "%s", model->name);
	lim.min_bits = lo;
	lim.max_bits = hi;
	/* Checked whole before anything changes: bad limits leave the old ones in force. */
	if (gov_policy_set_limits(model->policy, &lim, why, sizeof(why)) < 0)
		return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "%s", why);
	log_info("model %s: limits %u..%u (%zu pinned) set over D-Bus by %s", model->name, lo, hi,
		 lim.n_pinned, sd_bus_message_get_sender(m));
	return sd_bus_reply_method_return(m, NULL);
}

/* Hold(kind, value): "min-bits" 2..8 or "max-latency-ns"; anyone may hold, as on the socket. */
static int method_hold(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct served_model *model;
	enum gov_hold_kind kind;
	const char *what;
	uint64_t value, owner;
	uint32_t id;
	int r;

	if (!(model = method_model(m, b, error)))
		return -EINVAL;
	r = sd_bus_message_read(m, "st", &what, &value);
	if (r < 0)
		return r;
	if (strcmp(what, "min-bits") == 0)
		kind = GOV_HOLD_MIN_BITS;
	else if (strcmp(what, "max-latency-ns") == 0)
		kind = GOV_HOLD_MAX_LATENCY_NS;
	else
		return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
					 "hold kind \"%s\" is not min-bits or max-latency-ns",
					 what);
	if (!model->policy)
		return sd_bus_error_setf(error, SD_BUS_ERROR_NOT_SUPPORTED,
					 "model %s is not governed (see the log)", model->name);
	r = dbus_peer_owner(b, m, &owner);
	if (r < 0)
		return r;
	if (gov_core_holds_of(b->d->governor, owner) >= DBUS_HOLDS_PER_PEER)
		return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
					 "this connection holds %d already", DBUS_HOLDS_PER_PEER);
	r = gov_policy_hold(model->policy, kind, value, owner, &id);
	if (r == -EINVAL)
		return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
					 "%s %llu out of range (%s)", what,
					 (unsigned long long)value,
					 kind == GOV_HOLD_MIN_BITS ? "2..8 bits" : "1 ns..1 hour");
	if (r < 0)
		return sd_bus_error_set_errnof(error, -r, "hold: %s", strerror(-r));
	log_info("model %s: %s holds %s %llu (hold %u)", model->name, sd_bus_message_get_sender(m),
		 what, (unsigned long long)value, id);
	return sd_bus_reply_method_return(m, "u", id);
}

static int method_release(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct served_model *model;
	uint64_t owner;
	uint32_t id;
	int r;

	if (!(model = method_model(m, b, error)))
		return -EINVAL;
	r = sd_bus_message_read(m, "u", &id);
	if (r < 0)
		return r;
	r = dbus_peer_owner(b, m, &owner);
	if (r < 0)
		return r;
	r = model->policy ? gov_policy_release(model->policy, id, owner) : -ENOENT;
	if (r == -EPERM)
		return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
					 "hold %u belongs to another client", id);
	if (r < 0)
		return sd_bus_error_setf(error, DBUS_ERROR_NO_SUCH_HOLD, "model %s has no hold %u",
					 model->name, id);
	return sd_bus_reply_method_return(m, NULL);
}

#define PROP_CHANGES SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE
#define PROP_CONST SD_BUS_VTABLE_PROPERTY_CONST

static const sd_bus_vtable model_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("Name", "s", prop_get, 0, PROP_CONST),
	SD_BUS_PROPERTY("File", "s", prop_get, 0, PROP_CONST),
	SD_BUS_PROPERTY("LayerNames", "as", prop_get, 0, PROP_CONST),
	SD_BUS_PROPERTY("AvailableBits", "aay", prop_get, 0, PROP_CONST),
	SD_BUS_PROPERTY("Generation", "t", prop_get, 0, PROP_CHANGES),
	SD_BUS_PROPERTY("CurrentBits", "a(yy)", prop_get, 0, PROP_CHANGES),
	SD_BUS_PROPERTY("Limits", "(yya(sy))", prop_limits, 0, PROP_CHANGES),
	SD_BUS_PROPERTY("Holds", "a(usts)", prop_holds, 0, PROP_CHANGES),
	/* Changes all the time (time in state): read it, no signal. */
	SD_BUS_PROPERTY("Stats", "a{sv}", prop_stats, 0, 0),
	/* Completes in the background (bitmixctl cost polls it): read it, no signal. */
	SD_BUS_PROPERTY("CostTable", "(sssuddba(sqqqqadad))", prop_cost, 0, 0),
	SD_BUS_METHOD_WITH_ARGS("SetBits", SD_BUS_ARGS("a(yy)", bits),
				SD_BUS_RESULT("t", generation), method_set_bits,
				SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("SetLimits",
				SD_BUS_ARGS("y", min_bits, "y", max_bits, "a(sy)", pinned),
				SD_BUS_NO_RESULT, method_set_limits, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("Hold", SD_BUS_ARGS("s", kind, "t", value), SD_BUS_RESULT("u", id),
				method_hold, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("Release", SD_BUS_ARGS("u", id), SD_BUS_NO_RESULT, method_release,
				SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_VTABLE_END,
};

int dbus_model_register(struct bmx_dbus *b)
{
	int r = sd_bus_add_fallback_vtable(b->bus, NULL, DBUS_MODEL_PREFIX, DBUS_MODEL_IFACE,
					   model_vtable, find_model, b);

	if (r < 0)
		return r;
	return sd_bus_add_node_enumerator(b->bus, NULL, DBUS_MODEL_PREFIX, enumerate_models, b);
}
