/* SPDX-License-Identifier: MIT */
/*
 * admin.c — the administration core's common part (admin.h): its one error type and access
 * rule, and the daemon-wide calls: status, models, bits, governor, tunables and reload.
 * admin_policy.c has a model's policy (holds, limits, statistics, cost), admin_load.c loading
 * and unloading. No transport is known here: the socket and D-Bus marshal to these calls.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "admin_internal.h"
#include "bitmix-config.h"
#include "log.h"

int admin_fail(struct admin_error *err, int code, enum admin_fault fault, const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	err->fault = fault;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

bool admin_is_admin(const struct bmx_daemon *d, uid_t uid, gid_t gid, const gid_t *groups,
		    size_t n_groups)
{
	return bmx_config_is_admin(d->config, uid, gid, groups, n_groups);
}

int admin_require(struct bmx_daemon *d, const struct admin_caller *c, const char *what,
		  struct admin_error *err)
{
	if (c->may_administer)
		return 0;
	log_info("%s (uid %d) may not %s", c->who, (int)c->uid, what);
	if (c->uid == (uid_t)-1)
		return admin_fail(err, -EPERM, ADMIN_FAULT_ACCESS,
				  "a caller of unknown uid may not %s", what);
	return admin_fail(err, -EPERM, ADMIN_FAULT_ACCESS,
			  "uid %u may not %s: that needs root, bitmixd's own user, or a user or "
			  "group of access.set_bits or dbus.admin_users/admin_groups in %s",
			  (unsigned)c->uid, what, d->config->source_path);
}

struct served_model *admin_model(struct bmx_daemon *d, const char *name, struct admin_error *err)
{
	struct served_model *m = model_store_find(&d->store, name);

	if (!m)
		admin_fail(err, -ENOENT, ADMIN_FAULT_NO_MODEL,
			   "no model called \"%s\" (see `bitmixctl models`)", name);
	return m;
}

int admin_status(struct bmx_daemon *d, const struct admin_caller *c, struct admin_status *out,
		 struct admin_error *err)
{
	(void)c, (void)err;
	*out = (struct admin_status){ 0 };
	snprintf(out->version, sizeof(out->version), "%s", BITMIX_VERSION);
	out->uptime_ns = now_ns() - d->start_ns;
	out->requests_completed = __atomic_load_n(&d->requests_completed, __ATOMIC_RELAXED);
	out->requests_failed = __atomic_load_n(&d->requests_failed, __ATOMIC_RELAXED);
	out->dropped_on_close = __atomic_load_n(&d->dropped_on_close, __ATOMIC_RELAXED);
	out->clients = d->n_sessions;
	out->models = (uint32_t)d->store.count;
	out->workers = d->pool ? worker_pool_size(d->pool) : 0;
	snprintf(out->doorbell, sizeof(out->doorbell), "%s", doorbell_name(d->doorbell));
	snprintf(out->kernels, sizeof(out->kernels), "%s",
		 bmx_kernels_name(bmx_kernels_resolve((enum bmx_kernels_path)d->config->kernels)));
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp((*(struct served_model *const *)a)->name,
		      (*(struct served_model *const *)b)->name);
}

int admin_models(struct bmx_daemon *d, const struct admin_caller *c, struct admin_models *out,
		 struct admin_error *err)
{
	(void)c, (void)err;
	out->n = d->store.count < BMX_CONFIG_MAX_MODELS ? d->store.count : BMX_CONFIG_MAX_MODELS;
	memcpy(out->models, d->store.models, out->n * sizeof(out->models[0]));
	qsort(out->models, out->n, sizeof(out->models[0]), by_name);
	return 0;
}

int admin_bits_get(struct bmx_daemon *d, const struct admin_caller *c,
		   const struct served_model *model, struct admin_bits *out,
		   struct admin_error *err)
{
	(void)d, (void)c, (void)err;
	out->generation = served_model_snapshot(model, out->bits);
	out->layer_count = model->model->layer_count;
	return 0;
}

int admin_bits_set(struct bmx_daemon *d, const struct admin_caller *c, struct served_model *model,
		   const struct bmx_layer_bits *bits, uint32_t n, uint64_t *generation,
		   struct admin_error *err)
{
	uint32_t bad;
	int r;

	r = admin_require(d, c, "change bits", err);
	if (r < 0)
		return r;
	if (!model)
		return admin_fail(err, -EBADF, ADMIN_FAULT_NO_MODEL,
				  "no such model is served (or it is not open on this connection)");
	if (model->retired)
		return admin_fail(err, -ENODEV, ADMIN_FAULT_NO_MODEL, "model %s was unloaded",
				  model->name);
	if (n != model->model->layer_count)
		return admin_fail(err, -EINVAL, ADMIN_FAULT_ARGS,
				  "%u layers given, model %s has %u", n, model->name,
				  model->model->layer_count);
	if (bmx_engine_check_bits(model->engine, bits, &bad) < 0)
		return admin_fail(err, -EINVAL, ADMIN_FAULT_ARGS,
				  "layer %u (%s) cannot run at w%ua%u", bad,
				  model->model->layers[bad].name, bits[bad].w_bits,
				  bits[bad].a_bits);
	if (model->policy) {
		if (gov_policy_set_user_bits(model->policy, bits) == -EBUSY)
			return admin_fail(err, -EBUSY, ADMIN_FAULT_BUSY,
					  "the %s governor decides the bits; switch to userspace "
					  "first (bitmixctl governor userspace)",
					  gov_core_governor(d->governor));
	} else {
		static_assert(sizeof(struct bitmix_bits) == sizeof(struct bmx_layer_bits),
			      "one layout for a layer's bits");
		served_model_set_bits(model, (const struct bitmix_bits *)bits);
	}
	*generation = __atomic_load_n(&model->control->generation, __ATOMIC_ACQUIRE);
	log_info("model %s: bits set by %s, generation %llu", model->name, c->who,
		 (unsigned long long)*generation);
	return 0;
}

int admin_governor_get(struct bmx_daemon *d, const struct admin_caller *c,
		       struct admin_governor *out, struct admin_error *err)
{
	struct gov_core *g = d->governor;

	(void)c, (void)err;
	*out = (struct admin_governor){ 0 };
	snprintf(out->name, sizeof(out->name), "%s", g ? gov_core_governor(g) : "none");
	snprintf(out->available, sizeof(out->available), "%s", gov_available());
	snprintf(out->fallback, sizeof(out->fallback), "%s", g ? gov_core_fallback_reason(g) : "");
	if (g) {
		out->policies = (uint32_t)gov_core_policy_count(g);
		gov_core_cap_stats(g, now_ns(), &out->cap);
	}
	return 0;
}

int admin_governor_check(struct bmx_daemon *d, const struct admin_caller *c, const char *name,
			 struct admin_error *err)
{
	int r = admin_require(d, c, "change the governor", err);

	if (r < 0)
		return r;
	if (!d->governor)
		return admin_fail(err, -ENODEV, ADMIN_FAULT_INTERNAL, "no governor is running");
	if (!gov_find(name))
		return admin_fail(err, -ENOENT, ADMIN_FAULT_NO_GOVERNOR,
				  "no governor \"%s\" (available: %s)", name, gov_available());
	return 0;
}

int admin_governor_set(struct bmx_daemon *d, const struct admin_caller *c, const char *name,
		       struct admin_error *err)
{
	char why[256];
	int r;

	r = admin_governor_check(d, c, name, err);
	if (r < 0)
		return r;
	r = gov_core_set_governor(d->governor, name, now_ns(), why, sizeof(why));
	if (r < 0) {
		log_warning("governor: %s", why);
		return admin_fail(err, r, ADMIN_FAULT_FALLBACK, "%s", why);
	}
	log_info("governor: %s, set by %s", name, c->who);
	return 0;
}

const struct bmx_governor_config *admin_tunables_get(struct bmx_daemon *d,
						     const struct admin_caller *c)
{
	(void)c;
	return d->governor ? gov_core_config(d->governor) : NULL;
}

int admin_tunables_set(struct bmx_daemon *d, const struct admin_caller *c, const char *name,
		       const struct bmx_governor_config *cfg, struct admin_error *err)
{
	int r = admin_governor_check(d, c, name, err);

	if (r < 0)
		return r;
	r = gov_core_configure(d->governor, cfg, now_ns());
	if (r < 0)
		return admin_fail(err, r, ADMIN_FAULT_FALLBACK, "%s",
				  gov_core_fallback_reason(d->governor));
	log_info("governor: %s with new tunables, set by %s (until the next reload)", name, c->who);
	return 0;
}

int admin_reload(struct bmx_daemon *d, const struct admin_caller *c, struct admin_error *err)
{
	struct bmx_config_error why = { .msg = "" };
	int r;

	r = admin_require(d, c, "reload bitmixd", err);
	if (r < 0)
		return r;
	log_info("%s asked for a reload", c->who);
	r = daemon_reload(d, &why);
	if (r < 0)
		return admin_fail(err, r, ADMIN_FAULT_RELOAD, "%s",
				  why.msg[0] ? why.msg : strerror(-r));
	return 0;
}
