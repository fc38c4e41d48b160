/* SPDX-License-Identifier: MIT */
/*
 * daemon_governor.c — the daemon's side of the governor: one policy per served model (costed by
 * its per-layer cost table, daemon_cost.c), a decision on every sensor reading, and the actuator
 * that publishes new bits in the model's control page, and the one that caps the workers' work
 * (governor_cap.c). Loop thread only.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "log.h"

static void publish(void *userdata, const struct bmx_layer_bits *bits)
{
	struct served_model *m = userdata;
	uint64_t g = served_model_set_bits(m, (const struct bitmix_bits *)bits);

	log_debug("model %s: governor published generation %llu", m->name, (unsigned long long)g);
}

static int add_policy(struct bmx_daemon *d, const struct bmx_config *config, struct served_model *m)
{
	const struct bmx_model *model = m->model;
	uint32_t n = model->layer_count;
	const char **names = calloc(n, sizeof(*names));
	uint16_t *masks = calloc(n, sizeof(*masks));
	uint64_t *macs = calloc(n, sizeof(*macs));
	const float **sens = calloc(n, sizeof(*sens));
	struct bmx_layer_bits *initial = calloc(n, sizeof(*initial));
	struct gov_layer_cost *costs = NULL;
	char why[256] = "";
	int r = -ENOMEM;

	served_adaptive_set_default(m, bmx_config_policy(config, m->name)->precision,
				    config->source_path);
	if (!names || !masks || !macs || !sens || !initial ||
	    served_cost_layer_costs(m, &costs) < 0)
		goto out;
	for (uint32_t l = 0; l < n; l++) {
		names[l] = model->layers[l].name;
		masks[l] = model->layers[l].bits_mask;
		macs[l] = model->layers[l].macs;
		sens[l] = model->views[l].sensitivity;
	}
	served_model_snapshot(m, initial);
	struct gov_model_desc desc = {
		.name = m->name,
		.layer_count = n,
		.layer_names = names,
		.bits_mask = masks,
		.macs = macs,
		.sensitivity = sens,
		.uniform_ns = m->uniform_ns,
		.initial = initial,
		.layer_costs = costs,
		.large_batch = m->cost.table.batch[1],
	};
	r = gov_core_add_policy(d->governor, &desc, bmx_config_policy(config, m->name), publish, m,
				now_ns(), &m->policy, why, sizeof(why));
	if (r < 0) {
		log_error(
			"%s: governor.policies: %s; the model runs at its default bits, ungoverned",
			config->source_path, why);
		goto out;
	}
	served_model_ref(m); /* the policy's */
	gov_policy_set_floor_observer(m->policy, served_adaptive_set_floor);
	m->daemon = d;
out:
	free(names);
	free(masks);
	free(macs);
	free(sens);
	free(initial);
	free(costs);
	return r;
}

static void remove_policy(struct bmx_daemon *d, struct served_model *m)
{
	gov_core_remove_policy(d->governor, m->policy);
	m->policy = NULL;
	served_model_unref(m);
}

static void start_governor(struct bmx_daemon *d, const char *name)
{
	char why[256];

	if (gov_core_set_governor(d->governor, name, now_ns(), why, sizeof(why)) < 0)
		log_warning("governor: %s", why);
	else
		log_info("governor: %s", name);
}

/* The actuator of the second cooling device: the workers' token bucket. */
static void publish_cap(void *userdata, double cpus)
{
	struct bmx_daemon *d = userdata;

	if (d->pool)
		worker_pool_set_work_cap(d->pool, cpus);
	if (cpus > 0)
		log_debug("governor: work capped at %.2f CPUs", cpus);
	else
		log_debug("governor: work uncapped");
}

int daemon_governor_start(struct bmx_daemon *d)
{
	int r = gov_core_new(&d->config->governor, &d->governor);

	if (r < 0)
		return log_error_errno(r, "creating the governor");
	gov_core_set_capacity(d->governor, worker_pool_size(d->pool));
	gov_core_set_cap_fn(d->governor, publish_cap, d);
	if (d->reading.have)
		gov_core_update(d->governor, &d->reading);
	for (size_t i = 0; i < d->store.count; i++)
		add_policy(d, d->config, d->store.models[i]);
	start_governor(d, d->config->governor.name);
	return 0;
}

/* Tunables other than the policies' limits: a change restarts the governor. */
static bool tunables_changed(const struct bmx_governor_config *a,
			     const struct bmx_governor_config *b)
{
	return memcmp(a, b, offsetof(struct bmx_governor_config, policies)) != 0;
}

/* Called with the new store in place and NEXT about to become the config. */
void daemon_governor_reload(struct bmx_daemon *d, const struct bmx_config *next)
{
	char why[256];

	if (!d->governor)
		return;
	/* Departed or replaced models: their policies (and the policies' refs) go. */
	for (size_t i = gov_core_policy_count(d->governor); i-- > 0;) {
		struct served_model *m = gov_policy_userdata(gov_core_policy(d->governor, i));

		if (!model_store_contains(&d->store, m))
			remove_policy(d, m);
	}
	if (tunables_changed(gov_core_config(d->governor), &next->governor)) {
		gov_core_configure(d->governor, &next->governor, now_ns());
		log_info("governor: %s with the reloaded tunables", gov_core_governor(d->governor));
		if (*gov_core_fallback_reason(d->governor))
			log_warning("governor: %s", gov_core_fallback_reason(d->governor));
	}
	for (size_t i = 0; i < d->store.count; i++) {
		struct served_model *m = d->store.models[i];

		if (!m->policy) {
			add_policy(d, next, m);
			continue;
		}
		served_adaptive_set_default(m, bmx_config_policy(next, m->name)->precision,
					    next->source_path);
		if (gov_policy_set_limits(m->policy, bmx_config_policy(next, m->name), why,
					  sizeof(why)) < 0)
			log_error("%s: governor.policies: %s; keeping the model's previous limits",
				  next->source_path, why);
	}
}

/* A pinned layer by name, or by index as governor_policy.c also accepts. */
static int find_layer(const struct bmx_model *model, const char *layer)
{
	char *end;
	long i;

	for (uint32_t l = 0; l < model->layer_count; l++)
		if (strcmp(model->layers[l].name, layer) == 0)
			return (int)l;
	i = strtol(layer, &end, 10);
	return *layer && !*end && i >= 0 && i < (long)model->layer_count ? (int)i : -1;
}

int daemon_governor_check(const struct bmx_config *next, struct served_model *const *models,
			  size_t count, struct bmx_config_error *err)
{
	for (size_t i = 0; i < count; i++) {
		const struct bmx_governor_policy_config *lim =
			bmx_config_policy(next, models[i]->name);
		const char *where = lim->where[0] ? lim->where : next->source_path;

		for (size_t k = 0; k < lim->n_pinned; k++) {
			int l = find_layer(models[i]->model, lim->pinned[k].layer);

			if (l < 0) {
				snprintf(
					err->msg, sizeof(err->msg),
					"%s: governor.policies.%s.pinned: model %s has no layer \"%s\"",
					where, models[i]->name, models[i]->name,
					lim->pinned[k].layer);
				return -EINVAL;
			}
			if (!(models[i]->model->layers[l].bits_mask &
			      (1u << lim->pinned[k].bits))) {
				snprintf(
					err->msg, sizeof(err->msg),
					"%s: governor.policies.%s.pinned: layer \"%s\" was not trained for %u bits",
					where, models[i]->name, lim->pinned[k].layer,
					lim->pinned[k].bits);
				return -EINVAL;
			}
		}
	}
	return 0;
}

int daemon_governor_add_model(struct bmx_daemon *d, struct served_model *m)
{
	if (!d->governor || m->policy)
		return 0;
	return add_policy(d, d->config, m);
}

void daemon_governor_remove_model(struct bmx_daemon *d, struct served_model *m)
{
	if (d->governor && m->policy)
		remove_policy(d, m);
}

void daemon_governor_tick(struct bmx_daemon *d)
{
	uint64_t now = now_ns();

	if (!d->governor)
		return;
	gov_core_set_capacity(d->governor, worker_pool_size(d->pool));
	gov_core_observe_work(d->governor, d->work_total_ns, worker_pool_occupied_ns(d->pool),
			      worker_pool_throttled_ns(d->pool), now);
	for (size_t i = 0; i < d->store.count; i++) {
		struct served_model *m = d->store.models[i];

		if (m->policy) {
			gov_policy_observe(m->policy,
					   __atomic_load_n(&m->samples_completed, __ATOMIC_RELAXED),
					   now);
			served_adaptive_tick(m);
			served_cost_tick(m);
		}
	}
	gov_core_update(d->governor, &d->reading);
}

void daemon_governor_stop(struct bmx_daemon *d)
{
	if (!d->governor)
		return;
	while (gov_core_policy_count(d->governor))
		remove_policy(d, gov_policy_userdata(gov_core_policy(d->governor, 0)));
	gov_core_free(d->governor);
	d->governor = NULL;
}
