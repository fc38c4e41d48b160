/* SPDX-License-Identifier: MIT */
/*
 * test_sensors.c — the sensor sources that need no BPF: the RC simulator against the analytic
 * step response of an RC circuit (alone and through sensors_open with the daemon's work as its
 * heat), sysfs thermal zones and powercap/RAPL and /proc/stat against fake trees, the `sensors:`
 * YAML block, and what `auto` says about the sources it did not choose.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "fake_tree.h"
#include "sensor_perf_energy.h"
#include "sensor_simulator.h"
#include "sensors.h"

#define NS 1000000000ull

/* cmocka 1.1 has no floating-point assertion: |A - B| <= EPS, printing both on failure. */
#define assert_double_equal(a, b, eps)                                                 \
	do {                                                                           \
		double a_ = (a), b_ = (b);                                             \
		if (!(fabs(a_ - b_) <= (eps)))                                         \
			fail_msg("%s = %.12g, expected %.12g (within %g)", #a, a_, b_, \
				 (double)(eps));                                       \
	} while (0)

static const struct bmx_sensors_simulator_config rc = {
	.ambient_c = 25.0,
	.initial_c = 25.0,
	.resistance_c_per_w = 1.5,
	.capacitance_j_per_c = 40.0, /* tau = 60 s */
	.idle_power_w = 5.0,
	.power_per_cpu_w = 20.0,
};

/* The analytic response of the RC circuit to a power step P at t = 0 from temperature T0. */
static double rc_analytic(double t0_c, double power_w, double t_s)
{
	double steady = rc.ambient_c + power_w * rc.resistance_c_per_w;
	double tau = rc.resistance_c_per_w * rc.capacitance_j_per_c;

	return steady + (t0_c - steady) * exp(-t_s / tau);
}

static void test_rc_step_response(void **state)
{
	double temp = rc.ambient_c, power = 30.0;

	(void)state;
	assert_double_equal(thermal_rc_tau_s(&rc), 60.0, 1e-12);
	assert_double_equal(thermal_rc_steady_c(&rc, power), 70.0, 1e-12);
	/* Heating: 0.1 s steps over 5 tau, each point on the analytic curve. */
	for (int i = 1; i <= 3000; i++) {
		temp = thermal_rc_step(&rc, temp, power, 0.1);
		assert_double_equal(temp, rc_analytic(rc.ambient_c, power, i * 0.1), 1e-9);
	}
	/* After one tau the rise is 1 - 1/e of the way (63.2%); after 5 tau within 1%. */
	assert_double_equal(thermal_rc_step(&rc, 25.0, power, 60.0), 25.0 + 45.0 * (1 - exp(-1)),
			    1e-9);
	assert_true(temp > 70.0 - 45.0 * 0.01 && temp < 70.0);
	/* Cooling: power removed, back towards ambient with the same time constant. */
	double hot = temp;
	for (int i = 1; i <= 600; i++) {
		temp = thermal_rc_step(&rc, temp, 0.0, 0.1);
		assert_double_equal(temp, rc_analytic(hot, 0.0, i * 0.1), 1e-9);
	}
	/* The step size does not change the trajectory (exact discretisation). */
	double coarse = thermal_rc_step(&rc, 25.0, power, 10.0), fine = 25.0;
	for (int i = 0; i < 10000; i++)
		fine = thermal_rc_step(&rc, fine, power, 0.001);
	assert_double_equal(coarse, fine, 1e-9);
	/* No time, no change. */
	assert_double_equal(thermal_rc_step(&rc, 40.0, power, 0.0), 40.0, 0);
}

static void test_rc_power_from_work(void **state)
{
	struct thermal_sim sim;

	(void)state;
	assert_double_equal(thermal_rc_power_w(&rc, 0, NS), 5.0, 1e-12);
	assert_double_equal(thermal_rc_power_w(&rc, 2 * NS, NS), 45.0, 1e-12); /* two busy CPUs */
	assert_double_equal(thermal_rc_power_w(&rc, NS / 2, NS), 15.0, 1e-12);
	/* The stateful model, driven by a clock of our own. */
	thermal_sim_init(&sim, &rc, 100 * NS);
	thermal_sim_add_work(&sim, 3 * NS / 2);
	thermal_sim_advance(&sim, 101 * NS);
	assert_double_equal(sim.busy_cpus, 1.5, 1e-12);
	assert_double_equal(sim.power_w, 35.0, 1e-12);
	assert_double_equal(sim.temp_c, rc_analytic(25.0, 35.0, 1.0), 1e-9);
	thermal_sim_advance(&sim, 50 * NS); /* time going backwards changes nothing */
	assert_double_equal(sim.temp_c, rc_analytic(25.0, 35.0, 1.0), 1e-9);
	thermal_sim_advance(&sim, 102 * NS); /* no work: idle power only */
	assert_double_equal(sim.power_w, 5.0, 1e-12);
}

/* A config with fake sysfs and proc roots under DIR. */
static void fake_config(struct bmx_sensors_config *sc, const char *dir, int source)
{
	bmx_sensors_config_defaults(sc);
	sc->source = source;
	sc->simulator = rc;
	snprintf(sc->sysfs_root, sizeof(sc->sysfs_root), "%s/sys", dir);
	snprintf(sc->proc_root, sizeof(sc->proc_root), "%s/proc", dir);
}

/* A fake machine under DIR (a mkdtemp template): two CPUs in proc/stat; with SC, a config of
 * SOURCE reading it. */
static void make_fake_machine(char *dir, struct bmx_sensors_config *sc, int source)
{
	assert_non_null(mkdtemp(dir));
	if (sc)
		fake_config(sc, dir, source);
	assert_int_equal(fake_write(dir, "proc/stat",
				    "cpu  10 0 10 80 0 0 0 0 0 0\n"
				    "cpu0 5 0 5 40 0 0 0 0 0 0\n"
				    "cpu1 5 0 5 40 0 0 0 0 0 0\n"),
			 0);
}

/* The simulator through the front: the daemon's work heats it along the analytic curve. */
static void test_simulator_source(void **state)
{
	char dir[] = "/tmp/bitmix-sensors-XXXXXX";
	struct bmx_sensors_config sc;
	struct sensor_reading r;
	struct sensors *s;

	(void)state;
	make_fake_machine(dir, &sc, SENSOR_SOURCE_SIMULATOR);
	assert_int_equal(sensors_open(&sc, &s), 0);
	assert_int_equal(sensors_source(s), SENSOR_SOURCE_SIMULATOR);
	assert_int_equal(sensors_event_fd(s), -1);
	assert_int_equal(sensors_sample(s, 1000 * NS, &r), 0);
	assert_true(r.have & SENSOR_HAVE_TEMP);
	assert_true(r.have & SENSOR_HAVE_LOAD); /* from the fake /proc/stat */
	assert_int_equal(r.temp_mc, 25000);
	/* One CPU of work every 100 ms period: 25 W, settling at 62.5 C. */
	for (int i = 1; i <= 600; i++) {
		sensors_add_work(s, NS / 10);
		assert_int_equal(sensors_sample(s, 1000 * NS + i * NS / 10, &r), 0);
		assert_int_equal(r.power_mw, 25000);
		assert_true(fabs(r.temp_mc - 1000.0 * rc_analytic(25.0, 25.0, i * 0.1)) <= 1.0);
	}
	assert_true(r.temp_mc > 48000 && r.temp_mc < 49000); /* 25 + 37.5 (1 - 1/e) = 48.7 */
	assert_non_null(strstr(sensors_explain(s), "simulator: active"));
	assert_non_null(strstr(sensors_explain(s), "procstat: active"));
	assert_non_null(strstr(sensors_explain(s), "bpf: not tried"));
	sensors_close(s);
	fake_remove(dir);
}

static void test_procstat_load(void **state)
{
	char dir[] = "/tmp/bitmix-sensors-XXXXXX";
	struct bmx_sensors_config sc;
	struct sensor_reading r;
	struct sensors *s;

	(void)state;
	make_fake_machine(dir, &sc, SENSOR_SOURCE_SIMULATOR);
	assert_int_equal(sensors_open(&sc, &s), 0);
	/* cpu0: 90 of 100 jiffies busy (user+system+irq), cpu1: 10 of 100 (iowait counts idle). */
	assert_int_equal(fake_write(dir, "proc/stat",
				    "cpu  100 0 30 150 20 0 0 0 0 0\n"
				    "cpu0 50 0 20 50 0 30 0 0 0 0\n"
				    "cpu1 10 0 10 110 20 0 0 0 0 0\n"),
			 0);
	assert_int_equal(sensors_sample(s, NS, &r), 0);
	assert_int_equal(r.n_cpus, 2);
	assert_int_equal(r.cpu_load_permille[0], 900);
	assert_int_equal(r.cpu_load_permille[1], 100);
	assert_int_equal(r.load_permille, 500);
	/* No time passed: no load, no division by zero. */
	assert_int_equal(sensors_sample(s, 2 * NS, &r), 0);
	assert_int_equal(r.load_permille, 0);
	/* The file gone: the sample fails and says so. */
	fake_remove(dir);
	assert_int_equal(sensors_sample(s, 3 * NS, &r), -ENOENT);
	sensors_close(s);
}

static void make_fake_sysfs(const char *dir)
{
	static const char *const files[][2] = {
		{ "sys/class/thermal/thermal_zone0/type", "acpitz\n" },
		{ "sys/class/thermal/thermal_zone0/temp", "45000\n" },
		{ "sys/class/thermal/thermal_zone1/temp", "61500\n" },
		{ "sys/class/thermal/cooling_device0/cur_state", "0\n" },
		{ "sys/class/powercap/intel-rapl:0/energy_uj", "1000000\n" },
		{ "sys/class/powercap/intel-rapl:0/max_energy_range_uj", "10000000\n" },
		/* A subzone (core) inside the package: must not be counted twice. */
		{ "sys/class/powercap/intel-rapl:0:0/energy_uj", "500000\n" },
		{ "sys/class/powercap/intel-rapl:0:0/max_energy_range_uj", "10000000\n" },
	};

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		assert_int_equal(fake_write(dir, files[i][0], files[i][1]), 0);
}

static void test_sysfs_thermal_and_rapl(void **state)
{
	char dir[] = "/tmp/bitmix-sensors-XXXXXX";
	struct bmx_sensors_config sc;
	struct sensor_reading r;
	struct sensors *s;

	(void)state;
	make_fake_machine(dir, &sc, SENSOR_SOURCE_SYSFS);
	make_fake_sysfs(dir);
	assert_int_equal(sensors_open(&sc, &s), 0);
	assert_int_equal(sensors_source(s), SENSOR_SOURCE_SYSFS);
	assert_non_null(strstr(sensors_explain(s), "2 thermal zone(s)"));
	assert_non_null(strstr(sensors_explain(s), "1 powercap package(s)"));
	assert_null(
		strstr(sensors_explain(s), "simulator: active")); /* a real temperature exists */
	assert_int_equal(sensors_sample(s, 10 * NS, &r), 0);
	assert_int_equal(r.temp_mc, 61500);	  /* the hottest zone */
	assert_false(r.have & SENSOR_HAVE_POWER); /* one energy reading is no power yet */
	/* 2 J over 0.5 s = 4 W. */
	assert_int_equal(fake_write(dir, "sys/class/powercap/intel-rapl:0/energy_uj", "3000000\n"),
			 0);
	assert_int_equal(fake_write(dir, "sys/class/thermal/thermal_zone0/temp", "70250\n"), 0);
	assert_int_equal(sensors_sample(s, 10 * NS + NS / 2, &r), 0);
	assert_true(r.have & SENSOR_HAVE_POWER);
	assert_int_equal(r.power_mw, 4000);
	assert_int_equal(r.temp_mc, 70250);
	/* The counter wraps at 10 J: 3 J -> 1 J is 8 J in 1 s. */
	assert_int_equal(fake_write(dir, "sys/class/powercap/intel-rapl:0/energy_uj", "1000000\n"),
			 0);
	assert_int_equal(sensors_sample(s, 11 * NS + NS / 2, &r), 0);
	assert_int_equal(r.power_mw, 8000);
	sensors_close(s);
	fake_remove(dir);
}

/* Named explicitly, sysfs without zones is an error; under `auto` it is a reason in the list. */
static void test_sysfs_missing(void **state)
{
	char dir[] = "/tmp/bitmix-sensors-XXXXXX";
	struct bmx_sensors_config sc;
	struct sensor_reading r;
	struct sensors *s;

	(void)state;
	char why[1024];

	make_fake_machine(dir, &sc, SENSOR_SOURCE_SYSFS);
	assert_int_equal(sensors_open(&sc, &s), -ENODEV);
	assert_null(s);
	assert_int_equal(sensors_open_why(&sc, &s, why, sizeof(why)), -ENODEV);
	assert_non_null(strstr(
		why, "sysfs: not chosen as the configured source: no readable thermal zone"));
	assert_non_null(strstr(why, "no perf power/energy-pkg"));
	fake_config(&sc, dir, SENSOR_SOURCE_AUTO);
	assert_int_equal(sensors_open(&sc, &s), 0);
	assert_non_null(strstr(sensors_explain(s), "sysfs: not chosen"));
	assert_non_null(strstr(sensors_explain(s), "no readable thermal zone under"));
	/* Whatever the primary, a temperature is there: the simulator stands in for it. */
	assert_non_null(strstr(sensors_explain(s), "simulator: active"));
	assert_int_equal(sensors_sample(s, NS, &r), 0);
	assert_true(r.have & SENSOR_HAVE_TEMP);
	assert_true(r.have & SENSOR_HAVE_LOAD);
	sensors_close(s);
	fake_remove(dir);
}

/* perf's power PMU as sysfs describes it; opening a fake type fails and says so. */
static void test_perf_energy_description(void **state)
{
	char dir[] = "/tmp/bitmix-sensors-XXXXXX", root[64], why[256];
	struct perf_energy pe;

	(void)state;
	make_fake_machine(dir, NULL, 0);
	snprintf(root, sizeof(root), "%s/sys", dir);
	assert_int_equal(perf_energy_describe(root, &pe, why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "bus/event_source/devices/power/type"));
	assert_int_equal(fake_write(dir, "sys/bus/event_source/devices/power/type", "4242\n"), 0);
	assert_int_equal(fake_write(dir, "sys/bus/event_source/devices/power/events/energy-pkg",
				    "event=0x02\n"),
			 0);
	assert_int_equal(fake_write(dir,
				    "sys/bus/event_source/devices/power/events/energy-pkg.scale",
				    "2.3283064365386962890625e-10\n"),
			 0);
	assert_int_equal(perf_energy_describe(root, &pe, why, sizeof(why)), 0);
	assert_int_equal(pe.type, 4242);
	assert_int_equal(pe.config, 2);
	assert_double_equal(pe.joules_per_count, 2.3283064365386962890625e-10, 1e-24);
	/* No PMU has type 4242: the open fails with the reason, and nothing leaks. */
	assert_true(perf_energy_open(root, &pe, why, sizeof(why)) < 0);
	assert_non_null(strstr(why, "perf power/energy-pkg (type 4242, event 0x2)"));
	assert_int_equal(pe.fd, -1);
	assert_int_equal(fake_write(dir, "sys/bus/event_source/devices/power/events/energy-pkg",
				    "umask=3\n"),
			 0);
	assert_int_equal(perf_energy_describe(root, &pe, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "\"umask=3\" is not what perf writes there"));
	fake_remove(dir);
}

static void test_config_block(void **state)
{
	const char *text = "models: {m: /x.bmx}\n"
			   "sensors:\n"
			   "  source: simulator\n"
			   "  period_ms: 250\n"
			   "  sysfs_root: /tmp/fake-sys\n"
			   "  simulator:\n"
			   "    ambient_c: 30\n"
			   "    thermal_resistance_c_per_w: 0.8\n"
			   "    heat_capacity_j_per_c: 100\n"
			   "    idle_power_w: 3.5\n"
			   "    power_per_cpu_w: 12\n";
	struct bmx_config_error err = { { 0 } };
	struct bmx_config *c;

	(void)state;
	assert_int_equal(bmx_config_load_string("t.yaml", text, &c, &err), 0);
	assert_int_equal(c->sensors.source, SENSOR_SOURCE_SIMULATOR);
	assert_int_equal(c->sensors.period_ms, 250);
	assert_string_equal(c->sensors.sysfs_root, "/tmp/fake-sys");
	assert_string_equal(c->sensors.proc_root, "/proc");
	assert_double_equal(c->sensors.simulator.ambient_c, 30.0, 0);
	/* Starts where idle power holds it: 30 + 3.5 W x 0.8 K/W. */
	assert_double_equal(c->sensors.simulator.initial_c, 32.8, 1e-12);
	assert_double_equal(c->sensors.simulator.resistance_c_per_w, 0.8, 0);
	assert_double_equal(c->sensors.simulator.capacitance_j_per_c, 100.0, 0);
	assert_double_equal(c->sensors.simulator.idle_power_w, 3.5, 0);
	assert_double_equal(c->sensors.simulator.power_per_cpu_w, 12.0, 0);
	bmx_config_free(c);
	/* Without the block: auto, 100 ms. */
	assert_int_equal(bmx_config_load_string("t.yaml", "models: {m: /x.bmx}\n", &c, &err), 0);
	assert_int_equal(c->sensors.source, SENSOR_SOURCE_AUTO);
	assert_int_equal(c->sensors.period_ms, 100);
	assert_string_equal(c->sensors.sysfs_root, "/sys");
	bmx_config_free(c);
}

static void expect_error(const char *block, const char *msg)
{
	struct bmx_config_error err = { { 0 } };
	struct bmx_config *c = NULL;
	char text[512];

	snprintf(text, sizeof(text), "models: {m: /x.bmx}\nsensors:\n%s", block);
	assert_int_equal(bmx_config_load_string("t.yaml", text, &c, &err), -EINVAL);
	assert_null(c);
	if (!strstr(err.msg, msg))
		fail_msg("expected \"%s\" in \"%s\"", msg, err.msg);
}

static void test_config_errors(void **state)
{
	(void)state;
	expect_error(
		"  source: thermometer\n",
		"t.yaml:3:11: sensors.source: \"thermometer\" is not one of: auto, bpf, sysfs, simulator");
	expect_error("  period_ms: 0\n", "sensors.period_ms: \"0\" is not a number >= 1");
	expect_error("  period_ms: 2.5\n", "not a whole number of ms");
	expect_error("  sysfs_root: sys\n", "sensors.sysfs_root: \"sys\" is not an absolute path");
	expect_error("  colour: red\n",
		     "unknown key \"colour\" (expected one of: source, period_ms");
	expect_error("  simulator:\n    heat_capacity_j_per_c: 0\n",
		     "sensors.simulator.heat_capacity_j_per_c: \"0\" is not a number > 0");
	expect_error("  simulator:\n    ambient_c: warm\n",
		     "t.yaml:4:16: sensors.simulator.ambient_c");
	expect_error("  simulator:\n    fan: on\n",
		     "unknown key \"fan\" (expected one of: ambient_c");
	expect_error("  simulator: 3\n", "sensors.simulator: found a scalar, expected a mapping");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rc_step_response),
		cmocka_unit_test(test_rc_power_from_work),
		cmocka_unit_test(test_simulator_source),
		cmocka_unit_test(test_procstat_load),
		cmocka_unit_test(test_sysfs_thermal_and_rapl),
		cmocka_unit_test(test_sysfs_missing),
		cmocka_unit_test(test_perf_energy_description),
		cmocka_unit_test(test_config_block),
		cmocka_unit_test(test_config_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
