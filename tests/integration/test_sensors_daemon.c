/* SPDX-License-Identifier: MIT */
/*
 * test_sensors_daemon.c — the sensors inside a live bitmixd: the configured source and the
 * reasons for the others reach clients (and `bitmixctl status`), readings keep coming on the
 * sampling period, the workers' engine time heats the simulator, and a reload that names
 * sensors which cannot open keeps the running ones.
 * Usage: test_sensors_daemon BITMIXD MODEL.bmx BITMIXCTL
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bitmix.h"
#include "daemon_harness.h"

/* 1000 W per busy CPU: a tenth of a second of engine time warms the package by about 2.5 C. */
static const char *simulator_yaml = "sensors:\n"
				    "  source: simulator\n"
				    "  period_ms: 20\n"
				    "  simulator:\n"
				    "    power_per_cpu_w: 1000\n";

static void get_sensors(const struct daemon_harness *h, struct bitmix_sensors *se)
{
	struct bitmix *bm;

	assert_int_equal(bitmix_connect(h->socket, &bm), 0);
	assert_int_equal(bitmix_get_sensors(bm, se), 0);
	bitmix_close(bm);
}

static void test_source_and_reasons(void **state)
{
	struct daemon_harness *h = *state;
	struct bitmix_sensors a, b;
	char out[8192];

	get_sensors(h, &a);
	assert_string_equal(a.source, "simulator");
	assert_int_equal(a.period_ms, 20);
	assert_int_equal(a.have & 7, 7); /* temperature, power (simulator), load (/proc/stat) */
	assert_non_null(strstr(a.explain, "simulator: active as the configured source"));
	assert_non_null(strstr(a.explain, "procstat: active as load helper"));
	assert_non_null(strstr(a.explain, "bpf: not tried: the config names source simulator"));
	/* Starts at the idle steady state: 25 C + 5 W x 1.5 K/W. */
	assert_true(a.temp_c > 32.0 && a.temp_c < 33.0);
	usleep(200 * 1000);
	get_sensors(h, &b);
	assert_true(b.samples >= a.samples + 3); /* ten periods passed; a loaded machine may lag */
	assert_true(b.age_s < 1.0);

	assert_int_equal(harness_ctl(h, out, sizeof(out), "status"), 0);
	assert_non_null(strstr(out, "sensors:   simulator, every 20 ms"));
	assert_non_null(strstr(out, "bpf: not tried"));
}

/* The engine time of real requests reaches the simulator as heat. */
static void test_work_heats_simulator(void **state)
{
	struct daemon_harness *h = *state;
	struct bitmix_sensors before, after;
	struct bitmix_model *m;
	struct bitmix *bm;
	float *in, *out;

	get_sensors(h, &before);
	assert_int_equal(bitmix_connect(h->socket, &bm), 0);
	assert_int_equal(bitmix_open_model(bm, "fmnist", &m), 0);
	in = bitmix_tensor_alloc(bm, 256 * 28 * 28 * sizeof(float));
	out = bitmix_tensor_alloc(bm, 256 * 10 * sizeof(float));
	assert_non_null(in);
	assert_non_null(out);
	memset(in, 0, 256 * 28 * 28 * sizeof(float));
	for (int i = 0; i < 8; i++)
		assert_int_equal(bitmix_infer(m, in, out, 64, NULL), 0);
	bitmix_close(bm);
	usleep(100 * 1000); /* a few periods: the work is handed over */
	get_sensors(h, &after);
	printf("# simulator: %.3f C before, %.3f C after 8 x 64 samples\n", before.temp_c,
	       after.temp_c);
	/* The package only cools towards idle between requests, so any warming is the work's. */
	assert_true(after.temp_c > before.temp_c + 0.2);
}

/* A reload naming sensors that cannot open keeps the running ones; a good one applies. */
static void test_reload_keeps_sensors(void **state)
{
	struct daemon_harness *h = *state;
	struct bitmix_sensors se;

	assert_int_equal(
		harness_write_config(h, harness_model,
				     "sensors:\n  source: sysfs\n  sysfs_root: /nonexistent\n"),
		0);
	kill(h->pid, SIGHUP);
	assert_true(harness_log_contains(h, "keeping the running configuration and sensors", 5000));
	assert_true(harness_log_contains(
		h, "no readable thermal zone under /nonexistent/class/thermal", 100));
	get_sensors(h, &se);
	assert_string_equal(se.source, "simulator");
	assert_int_equal(se.period_ms, 20);

	assert_int_equal(harness_write_config(h, harness_model,
					      "sensors:\n  source: simulator\n  period_ms: 35\n"),
			 0);
	kill(h->pid, SIGHUP);
	assert_true(harness_log_contains(h, "reloaded", 5000));
	get_sensors(h, &se);
	assert_string_equal(se.source, "simulator");
	assert_int_equal(se.period_ms, 35);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_source_and_reasons),
		cmocka_unit_test(test_work_heats_simulator),
		cmocka_unit_test(test_reload_keeps_sensors),
	};

	if (harness_args(argc, argv, true) < 0)
		return 2;
	harness_yaml = simulator_yaml;
	return cmocka_run_group_tests_name("sensors", tests, harness_group_setup,
					   harness_group_teardown);
}
