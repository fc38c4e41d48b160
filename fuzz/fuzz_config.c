/* SPDX-License-Identifier: MIT */
/*
 * fuzz_config.c — libFuzzer target for bitmixd's YAML configuration: the main file, its conf.d/
 * drop-ins merged into it (daemon/config/config_merge.c) and every block parser (daemon/config_*.c).
 *
 * The input is up to three files separated by a line "#@dropin": the main bitmixd.yaml, then
 * conf.d/10-a.yaml and conf.d/20-b.yaml. They are written into a private folder under
 * $TMPDIR (/dev/shm when it exists) and loaded by bmx_config_load(), exactly as bitmixd loads
 * /etc/bitmix/bitmixd.yaml at start and on every reload. A config that loads is also asked the
 * questions the daemon asks of it later (policies, admin rights, model names).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SEPARATOR "#@dropin\n"

static const char *const files[] = { "bitmixd.yaml", "conf.d/10-a.yaml", "conf.d/20-b.yaml" };
static char dir[64];

static void remove_dir(void)
{
	char path[128];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/conf.d", dir);
	rmdir(path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[128];

	(void)argc;
	(void)argv;
	bmx_log_set_level(LOG_EMERG); /* errors come back in bmx_config_error, not on stderr */
	snprintf(dir, sizeof(dir), "%s/bmx-fuzz-config.XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/conf.d", dir);
	if (mkdir(path, 0700) < 0)
		abort();
	atexit(remove_dir);
	return 0;
}

static void write_file(const char *name, const uint8_t *data, size_t size)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!data) {
		unlink(path);
		return;
	}
	f = fopen(path, "w");
	if (!f)
		abort();
	if (size && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
}

/* What the daemon asks of a loaded config (event_loop.c, dbus_access.c, daemon_governor.c). */
static void use_config(const struct bmx_config *c)
{
	const gid_t groups[] = { 0, 100, 1000 };

	for (size_t i = 0; i < c->n_models; i++) {
		if (!bmx_config_name_ok(c->models[i].name) ||
		    bmx_config_find_model(c, c->models[i].name) == NULL || !c->models[i].path)
			abort(); /* the loader promised valid, findable names and a path */
		bmx_config_policy(c, c->models[i].name);
	}
	bmx_config_policy(c, "no-such-model");
	bmx_config_is_admin(c, 1000, 1000, groups, 3);
	bmx_config_is_admin(c, 0, 0, NULL, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *part = data, *end = data + size;
	struct bmx_config *config = NULL;
	struct bmx_config_error err;
	char path[128];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		const uint8_t *sep = NULL;

		if (part && i + 1 < sizeof(files) / sizeof(files[0]))
			sep = memmem(part, (size_t)(end - part), SEPARATOR, strlen(SEPARATOR));
		if (!part) {
			write_file(files[i], NULL, 0);
			continue;
		}
		write_file(files[i], part, (size_t)((sep ? sep : end) - part));
		part = sep ? sep + strlen(SEPARATOR) : NULL;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, files[0]);
	memset(&err, 0, sizeof(err));
	if (bmx_config_load(path, &config, &err) == 0) {
		use_config(config);
		bmx_config_free(config);
	} else if (!memchr(err.msg, 0, sizeof(err.msg)) || !err.msg[0]) {
		abort(); /* every refusal explains itself */
	}
	return 0;
}
