/* SPDX-License-Identifier: MIT */
/*
 * test_reload.c — the RELOAD message and `bitmixctl reload` (what systemd's ExecReload runs)
 * against a live bitmixd: a broken drop-in is refused with its file:line:column and the daemon
 * keeps serving as it was; policy limits the model cannot meet and a model that cannot load are
 * refused before anything is swapped; a good drop-in applies; only root (or the daemon's own
 * user) may reload.
 * Usage: test_reload BITMIXD MODEL.bmx BITMIXCTL
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "bitmix.h"
#include "daemon_harness.h"

static void put_dropin(const struct daemon_harness *h, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/conf.d", h->dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/conf.d/%s", h->dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void remove_dropin(const struct daemon_harness *h, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/conf.d/%s", h->dir, name);
	unlink(path);
}

/* The governor the harness's config starts (userspace: tests set bits themselves). */
#define START_GOVERNOR "userspace"

static void governor_is(const struct daemon_harness *h, const char *name)
{
	struct bitmix_governor_info info;
	struct bitmix *bm;

	assert_int_equal(bitmix_connect(h->socket, &bm), 0);
	assert_int_equal(bitmix_governor(bm, NULL, &info), 0);
	assert_string_equal(info.name, name);
	bitmix_close(bm);
}

/* Reload; returns its status with the reason in WHY. */
static int reload(const struct daemon_harness *h, char *why, size_t size)
{
	struct bitmix *bm;
	int r;

	assert_int_equal(bitmix_connect(h->socket, &bm), 0);
	r = bitmix_reload(bm, why, size);
	bitmix_close(bm);
	return r;
}

static void test_broken_dropin_is_located_and_kept_out(void **state)
{
	struct daemon_harness *h = *state;
	char why[BITMIX_RELOAD_WHY_MAX], want[256];

	governor_is(h, START_GOVERNOR);
	put_dropin(h, "50-test.yaml", "governor:\n  name: powersave\nlog_level: loud\n");
	assert_int_equal(reload(h, why, sizeof(why)), -EINVAL);
	snprintf(want, sizeof(want), "%s/conf.d/50-test.yaml:3:12: log_level", h->dir);
	if (!strstr(why, want))
		fail_msg("\"%s\" lacks \"%s\"", why, want);
	assert_true(harness_log_contains(h, want, 2000));
	governor_is(h, START_GOVERNOR); /* nothing of the drop-in applied */
	remove_dropin(h, "50-test.yaml");
}

static void test_good_dropin_applies(void **state)
{
	struct daemon_harness *h = *state;
	char why[BITMIX_RELOAD_WHY_MAX];

	put_dropin(h, "50-test.yaml", "governor:\n  name: powersave\n");
	assert_int_equal(reload(h, why, sizeof(why)), 0);
	assert_string_equal(why, "");
	governor_is(h, "powersave");
	remove_dropin(h, "50-test.yaml");
	assert_int_equal(reload(h, why, sizeof(why)), 0);
	governor_is(h, START_GOVERNOR);
}

/* Limits are checked against the model before the swap: the running policy stays. */
static void test_policy_checked_before_swap(void **state)
{
	struct daemon_harness *h = *state;
	char why[BITMIX_RELOAD_WHY_MAX], want[256];

	put_dropin(
		h, "60-policy.yaml",
		"governor:\n  name: powersave\n  policies:\n    fmnist: {pinned: {nosuch: 4}}\n");
	assert_int_equal(reload(h, why, sizeof(why)), -EINVAL);
	snprintf(want, sizeof(want), "%s/conf.d/60-policy.yaml:4:5: governor.policies.fmnist",
		 h->dir);
	if (!strstr(why, want) || !strstr(why, "no layer \"nosuch\""))
		fail_msg("\"%s\" lacks \"%s\"", why, want);
	governor_is(h, START_GOVERNOR);
	remove_dropin(h, "60-policy.yaml");
}

static void test_unloadable_model_keeps_the_old_set(void **state)
{
	struct daemon_harness *h = *state;
	char why[BITMIX_RELOAD_WHY_MAX];
	struct bitmix_model_info infos[4];
	struct bitmix *bm;

	put_dropin(h, "70-model.yaml", "models:\n  fmnist: /nonexistent/model.bmx\n");
	assert_true(reload(h, why, sizeof(why)) < 0);
	if (!strstr(why,
		    "conf.d/70-model.yaml:2:11: models.fmnist: /nonexistent/model.bmx could not be loaded"))
		fail_msg("%s", why);
	assert_int_equal(bitmix_connect(h->socket, &bm), 0);
	assert_int_equal(bitmix_list_models(bm, infos, 4), 1);
	bitmix_close(bm);
	remove_dropin(h, "70-model.yaml");
}

/* A FIFO as a drop-in or as a model's path: a named error, never a daemon stuck in open(). */
static void test_fifo_is_refused(void **state)
{
	struct daemon_harness *h = *state;
	char why[BITMIX_RELOAD_WHY_MAX], path[256], yaml[400];

	alarm(240); /* safety net: before the fix the reload waited in open() for a writer */
	snprintf(path, sizeof(path), "%s/conf.d", h->dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/conf.d/80-fifo.yaml", h->dir);
	assert_int_equal(mkfifo(path, 0644), 0);
	assert_int_equal(reload(h, why, sizeof(why)), -EINVAL);
	if (!strstr(why, path) || !strstr(why, "a FIFO, expected a regular YAML file"))
		fail_msg("%s", why);
	unlink(path);
	snprintf(path, sizeof(path), "%s/model.fifo", h->dir);
	assert_int_equal(mkfifo(path, 0644), 0);
	snprintf(yaml, sizeof(yaml), "models:\n  other: %s\n", path);
	put_dropin(h, "80-model.yaml", yaml);
	assert_true(reload(h, why, sizeof(why)) < 0);
	if (!strstr(why, "models.other") || !strstr(why, "could not be loaded"))
		fail_msg("%s", why);
	assert_true(harness_log_contains(h, "model.fifo is not a regular file", 2000));
	governor_is(h, START_GOVERNOR); /* served all along, the old configuration kept */
	remove_dropin(h, "80-model.yaml");
	unlink(path);
	alarm(0);
}

/*
 * A model moved to a new file: the old copy serves until the new one has loaded, and a client
 * that opened the old one keeps inferring on it after the swap.
 */
static void test_model_replaced_by_reload(void **state)
{
	struct daemon_harness *h = *state;
	char why[BITMIX_RELOAD_WHY_MAX], cmd[512], text[256];
	struct bitmix_model *old, *fresh;
	struct bitmix *bm;
	float *in, *out;

	assert_int_equal(bitmix_connect(h->socket, &bm), 0);
	assert_int_equal(bitmix_open_model(bm, "fmnist", &old), 0);
	in = bitmix_tensor_alloc(bm, 28 * 28 * 4);
	out = bitmix_tensor_alloc(bm, 10 * 4);
	assert_non_null(in);
	assert_non_null(out);
	memset(in, 0, 28 * 28 * 4);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s/copy.bmx'", harness_model, h->dir);
	assert_int_equal(system(cmd), 0);
	snprintf(text, sizeof(text), "models:\n  fmnist: %s/copy.bmx\n", h->dir);
	put_dropin(h, "70-model.yaml", text);
	assert_int_equal(reload(h, why, sizeof(why)), 0);
	snprintf(text, sizeof(text), "model fmnist: loaded %s/copy.bmx", h->dir);
	assert_true(harness_log_contains(h, text, 2000));
	assert_int_equal(bitmix_infer(old, in, out, 1, NULL), 0);
	assert_int_equal(bitmix_open_model(bm, "fmnist", &fresh), 0);
	assert_int_equal(bitmix_infer(fresh, in, out, 1, NULL), 0);
	bitmix_close(bm);
	remove_dropin(h, "70-model.yaml");
	assert_int_equal(reload(h, why, sizeof(why)), 0);
}

/* bitmixctl reload: systemd's ExecReload= fails exactly when the daemon kept its config. */
static void test_bitmixctl_reload(void **state)
{
	struct daemon_harness *h = *state;
	char out[2048];

	put_dropin(h, "50-test.yaml", "workers: many\n");
	assert_int_equal(harness_ctl(h, out, sizeof(out), "reload"), 1);
	assert_non_null(strstr(out, "50-test.yaml:1:10: workers"));
	assert_non_null(strstr(out, "keeps its running configuration"));
	remove_dropin(h, "50-test.yaml");
	assert_int_equal(harness_ctl(h, out, sizeof(out), "reload"), 0);
	assert_non_null(strstr(out, "reloaded"));
	assert_int_equal(harness_ctl(h, out, sizeof(out), "reload now"), 2);
}

/* The child's part of the permission test, as nobody: may connect, may not reload. */
static int reload_as_nobody(void *arg)
{
	const struct daemon_harness *h = arg;
	char why[BITMIX_RELOAD_WHY_MAX];
	struct bitmix *bm;

	if (bitmix_connect(h->socket, &bm) < 0)
		return 11;
	return bitmix_reload(bm, why, sizeof(why)) == -EPERM && strstr(why, "needs root") ? 0 : 12;
}

/* Anyone may connect (the test socket is 0666); only root and the daemon's uid may reload. */
static void test_reload_needs_root(void **state)
{
	harness_run_as_nobody(reload_as_nobody, *state);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_broken_dropin_is_located_and_kept_out),
		cmocka_unit_test(test_good_dropin_applies),
		cmocka_unit_test(test_policy_checked_before_swap),
		cmocka_unit_test(test_unloadable_model_keeps_the_old_set),
		cmocka_unit_test(test_fifo_is_refused),
		cmocka_unit_test(test_model_replaced_by_reload),
		cmocka_unit_test(test_bitmixctl_reload),
		cmocka_unit_test(test_reload_needs_root),
	};

	if (harness_args(argc, argv, true) < 0)
		return 2;
	return cmocka_run_group_tests_name("reload", tests, harness_group_setup,
					   harness_group_teardown);
}
