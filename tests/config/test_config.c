/* SPDX-License-Identifier: MIT */
/*
 * test_config.c — bitmixd's YAML configuration: what parses, what each mistake is called, and
 * where (file:line:column, key path, expected values); and the log helpers.
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

#include "config.h"
#include "log.h"

static void test_full_config(void **state)
{
	const char *text = "socket: /tmp/x.sock\n"
			   "workers: 3\n"
			   "log_level: debug\n"
			   "models:\n"
			   "  a: /m/a.bmx\n"
			   "  b.v2: rel/b.bmx\n"
			   "access:\n"
			   "  set_bits:\n"
			   "    users: [root, 1001]\n"
			   "    groups: [0]\n";
	struct bmx_config_error err = { { 0 } };
	struct bmx_config *c;
	char expect[4200], cwd[4096];

	(void)state;
	assert_int_equal(bmx_config_load_string("t.yaml", text, &c, &err), 0);
	assert_string_equal(c->socket_path, "/tmp/x.sock");
	assert_int_equal(c->workers, 3);
	assert_int_equal(c->log_level, LOG_DEBUG);
	assert_int_equal(c->n_models, 2);
	assert_string_equal(c->models[0].name, "a");
	assert_string_equal(c->models[0].path, "/m/a.bmx");
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	snprintf(expect, sizeof(expect), "%s/rel/b.bmx", cwd);
	assert_string_equal(c->models[1].path, expect);
	assert_int_equal(c->n_set_bits_uids, 2);
	assert_int_equal(c->set_bits_uids[0], 0);
	assert_int_equal(c->set_bits_uids[1], 1001);
	assert_int_equal(c->n_set_bits_gids, 1);
	assert_ptr_equal(bmx_config_find_model(c, "b.v2"), &c->models[1]);
	assert_null(bmx_config_find_model(c, "zzz"));
	bmx_config_free(c);
}

static void test_defaults(void **state)
{
	struct bmx_config_error err;
	struct bmx_config *c;

	(void)state;
	assert_int_equal(bmx_config_load_string("t.yaml", "models: {m: /x.bmx}\n", &c, &err), 0);
	assert_string_equal(c->socket_path, "/run/bitmix/bitmixd.sock");
	assert_int_equal(c->workers, (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
	assert_int_equal(c->log_level, LOG_INFO);
	assert_int_equal(c->n_set_bits_uids, 0);
	assert_int_equal(c->kernels, 0); /* auto */
	bmx_config_free(c);
	assert_int_equal(bmx_config_load_string("t.yaml", "models: {m: /x.bmx}\nkernels: avx2\n",
						&c, &err),
			 0);
	assert_int_equal(c->kernels, 2);
	bmx_config_free(c);
	assert_int_equal(bmx_config_load_string("t.yaml", "models: {m: /x.bmx}\nkernels: avxvnni\n",
						&c, &err),
			 0);
	assert_int_equal(c->kernels, 4); /* BMX_KERNELS_AVXVNNI */
	bmx_config_free(c);
}

/* A relative model path resolves against the config file's folder, not the cwd. */
static void test_relative_to_file(void **state)
{
	char dir[] = "/tmp/bitmix-config-XXXXXX", path[128], expect[160];
	struct bmx_config_error err;
	struct bmx_config *c;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/b.yaml", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("models:\n  m: sub/m.bmx\n", f);
	fclose(f);
	assert_int_equal(bmx_config_load(path, &c, &err), 0);
	snprintf(expect, sizeof(expect), "%s/sub/m.bmx", dir);
	assert_string_equal(c->models[0].path, expect);
	assert_string_equal(c->source_path, path);
	bmx_config_free(c);
	unlink(path);
	rmdir(dir);
}

static void test_missing_file(void **state)
{
	struct bmx_config_error err;
	struct bmx_config *c = (void *)1;

	(void)state;
	assert_int_equal(bmx_config_load("/nonexistent/x.yaml", &c, &err), -ENOENT);
	assert_null(c);
	assert_non_null(strstr(err.msg, "/nonexistent/x.yaml: cannot open"));
}

/* Each bad config: the text, and substrings the message must hold. */
static const struct {
	const char *text;
	const char *want[3];
} bad[] = {
	{ "models: {m: /x}\nworker: 3\n",
	  { "t.yaml:2:1: unknown key \"worker\"",
	    "socket, workers, log_level, models, model_folders, governor, sensors, access, kernels, ipc, limits, dbus" } },
	{ "models: {m: /x}\nipc:\n  doorbell: pipe\n",
	  { "3:13", "ipc.doorbell", "auto, futex, eventfd" } },
	{ "models: {m: /x}\nipc:\n  spin_us: -1\n", { "3:12", "ipc.spin_us", "0..1000000" } },
	{ "models: {m: /x}\nipc:\n  spin: 5\n",
	  { "3:3", "unknown key \"spin\"", "doorbell, spin_us" } },
	{ "models: {m: /x}\nlimits:\n  in_flight: 0\n", { "3:14", "limits.in_flight", "1..1024" } },
	{ "models: {m: /x}\nlimits:\n  regions: 65\n", { "3:12", "limits.regions", "1..64" } },
	{ "models: {m: /x}\nlimits:\n  mapped_bytes: 12X\n",
	  { "3:17", "limits.mapped_bytes", "1M to 1T" } },
	{ "models: {m: /x}\nlimits:\n  mapped_bytes: 4K\n", { "limits.mapped_bytes", "1M to 1T" } },
	{ "models: {m: /x}\nlimits:\n  connections: 4\n",
	  { "3:3", "unknown key \"connections\"", "connections_per_uid" } },
	{ "models: {m: /x}\nlimits: 5\n", { "2:9", "limits", "expected a mapping" } },
	{ "models: {m: /x}\nworkers: many\n",
	  { "t.yaml:2:10:", "workers: \"many\" is not a number 1..256" } },
	{ "models: {m: /x}\nworkers: 0\n", { "2:10", "workers" } },
	{ "models: {m: /x}\nworkers: 99999999999999999999\n", { "2:10", "not a number" } },
	{ "models: {m: /x}\nlog_level: verbose\n",
	  { "t.yaml:2:12:", "log_level: \"verbose\"", "error, warning, info, debug" } },
	{ "models: {m: /x}\nsocket: relative.sock\n", { "2:9", "socket", "not an absolute path" } },
	{ "models: {m: /x}\nsocket: /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	  { "socket", "fit a unix socket" } },
	{ "socket: /x.sock\n", { "no \"models\" key" } },
	{ "models: {}\n", { "models", "no models" } },
	{ "models: [a, b]\n", { "1:9", "models", "found a list, expected a mapping" } },
	{ "models:\n  bad/name: /x\n", { "2:3", "\"bad/name\" is not a model name" } },
	{ "models:\n  m: [1]\n", { "2:6", "models.m", "expected a scalar" } },
	{ "models:\n  m: /x\n  m: /y\n", { "3:3", "duplicate key \"m\" (first at line 2)" } },
	{ "models: {m: /x}\nmodels: {n: /y}\n", { "2:1", "duplicate key \"models\"" } },
	{ "models: {m: /x}\naccess:\n  set_bits:\n    users: [no-such-user-here]\n",
	  { "4:13", "access.set_bits.users[0]", "no user called \"no-such-user-here\"" } },
	{ "models: {m: /x}\naccess:\n  set_bits:\n    groups: [root, no-such-group-x]\n",
	  { "4:20", "access.set_bits.groups[1]", "no group called" } },
	{ "models: {m: /x}\naccess:\n  set_bit: {}\n",
	  { "3:3", "unknown key \"set_bit\"", "set_bits" } },
	{ "models: {m: /x}\naccess:\n  set_bits:\n    user: []\n",
	  { "4:5", "expected one of: users, groups" } },
	{ "models: {m: /x}\naccess:\n  set_bits:\n    users: root\n",
	  { "4:12", "found a scalar, expected a list" } },
	{ "models: {m: /x\n", { "YAML syntax error" } },
	{ "models:\n  m: /x\n   bad indent: 1\n", { "YAML syntax error", "t.yaml:3:" } },
	{ "", { "the file is empty" } },
	{ "models: {m: /x}\nkernels: sse\n",
	  { "2:10", "kernels", "not one of: auto, ref, avx2, avx512" } },
	{ "models: {m: /x}\nkernels: [ref]\n", { "2:10", "kernels", "expected a scalar" } },
	{ "- a\n- b\n", { "top level", "found a list, expected a mapping" } },
	{ "models: {m: /x}\ndbus:\n  bus: kernel\n",
	  { "3:8", "dbus.bus", "auto, system, session, none, address" } },
	{ "models: {m: /x}\ndbus:\n  address: /run/bus\n",
	  { "3:12", "dbus.address", "not a D-Bus address" } },
	{ "models: {m: /x}\ndbus:\n  bus: system\n  address: unix:path=/x\n",
	  { "3:3", "address is set but bus is not \"address\"" } },
	{ "models: {m: /x}\ndbus:\n  bus: address\n", { "dbus", "no address is given" } },
	{ "models: {m: /x}\ndbus:\n  admin_users: [nosuchuser-xyz]\n",
	  { "3:17", "dbus.admin_users[0]", "no user called \"nosuchuser-xyz\"" } },
	{ "models: {m: /x}\ndbus:\n  admin_groups: wheel\n",
	  { "3:17", "dbus.admin_groups", "expected a list" } },
	{ "models: {m: /x}\ndbus:\n  admins: []\n",
	  { "3:3", "unknown key \"admins\"", "bus, address, admin_users, admin_groups" } },
};

/* The dbus: block, and the admin rule the socket and D-Bus share. */
static void test_dbus_block(void **state)
{
	struct bmx_config_error err;
	struct bmx_config *c;
	gid_t groups[] = { 7, 0 };

	(void)state;
	assert_int_equal(bmx_config_load_string("t.yaml", "models: {m: /x}\n", &c, &err), 0);
	assert_int_equal(c->dbus.bus, BMX_DBUS_AUTO);
	assert_true(bmx_config_is_admin(c, 0, 0, NULL, 0));
	assert_false(bmx_config_is_admin(c, 54321, 54321, NULL, 0));
	assert_true(bmx_config_is_admin(c, geteuid(), 54321, NULL, 0)); /* the daemon's own user */
	bmx_config_free(c);
	assert_int_equal(
		bmx_config_load_string(
			"t.yaml",
			"models: {m: /x}\ndbus:\n  address: unix:path=/tmp/b\n  admin_users: [root, 1000]\n"
			"  admin_groups: [root, 4242]\naccess:\n  set_bits:\n    users: [2000]\n",
			&c, &err),
		0);
	assert_int_equal(c->dbus.bus, BMX_DBUS_ADDRESS);
	assert_string_equal(c->dbus.address, "unix:path=/tmp/b");
	assert_int_equal(c->dbus.n_admin_uids, 2);
	assert_int_equal(c->dbus.admin_uids[1], 1000);
	assert_true(bmx_config_is_admin(c, 1000, 1000, NULL, 0));     /* dbus.admin_users */
	assert_true(bmx_config_is_admin(c, 2000, 2000, NULL, 0));     /* access.set_bits.users */
	assert_true(bmx_config_is_admin(c, 54321, 4242, NULL, 0));    /* primary group */
	assert_true(bmx_config_is_admin(c, 54321, 54321, groups, 2)); /* supplementary group 0 */
	assert_false(bmx_config_is_admin(c, 54321, 54321, groups, 1));
	bmx_config_free(c);
	assert_int_equal(bmx_config_load_string("t.yaml", "models: {m: /x}\ndbus: {bus: none}\n",
						&c, &err),
			 0);
	assert_int_equal(c->dbus.bus, BMX_DBUS_NONE);
	bmx_config_free(c);
}

/* The ipc: and limits: blocks: defaults, and every key read. */
static void test_ipc_and_limits(void **state)
{
	struct bmx_config_error err;
	struct bmx_config *c;

	(void)state;
	assert_int_equal(bmx_config_load_string("t.yaml", "models: {m: /x}\n", &c, &err), 0);
	assert_int_equal(c->ipc.doorbell, BMX_DOORBELL_AUTO);
	assert_int_equal(c->ipc.spin_us, 20);
	assert_int_equal(c->limits.in_flight, 1024);
	assert_int_equal(c->limits.mapped_bytes, 1ull << 30);
	bmx_config_free(c);
	assert_int_equal(
		bmx_config_load_string(
			"t.yaml",
			"models: {m: /x}\nipc:\n  doorbell: eventfd\n  spin_us: 0\nlimits:\n  in_flight: 8\n"
			"  regions: 3\n  mapped_bytes: 2GiB\n  connections_per_uid: 5\n",
			&c, &err),
		0);
	assert_int_equal(c->ipc.doorbell, BMX_DOORBELL_EVENTFD);
	assert_int_equal(c->ipc.spin_us, 0);
	assert_int_equal(c->limits.in_flight, 8);
	assert_int_equal(c->limits.regions, 3);
	assert_int_equal(c->limits.mapped_bytes, 2ull << 30);
	assert_int_equal(c->limits.connections_per_uid, 5);
	bmx_config_free(c);
}

static void test_bad_configs(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct bmx_config_error err = { { 0 } };
		struct bmx_config *c = (void *)1;

		if (bmx_config_load_string("t.yaml", bad[i].text, &c, &err) != -EINVAL)
			fail_msg("case %zu was accepted: %s", i, bad[i].text);
		assert_null(c);
		for (int k = 0; k < 3 && bad[i].want[k]; k++)
			if (!strstr(err.msg, bad[i].want[k]))
				fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, err.msg,
					 bad[i].want[k]);
	}
}

static void test_bundled_config(void **state)
{
	const char *path = getenv("BITMIX_DEFAULT_CONFIG");
	struct bmx_config_error err;
	struct bmx_config *c;

	(void)state;
	assert_non_null(path);
	if (bmx_config_load(path, &c, &err) < 0)
		fail_msg("%s", err.msg);
	assert_non_null(bmx_config_find_model(c, "fmnist"));
	bmx_config_free(c);
}

static void test_log_helpers(void **state)
{
	(void)state;
	assert_int_equal(bmx_log_level_from_string("error"), LOG_ERR);
	assert_int_equal(bmx_log_level_from_string("warning"), LOG_WARNING);
	assert_int_equal(bmx_log_level_from_string("debug"), LOG_DEBUG);
	assert_int_equal(bmx_log_level_from_string("loud"), -EINVAL);
	bmx_log_set_level(LOG_ERR);
	assert_int_equal(bmx_log_get_level(), LOG_ERR);
	assert_int_equal(bmx_log_errno(LOG_DEBUG, ENOENT, "quiet"), -ENOENT);
	assert_int_equal(bmx_log_errno(LOG_DEBUG, -EPERM, "quiet"), -EPERM);
	bmx_log_set_level(LOG_INFO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_config),	 cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_relative_to_file), cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_bad_configs),	 cmocka_unit_test(test_bundled_config),
		cmocka_unit_test(test_ipc_and_limits),	 cmocka_unit_test(test_dbus_block),
		cmocka_unit_test(test_log_helpers),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
