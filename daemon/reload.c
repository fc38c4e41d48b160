/* SPDX-License-Identifier: MIT */
/*
 * reload.c — take a new configuration while serving: SIGHUP, `bitmixctl reload`
 * (= systemctl reload) and D-Bus all end here. Everything new is prepared beside the running
 * state and swapped in only when all of it is good.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "log.h"

/*
 * Reload (SIGHUP, `bitmixctl reload` = systemctl reload, D-Bus): parse the main file and its
 * drop-ins, open the sensors, load new or changed models and check the governor's limits
 * against them, all while the running state keeps serving; swap only if all of it is good.
 * Returns 0, or -errno with ERR saying (file:line:column where it can) why the running
 * configuration was kept. systemd hears RELOADING=1 before and READY=1 after, either way.
 */
int daemon_reload(struct bmx_daemon *d, struct bmx_config_error *err)
{
	struct bmx_config *next;
	struct sensors *next_sensors;
	struct served_model **models;
	size_t failed = 0;
	const char *kept = "sensors"; /* what failed to come up, in the log */
	int r;

	log_info("reloading %s", d->config_path);
	daemon_systemd_reloading();
	r = bmx_config_load(d->config_path, &next, err);
	if (r < 0) {
		log_error("reload failed, keeping the running configuration: %s", err->msg);
		daemon_systemd_ready(d);
		return r;
	}
	if (strcmp(next->socket_path, d->config->socket_path) != 0 ||
	    next->workers != d->config->workers)
		log_warning("reload: socket and workers changes take effect at the next restart");
	if (memcmp(&next->ipc, &d->config->ipc, sizeof(next->ipc)) != 0)
		log_warning("reload: ipc changes take effect at the next restart");
	r = sensor_loop_prepare_reload(d, next, &next_sensors, err);
	if (r < 0)
		goto fail_config;
	kept = "models";
	r = model_store_prepare(&d->store, next, &models, &failed);
	if (r < 0) {
		snprintf(err->msg, sizeof(err->msg),
			 "%s: models.%s: %s could not be loaded: %s (the log says more)",
			 next->models[failed].where, next->models[failed].name,
			 next->models[failed].path, strerror(-r));
		goto fail_sensors;
	}
	r = daemon_governor_check(next, models, next->n_models, err);
	if (r < 0) {
		model_store_abort(models, next->n_models);
		goto fail_sensors;
	}
	model_store_commit(&d->store, models, next->n_models);
	sensor_loop_swap(d, next_sensors, next);
	daemon_governor_reload(d, next);
	bmx_log_set_level(next->log_level);
	bmx_config_free(d->config);
	d->config = next;
	log_info("reloaded: %zu model(s)", d->store.count);
	daemon_systemd_ready(d);
	return 0;

fail_sensors:
	sensors_close(next_sensors);
fail_config:
	log_error("reload failed, keeping the running configuration and %s: %s", kept, err->msg);
	bmx_config_free(next);
	daemon_systemd_ready(d);
	return r;
}
