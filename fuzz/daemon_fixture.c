/* SPDX-License-Identifier: MIT */
/*
 * daemon_fixture.c — the bitmixd behind fuzz_proto and fuzz_dbus: what main.c's run() sets up
 * before the event loop (config, models, sensors, governor), in a private folder, once per
 * process. Between inputs it is put back into the same state, so that an input replays alike.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon_fixture.h"
#include "log.h"

static struct bmx_daemon daemon_ctx;
static char dir[64];

static void write_config(const char *path, const char *model)
{
	FILE *f = fopen(path, "w");

	if (!f)
		abort();
	fprintf(f,
		"socket: %s/bitmixd.sock\n"
		"workers: 1\n"
		"log_level: error\n"
		"models:\n"
		"  tiny: %s\n"
		"sensors:\n"
		"  source: simulator\n"
		"governor:\n"
		"  name: userspace\n",
		dir, model);
	fclose(f);
}

/* Wait for M's cost table to be complete: then the cache holds it (see fuzz_daemon_start). */
static void wait_cost_complete(struct served_model *m)
{
	for (int i = 0; i < 60000; i++) {
		uint64_t done;

		pthread_mutex_lock(&m->cost.lock);
		done = m->cost.complete_ns;
		pthread_mutex_unlock(&m->cost.lock);
		if (done && (!m->cost.cache_path[0] || access(m->cost.cache_path, R_OK) == 0))
			return; /* and saved: the thread saves right after it publishes */
		usleep(10000);
	}
}

static struct served_model *load(const char *name, const char *path)
{
	struct bmx_daemon *d = &daemon_ctx;
	struct served_model *m;

	if (served_model_load(name, path, d->store.next_id, d->config->kernels, &m) < 0 ||
	    model_store_add(&d->store, m) < 0)
		abort();
	daemon_governor_add_model(d, m);
	return m;
}

struct bmx_daemon *fuzz_daemon_start(void)
{
	struct bmx_daemon *d = &daemon_ctx;
	struct bmx_config_error err;
	char path[128];

	bmx_log_set_level(LOG_EMERG);
	snprintf(dir, sizeof(dir), "/tmp/bmx-fuzz-daemon.XXXXXX");
	if (!mkdtemp(dir))
		abort();
	/*
	 * The cost tables, never in a system folder: measuring one takes a thread seconds (and
	 * unloading the model joins it), so they are measured once, when the folder is new, and
	 * read from it by every later load of "tiny" and "tiny2" (the names LoadModel may use).
	 */
	if (!getenv("BITMIX_FUZZ_CACHE")) {
		char cache[4096];

		if (!getcwd(cache, sizeof(cache) - 32))
			abort();
		strcat(cache, "/fuzz-cost-cache");
		mkdir(cache, 0700);
		setenv("BITMIX_FUZZ_CACHE", cache, 1);
	}
	setenv("CACHE_DIRECTORY", getenv("BITMIX_FUZZ_CACHE"), 1);
	snprintf(path, sizeof(path), "%s/bitmixd.yaml", dir);
	write_config(path, FUZZ_MODEL_PATH);
	if (bmx_config_load(path, &d->config, &err) < 0) {
		fprintf(stderr, "fuzz: %s\n", err.msg);
		abort();
	}
	bmx_log_set_level(LOG_EMERG);
	d->config_path = strdup(path);
	d->start_ns = now_ns();
	d->listen_fd = d->signal_fd = -1;
	d->doorbell = BITMIX_DOORBELL_FUTEX;
	if (model_store_load(&d->store, d->config) < 0 || sensor_loop_open(d) < 0 ||
	    daemon_governor_start(d) < 0) {
		fprintf(stderr, "fuzz: cannot set up the daemon (model %s)\n", FUZZ_MODEL_PATH);
		abort();
	}
	wait_cost_complete(model_store_find(&d->store, "tiny"));
	wait_cost_complete(load("tiny2", FUZZ_MODEL2_PATH));
	fuzz_daemon_reset();
	return d;
}

void fuzz_daemon_reset(void)
{
	struct bmx_daemon *d = &daemon_ctx;
	struct model_store *store = &d->store;
	struct served_model *m;
	char why[256];

	/* As UnloadModel does (dbus_manager.c), for every model but "tiny". */
	for (size_t i = store->count; i-- > 0;) {
		m = store->models[i];
		if (strcmp(m->name, "tiny") == 0)
			continue;
		m->retired = true;
		daemon_governor_remove_model(d, m);
		model_store_remove(store, m);
	}
	if (!model_store_find(store, "tiny")) /* as LoadModel does */
		load("tiny", FUZZ_MODEL_PATH);
	if (strcmp(gov_core_governor(d->governor), "userspace") != 0)
		gov_core_set_governor(d->governor, "userspace", now_ns(), why, sizeof(why));
}
