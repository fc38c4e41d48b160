/* SPDX-License-Identifier: MIT */
/*
 * dbus_model.c — one object per served model, /org/bitmix/Daemon1/model/<escaped name>,
 * interface org.bitmix.Model1: its operating point (CurrentBits, Generation), what it allows
 * (AvailableBits, LayerNames), its policy (Limits, Holds, Stats), its per-layer cost table
 * (CostTable) and the methods that change them (SetBits, SetLimits, Hold, Release). Each
 * property and method marshals to the admin core (admin.h), which checks and does the work.
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
	struct admin_caller c = { .uid = (uid_t)-1, .who = "D-Bus" };
	struct admin_error err = { 0 };
	struct admin_bits bits;
	int r;

	admin_bits_get(NULL, &c, model, &bits, &err);
	if (generation)
		*generation = bits.generation;
	r = sd_bus_message_open_container(m, 'a', "(yy)");
	for (uint32_t l = 0; r >= 0 && l < bits.layer_count; l++)
		r = sd_bus_message_append(m, "(yy)", bits.bits[l].w_bits, bits.bits[l].a_bits);
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

/* A caller that only reads: properties are open to everyone the bus policy lets through. */
#define READER                                   \
	{                                        \
		.uid = (uid_t)-1, .who = "D-Bus" \
	}

static int prop_limits(sd_bus *bus, const char *path, const char *iface, const char *prop,
		       sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct served_model *m = model_of(b, path);
	struct bmx_governor_policy_config lim;
	struct admin_caller c = READER;
	struct admin_error err = { 0 };
	int r;

	(void)bus, (void)iface, (void)prop;
	if (!m)
		return sd_bus_error_setf(error, DBUS_ERROR_NO_SUCH_MODEL, "no model at %s", path);
	if (admin_limits_get(b->d, &c, m->name, &lim, &err) < 0)
		return dbus_admin_error(error, &err);
	r = sd_bus_message_open_container(reply, 'r', "yya(sy)");
	if (r >= 0)
		r = sd_bus_message_append(reply, "yy", (uint8_t)lim.min_bits,
					  (uint8_t)lim.max_bits);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(sy)");
	for (size_t i = 0; r >= 0 && i < lim.n_pinned; i++)
		r = sd_bus_message_append(reply, "(sy)", lim.pinned[i].layer,
					  (uint8_t)lim.pinned[i].bits);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int prop_holds(sd_bus *bus, const char *path, const char *iface, const char *prop,
		      sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct served_model *m = model_of(b, path);
	struct admin_hold holds[GOV_MAX_HOLDS];
	struct admin_caller c = READER;
	struct admin_error err = { 0 };
	size_t n = 0;
	int r;

	(void)bus, (void)iface, (void)prop;
	if (!m)
		return sd_bus_error_setf(error, DBUS_ERROR_NO_SUCH_MODEL, "no model at %s", path);
	if (admin_holds(b->d, &c, m->name, holds, GOV_MAX_HOLDS, &n, &err) < 0)
		return dbus_admin_error(error, &err);
	r = sd_bus_message_open_container(reply, 'a', "(usts)");
	for (size_t i = 0; r >= 0 && i < n && i < GOV_MAX_HOLDS; i++)
		r = sd_bus_message_append(reply, "(usts)", holds[i].id,
					  admin_hold_kind_name(holds[i].kind), holds[i].value,
					  holds[i].owner_name);
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
static int append_adaptive(sd_bus_message *reply, const struct admin_stats *st)
{
	int r;

	if ((r = append_entry(reply, "precision", "s", st->precision)) < 0 ||
	    (r = append_entry(reply, "adaptive_requests", "t", st->adaptive_requests)) < 0 ||
	    (r = append_entry(reply, "adaptive_samples", "t", st->adaptive_samples)) < 0 ||
	    (r = append_entry(reply, "adaptive_escalated", "t", st->adaptive_escalated)) < 0 ||
	    (r = append_entry(reply, "adaptive_bitops_per_request", "d", st->adaptive_bitops)) <
		    0 ||
	    (r = append_entry(reply, "adaptive_ceiling_bitops_per_request", "d",
			      st->adaptive_ceiling_bitops)) < 0)
		return r;
	return append_entry(reply, "cost_scale", "d", st->cost_scale);
}

/* The policy's figures beside its statistics: limits and QoS, as the socket's POLICY has. */
static int append_policy(sd_bus_message *reply, const struct admin_stats *st)
{
	int r;

	if ((r = append_entry(reply, "average_bits", "d", st->average_bits)) < 0 ||
	    (r = append_entry(reply, "cost_ns", "d", st->cost_ns)) < 0 ||
	    (r = append_entry(reply, "samples_per_second", "d", st->rate)) < 0 ||
	    (r = append_entry(reply, "min_bits", "y", st->min_bits)) < 0 ||
	    (r = append_entry(reply, "max_bits", "y", st->max_bits)) < 0 ||
	    (r = append_entry(reply, "floor_bits", "y", st->floor_bits)) < 0 ||
	    (r = append_entry(reply, "max_latency_ns", "t", st->max_latency_ns)) < 0 ||
	    (r = append_entry(reply, "holds", "u", st->holds)) < 0 ||
	    (r = append_entry(reply, "transitions", "t", st->gov.transitions)) < 0 ||
	    (r = append_entry(reply, "decisions", "t", st->gov.decisions)) < 0 ||
	    (r = append_entry(reply, "last_decision_ns", "t", st->gov.last_decision_ns)) < 0 ||
	    (r = append_entry(reply, "state", "u", st->gov.state)) < 0 ||
	    (r = append_adaptive(reply, st)) < 0)
		return r;
	return append_tables(reply, &st->gov);
}

/* Stats: a dictionary, so that fields can be added without breaking callers. */
static int prop_stats(sd_bus *bus, const char *path, const char *iface, const char *prop,
		      sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct served_model *m = model_of(b, path);
	struct admin_caller c = READER;
	struct admin_error err = { 0 };
	struct admin_stats st;
	int r;

	(void)bus, (void)iface, (void)prop;
	if (!m)
		return sd_bus_error_setf(error, DBUS_ERROR_NO_SUCH_MODEL, "no model at %s", path);
	if (admin_stats(b->d, &c, m->name, &st, &err) < 0)
		return dbus_admin_error(error, &err);
	r = sd_bus_message_open_container(reply, 'a', "{sv}");
	if (r >= 0)
		r = append_entry(reply, "samples_completed", "t", st.samples_completed);
	if (r >= 0 && st.governed)
		r = append_policy(reply, &st);
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

/* One layer of CostTable: (name, allowed, measured at batch 1, at the large one, pruned, ns...). */
static int append_cost_layer(sd_bus_message *reply, const struct admin_cost *cost, uint32_t l)
{
	const struct cost_layer *c = &cost->table.layers[l];
	double ns[2][7];
	int r;

	for (int bi = 0; bi < 2; bi++)
		for (int b = 2; b <= 8; b++)
			ns[bi][b - 2] = c->ns[bi][b];
	r = sd_bus_message_open_container(reply, 'r', "sqqqqadad");
	if (r >= 0)
		r = sd_bus_message_append(reply, "sqqqq", cost->model->model->layers[l].name,
					  c->allowed, c->measured[0], c->measured[1],
					  cost->pruned[l]);
	for (int bi = 0; r >= 0 && bi < 2; bi++)
		r = sd_bus_message_append_array(reply, 'd', ns[bi], sizeof(ns[bi]));
	return r < 0 ? r : sd_bus_message_close_container(reply);
}

/* CostTable: (cpu, kernels, source, large batch, seconds to complete, mean batch, complete, layers). */
static int prop_cost(sd_bus *bus, const char *path, const char *iface, const char *prop,
		     sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct served_model *m = model_of(b, path);
	struct admin_caller c = READER;
	struct admin_error err = { 0 };
	struct admin_cost cost;
	int r;

	(void)bus, (void)iface, (void)prop;
	if (!m)
		return sd_bus_error_setf(error, DBUS_ERROR_NO_SUCH_MODEL, "no model at %s", path);
	if (admin_cost(b->d, &c, m->name, &cost, &err) < 0)
		return dbus_admin_error(error, &err);
	r = sd_bus_message_open_container(reply, 'r', "sssuddba(sqqqqadad)");
	if (r >= 0)
		r = sd_bus_message_append(reply, "sssuddb", cost.cpu, cost.kernels, cost.source,
					  cost.large_batch, cost.complete_s, cost.batch,
					  (int)cost.complete);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(sqqqqadad)");
	for (uint32_t l = 0; r >= 0 && l < cost.layer_count; l++)
		r = append_cost_layer(reply, &cost, l);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	admin_cost_free(&cost);
	return r;
}

static int method_set_bits(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct served_model *model = model_of(b, sd_bus_message_get_path(m));
	struct bmx_layer_bits bits[BMX_MAX_LAYERS];
	struct admin_error err = { 0 };
	struct admin_caller c;
	uint64_t generation;
	char who[96];
	uint32_t n = 0;
	uint8_t w, a;
	int r;

	r = dbus_caller(b, m, DBUS_CALLER_ADMIN, &c, who, sizeof(who));
	if (r >= 0)
		r = sd_bus_message_enter_container(m, 'a', "(yy)");
	while (r >= 0 && (r = sd_bus_message_read(m, "(yy)", &w, &a)) > 0) {
		if (n == BMX_MAX_LAYERS)
			return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
						 "more than %d layers", BMX_MAX_LAYERS);
		bits[n++] = (struct bmx_layer_bits){ w, a };
	}
	if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
		return r;
	if (admin_bits_set(b->d, &c, model, bits, n, &generation, &err) < 0)
		return dbus_admin_error(error, &err);
	return sd_bus_reply_method_return(m, "t", generation);
}

/* The name of the model at the method's path, or NULL with ERROR set. */
static const char *method_model(struct bmx_dbus *b, sd_bus_message *m, sd_bus_error *error)
{
	struct served_model *model = model_of(b, sd_bus_message_get_path(m));

	if (!model)
		sd_bus_error_setf(error, DBUS_ERROR_NO_SUCH_MODEL, "no model at %s",
				  sd_bus_message_get_path(m));
	return model ? model->name : NULL;
}

static int method_set_limits(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct bmx_governor_policy_config lim = { 0 };
	struct admin_error err = { 0 };
	struct admin_caller c;
	const char *model, *layer;
	uint8_t lo, hi, bits;
	char who[96];
	int r;

	if (!(model = method_model(b, m, error)))
		return -ENOENT;
	r = dbus_caller(b, m, DBUS_CALLER_ADMIN, &c, who, sizeof(who));
	if (r >= 0)
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
	lim.min_bits = lo;
	lim.max_bits = hi;
	if (admin_limits_set(b->d, &c, model, &lim, &err) < 0)
		return dbus_admin_error(error, &err);
	return sd_bus_reply_method_return(m, NULL);
}

/* Hold(kind, value): "min-bits" 2..8 or "max-latency-ns"; anyone may hold, as on the socket. */
static int method_hold(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct admin_error err = { 0 };
	struct admin_caller c;
	const char *model, *kind;
	uint64_t value;
	char who[96];
	uint32_t id;
	int r;

	if (!(model = method_model(b, m, error)))
		return -ENOENT;
	r = sd_bus_message_read(m, "st", &kind, &value);
	if (r >= 0)
		r = dbus_caller(b, m, DBUS_CALLER_OWNER, &c, who, sizeof(who));
	if (r < 0)
		return r;
	if (admin_hold(b->d, &c, model, admin_hold_kind_parse(kind), value, &id, &err) < 0)
		return dbus_admin_error(error, &err);
	return sd_bus_reply_method_return(m, "u", id);
}

static int method_release(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct admin_error err = { 0 };
	struct admin_caller c;
	const char *model;
	char who[96];
	uint32_t id;
	int r;

	if (!(model = method_model(b, m, error)))
		return -ENOENT;
	r = sd_bus_message_read(m, "u", &id);
	if (r >= 0)
		r = dbus_caller(b, m, DBUS_CALLER_OWNER, &c, who, sizeof(who));
	if (r < 0)
		return r;
	if (admin_release(b->d, &c, model, id, &err) < 0)
		return dbus_admin_error(error, &err);
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
