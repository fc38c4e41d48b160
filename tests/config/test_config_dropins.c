/* SPDX-License-Identifier: MIT */
/*
 * test_config_dropins.c — the main file merged with its conf.d/ drop-ins (config/README.md,
 * "Drop-ins"): lexical order, mappings merged key by key, lists and scalars replaced, masking,
 * and errors naming the drop-in's own file:line:column; and what must never stall a reload: a
 * FIFO or a device for a file, nesting that only a full parse would measure (issue 21).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"

struct tree {
	char dir[64];
	char main[128];
};

static void put(const struct tree *t, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", t->dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	struct tree *t = calloc(1, sizeof(*t));
	char confd[128];

	snprintf(t->dir, sizeof(t->dir), "/tmp/bmx-dropins.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->main, sizeof(t->main), "%s/bitmixd.yaml", t->dir);
	snprintf(confd, sizeof(confd), "%s/conf.d", t->dir);
	assert_int_equal(mkdir(confd, 0755), 0);
	put(t, "bitmixd.yaml",
	    "log_level: info\n"
	    "models:\n"
	    "  a: /m/a.bmx\n"
	    "access:\n"
	    "  set_bits:\n"
	    "    users: [0, 1001]\n"
	    "governor:\n"
	    "  name: power_allocator\n"
	    "  power_allocator: {control_temp_c: 70, switch_on_temp_c: 50}\n"
	    "  step_wise:\n"
	    "    trips: [{temp: 60, hysteresis: 2}, {temp: 70, hysteresis: 2}]\n");
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct tree *t = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	assert_int_equal(system(cmd), 0);
	free(t);
	return 0;
}

static struct bmx_config *load_ok(const struct tree *t)
{
	struct bmx_config_error err;
	struct bmx_config *c;

	if (bmx_config_load(t->main, &c, &err) < 0)
		fail_msg("%s", err.msg);
	return c;
}

static void test_no_dropins(void **state)
{
	struct bmx_config *c = load_ok(*state);

	assert_int_equal(c->n_models, 1);
	assert_string_equal(c->governor.name, "power_allocator");
	bmx_config_free(c);
}

static void test_merge_rules(void **state)
{
	struct tree *t = *state;
	struct bmx_config *c;

	/* 20 before 50 whatever the order they were written in; 50 has the last word. */
	put(t, "conf.d/50-late.yaml", "governor:\n  name: step_wise\nlog_level: debug\n");
	put(t, "conf.d/20-early.yaml",
	    "governor:\n"
	    "  name: powersave\n"
	    "  power_allocator: {control_temp_c: 80}\n"
	    "  step_wise:\n"
	    "    trips: [{temp: 90, hysteresis: 1}]\n"
	    "models:\n"
	    "  b: /m/b.bmx\n"
	    "access: {set_bits: {users: [1002]}}\n");
	put(t, "conf.d/README", "not: yaml: at all: [\n"); /* not *.yaml: ignored */
	c = load_ok(t);
	assert_string_equal(c->governor.name, "step_wise");
	assert_int_equal(c->log_level, LOG_DEBUG);
	/* Mappings merged key by key: control_temp_c changed, switch_on_temp_c kept. */
	assert_true(c->governor.power_allocator.control_temp_c == 80);
	assert_true(c->governor.power_allocator.switch_on_temp_c == 50);
	/* Lists replaced whole. */
	assert_int_equal(c->governor.step_wise.n_trips, 1);
	assert_true(c->governor.step_wise.trips[0].temp_c == 90);
	assert_int_equal(c->n_set_bits_uids, 1);
	assert_int_equal(c->set_bits_uids[0], 1002);
	/* A model added by a drop-in. */
	assert_int_equal(c->n_models, 2);
	assert_non_null(bmx_config_find_model(c, "b"));
	bmx_config_free(c);
}

static void test_masked(void **state)
{
	struct tree *t = *state;
	char path[256];
	struct bmx_config *c;

	put(t, "conf.d/50-broken.yaml", "log_level: loud\n");
	snprintf(path, sizeof(path), "%s/conf.d/50-broken.yaml", t->dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink("/dev/null", path), 0);
	put(t, "conf.d/60-empty.yaml", "");
	c = load_ok(t);
	assert_int_equal(c->log_level, LOG_INFO);
	bmx_config_free(c);
}

static void expect_error(const struct tree *t, const char *name, const char *text,
			 const char *where, const char *what)
{
	struct bmx_config_error err;
	struct bmx_config *c;
	char want[512];

	put(t, name, text);
	assert_int_equal(bmx_config_load(t->main, &c, &err), -EINVAL);
	snprintf(want, sizeof(want), "%s/%s:%s", t->dir, name, where);
	if (!strstr(err.msg, want) || !strstr(err.msg, what))
		fail_msg("message \"%s\" lacks \"%s\" or \"%s\"", err.msg, want, what);
}

static void test_errors_name_the_dropin(void **state)
{
	struct tree *t = *state;

	expect_error(t, "conf.d/50-x.yaml", "# a comment\nlog_level: loud\n",
		     "2:12:", "log_level: \"loud\" is not one of");
	expect_error(t, "conf.d/50-x.yaml", "governor:\n  power_allocator:\n    k_i: -1\n",
		     "3:10:", "k_i");
	expect_error(t, "conf.d/50-x.yaml", "governor:\n  nmae: x\n",
		     "2:3:", "unknown key \"nmae\"");
	expect_error(t, "conf.d/50-x.yaml", "log_level: info\nlog_level: debug\n",
		     "2:1:", "duplicate key \"log_level\"");
	expect_error(t, "conf.d/50-x.yaml", "- a list\n", "1:1:", "a drop-in must be a mapping");
	expect_error(t, "conf.d/50-x.yaml", "models: {a: [1\n", "", "YAML syntax error");
	expect_error(t, "conf.d/50-x.yaml", "governor: &g\n  step_wise: {trips: *g}\n", "",
		     "nested deeper than 32 levels");
	expect_error(t, "conf.d/50-x.yaml",
		     "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
		     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
		     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
		     "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
		     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
		     "", "more than 100000 values");
	/* A later drop-in replacing the bad value makes the set valid again. */
	put(t, "conf.d/50-x.yaml", "log_level: loud\n");
	put(t, "conf.d/60-fix.yaml", "log_level: warning\n");
	struct bmx_config *c = load_ok(t);
	assert_int_equal(c->log_level, LOG_WARNING);
	bmx_config_free(c);
}

static void test_policy_location(void **state)
{
	struct tree *t = *state;
	struct bmx_config *c;
	char want[256];

	put(t, "conf.d/30-policy.yaml", "governor:\n  policies:\n    a: {pinned: {conv1: 4}}\n");
	c = load_ok(t);
	snprintf(want, sizeof(want), "%s/conf.d/30-policy.yaml:3:5", t->dir);
	assert_string_equal(bmx_config_policy(c, "a")->where, want);
	bmx_config_free(c);
}

/* A FIFO nobody writes to, as a drop-in and as the main file: an error, not a hang. */
static void test_fifo(void **state)
{
	struct tree *t = *state;
	struct bmx_config_error err;
	struct bmx_config *c;
	char path[256];

	alarm(120); /* safety net: before the fix, open() waited for a writer forever */
	snprintf(path, sizeof(path), "%s/conf.d/50-fifo.yaml", t->dir);
	assert_int_equal(mkfifo(path, 0644), 0);
	assert_int_equal(bmx_config_load(t->main, &c, &err), -EINVAL);
	if (!strstr(err.msg, path) || !strstr(err.msg, "a FIFO, expected a regular YAML file"))
		fail_msg("message \"%s\"", err.msg);
	assert_int_equal(bmx_config_load(path, &c, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "a FIFO"));
	alarm(0);
}

/* A drop-in that is a device other than /dev/null is named, not read as empty. */
static void test_device(void **state)
{
	struct tree *t = *state;
	struct bmx_config_error err;
	struct bmx_config *c;
	char path[256];

	snprintf(path, sizeof(path), "%s/conf.d/50-zero.yaml", t->dir);
	assert_int_equal(symlink("/dev/zero", path), 0);
	assert_int_equal(bmx_config_load(t->main, &c, &err), -EINVAL);
	if (!strstr(err.msg, path) || !strstr(err.msg, "a character device"))
		fail_msg("message \"%s\"", err.msg);
}

/* A second document is an error, not silently ignored. */
static void test_second_document(void **state)
{
	expect_error(*state, "conf.d/50-x.yaml", "log_level: info\n---\nlog_level: loud\n",
		     "2:1:", "a second YAML document");
	expect_error(*state, "bitmixd.yaml", "models: {a: /m/a.bmx}\n...\n---\n{}\n",
		     "3:1:", "a second YAML document");
}

/*
 * 50k unclosed "[": the depth limit stops the parse at the 33rd, so the error is the depth,
 * not the syntax error at the end that a full parse reaches first (after seconds).
 */
static void test_deep_nesting(void **state)
{
	size_t n = 50000;
	char *text = malloc(n + 16);
	struct bmx_config_error err;
	struct bmx_config *c;
	int r;

	(void)state;
	assert_non_null(text);
	memcpy(text, "models: ", 8);
	memset(text + 8, '[', n);
	text[8 + n] = 0;
	r = bmx_config_load_string("deep.yaml", text, &c, &err);
	free(text);
	assert_int_equal(r, -EINVAL);
	/* The 32nd "[" is the 33rd level (the top-level mapping is the first). */
	if (!strstr(err.msg, "deep.yaml:1:40: nested deeper than 32 levels"))
		fail_msg("message \"%s\"", err.msg);
}

/*
 * Files are read into buffers of their own size: a drop-in of exactly 1 MiB (YAML comments and
 * one key at its end) is read whole and merged; one byte more is refused by name.
 */
static void test_size_cap(void **state)
{
	struct tree *t = *state;
	const size_t cap = 1u << 20;
	const char *tail = "log_level: debug\n";
	char *text = malloc(cap + 2);
	struct bmx_config_error err;
	struct bmx_config *c;

	assert_non_null(text);
	memset(text, '#', cap);
	for (size_t i = 79; i < cap; i += 80)
		text[i] = '\n';
	memcpy(text + cap - strlen(tail), tail, strlen(tail));
	text[cap - strlen(tail) - 1] = '\n';
	text[cap] = 0;
	put(t, "conf.d/50-big.yaml", text);
	c = load_ok(t);
	assert_int_equal(c->log_level, LOG_DEBUG);
	bmx_config_free(c);

	memcpy(text + cap - strlen(tail), "#", 1);
	memcpy(text + cap - strlen(tail) + 1, tail, strlen(tail));
	text[cap + 1] = 0;
	put(t, "conf.d/50-big.yaml", text);
	free(text);
	assert_int_equal(bmx_config_load(t->main, &c, &err), -EFBIG);
	if (!strstr(err.msg, "50-big.yaml: larger than 1 MiB"))
		fail_msg("message \"%s\"", err.msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_dropins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_masked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors_name_the_dropin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_location, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_document, setup, teardown),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test_setup_teardown(test_size_cap, setup, teardown),
	};

	return cmocka_run_group_tests_name("config-dropins", tests, NULL, NULL);
}
