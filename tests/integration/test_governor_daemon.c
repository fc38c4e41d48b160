/* SPDX-License-Identifier: MIT */
/*
 * test_governor_daemon.c — the governor inside a live bitmixd: power_allocator closing the loop
 * on the simulator (clients' work heats it; two clients saturate the daemon, so it keeps its bits,
 * never spends accuracy where fewer bits save nothing, and its work is capped at the power
 * budget, which the workers' CPU time obeys; idle cools it, the cap lifts and full precision is
 * kept), a machine hotter than its control point even idle (the cap at its floor),
 * QoS holds placed and dropped with their connection, SET_BITS refused unless userspace runs,
 * governor switching (powersave at the cheapest real point of the cost table), and `bitmixctl
 * stats`.
 * Usage: test_governor_daemon BITMIXD MODEL.bmx BITMIXCTL
 */
#include <errno.h>
#include <setjmp.h>
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

/* The hot simulated machine, governed by power_allocator. */
static const char hot_machine[] = HARNESS_HOT_MACHINE_YAML
	"governor:\n"
	"  name: power_allocator\n"
	"  power_allocator: {control_temp_c: 50, switch_on_temp_c: 40, sustainable_power_w: 11,\n"
	"                    dynamic_power_w: 20}\n";

static double average_bits(struct bitmix *bm)
{
	struct bitmix_policy_info p;

	assert_int_equal(bitmix_get_policy(bm, "fmnist", &p), 0);
	return p.average_bits;
}

/* Wait up to SECONDS for the model's average bits to satisfy the test; returns the last value. */
static double wait_bits(struct bitmix *bm, bool below, double threshold, double seconds)
{
	double b = average_bits(bm);

	for (int i = 0; i < seconds * 20 && (below ? !(b < threshold) : !(b > threshold)); i++) {
		usleep(50000);
		b = average_bits(bm);
	}
	return b;
}

/* Does some layer have a bit-width below its richest that saves measurably (is not pruned)? */
static bool real_savings(struct bitmix *bm)
{
	static struct bitmix_cost_layer layers[1024];
	struct bitmix_cost_info info;

	assert_int_equal(bitmix_get_cost(bm, "fmnist", &info, layers, 1024), 0);
	for (unsigned l = 0; l < info.layer_count; l++) {
		uint16_t kept = layers[l].allowed & ~layers[l].pruned;

		if (__builtin_popcount(kept) > 1)
			return true;
	}
	return false;
}

/*
 * powersave runs each layer at its cheapest real bit-width: the least batch-1 cost among those
 * the cost table does not prune (on a machine where fewer bits save nothing, that is 8 bits).
 * Its bits into POWERSAVE.
 */
static void assert_powersave_point(struct bitmix *bm, struct bitmix_model *m, uint32_t n,
				   struct bitmix_layer_bits *powersave)
{
	static struct bitmix_cost_layer layers[1024];
	struct bitmix_cost_info info;

	assert_int_equal(bitmix_get_cost(bm, "fmnist", &info, layers, 1024), 0);
	assert_int_equal(info.layer_count, n);
	assert_int_equal(bitmix_get_bits(m, powersave, NULL), 0);
	for (uint32_t l = 0; l < n; l++) {
		int best = 0;

		for (int b = 2; b <= 8; b++)
			if ((layers[l].allowed & ~layers[l].pruned & (1u << b)) &&
			    (!best || layers[l].ns[0][b] < layers[l].ns[0][best]))
				best = b;
		assert_int_equal(powersave[l].w_bits, best);
	}
}

static void test_power_allocator_closes_the_loop(void **state)
{
	struct daemon_harness h;
	struct harness_load l;
	struct bitmix_governor_info g;
	struct bitmix_sensors se;
	struct bitmix_policy_info p;
	struct bitmix *bm;
	double hot, cool;
	bool savings;

	(void)state;
	assert_int_equal(harness_start(&h, harness_bitmixd, harness_model, hot_machine), 0);
	assert_int_equal(bitmix_connect(h.socket, &bm), 0);
	assert_int_equal(bitmix_governor(bm, NULL, &g), 0);
	assert_string_equal(g.name, "power_allocator");
	assert_string_equal(g.fallback, "");
	assert_true(average_bits(bm) > 7.99); /* cool and idle: full precision */
	harness_wait_cost_complete(&h, "fmnist");

	harness_load_start(&l, h.socket);
	/* Hot: the governor caps the work (the wait is a safety net, not a speed limit). */
	for (int i = 0; i < 1200; i++) {
		assert_int_equal(bitmix_governor(bm, NULL, &g), 0);
		if (g.work_cap_cpus > 0)
			break;
		usleep(50000);
	}
	savings = real_savings(bm);
	/* Held under the cap for a while, the workers' CPU time obeys it. */
	usleep(1500000);
	assert_int_equal(bitmix_governor(bm, NULL, &g), 0);
	hot = average_bits(bm);
	assert_int_equal(bitmix_get_sensors(bm, &se), 0);
	print_message("under load: %.1f C, average bits %.2f, %.2f CPUs busy under a cap of %.2f "
		      "(%s) after %d requests\n",
		      se.temp_c, hot, g.busy_cpus, g.work_cap_cpus,
		      g.saturated ? "saturated" : "idle time left", l.requests);
	/* Fewer bits are only ever chosen where they save time: no accuracy spent for nothing. */
	assert_true(savings || hot > 7.99);
	if (g.work_cap_cpus > 0) {
		assert_true(g.work_cap_cpus < g.capacity_cpus);
		assert_true(g.busy_cpus <= g.work_cap_cpus * 1.3 + 0.05);
		assert_true(g.capped_ns > 0);
	} else {
		/*
		 * A machine too busy to give the daemon the CPU time that heats the simulator past
		 * its control temperature: then, and only then, nothing needs a cap (the oven test
		 * below checks the cap whatever the machine does).
		 */
		print_message(
			"the load never heated the package to its control temperature (%.1f C): "
			"no cap to check here\n",
			se.temp_c);
		assert_true(se.temp_c < 50);
	}
	harness_load_stop(&l);

	cool = wait_bits(bm, false, 7.99, 60);
	for (int i = 0; i < 1200; i++) {
		assert_int_equal(bitmix_governor(bm, NULL, &g), 0);
		if (g.work_cap_cpus == 0)
			break;
		usleep(50000);
	}
	assert_true(g.work_cap_cpus == 0); /* cool again: no cap */
	assert_int_equal(bitmix_get_sensors(bm, &se), 0);
	print_message("idle: %.1f C, average bits %.2f\n", se.temp_c, cool);
	assert_true(cool > 7.99);
	assert_int_equal(bitmix_get_policy(bm, "fmnist", &p), 0);
	assert_true(p.time_in_state_ns[12] > 0); /* full precision, whatever the probes tried */
	bitmix_close(bm);
	harness_finish(&h);
}

/*
 * A machine hotter than its control temperature even when idle (ambient 35 C, control 30 C): the
 * budget falls to nothing and the cap to its floor. Two clients asking back to back would keep
 * the workers far busier; the token bucket holds them to the cap, the daemon counts as saturated
 * and keeps full precision, and the clients are still served.
 */
static const char oven[] =
	"sensors:\n"
	"  source: simulator\n"
	"  period_ms: 50\n"
	"  simulator: {ambient_c: 35, thermal_resistance_c_per_w: 1.5, heat_capacity_j_per_c: 0.4,\n"
	"              idle_power_w: 5, power_per_cpu_w: 20}\n"
	"governor:\n"
	"  name: power_allocator\n"
	"  power_allocator: {control_temp_c: 30, switch_on_temp_c: 26, sustainable_power_w: 5,\n"
	"                    dynamic_power_w: 20}\n";

static void test_work_cap_holds_the_workers(void **state)
{
	struct daemon_harness h;
	struct harness_load l;
	struct bitmix_governor_info g;
	struct bitmix *bm;
	int before;

	(void)state;
	assert_int_equal(harness_start(&h, harness_bitmixd, harness_model, oven), 0);
	assert_int_equal(bitmix_connect(h.socket, &bm), 0);
	harness_load_start(&l, h.socket);
	for (int i = 0; i < 1200; i++) { /* a safety net: it takes a few periods */
		assert_int_equal(bitmix_governor(bm, NULL, &g), 0);
		if (g.work_cap_cpus > 0 && g.work_cap_cpus < 0.1)
			break;
		usleep(50000);
	}
	assert_true(g.work_cap_cpus > 0 && g.work_cap_cpus < 0.1);
	usleep(1500000); /* the busy average follows the cap within a few periods */
	before = l.requests;
	usleep(500000);
	assert_int_equal(bitmix_governor(bm, NULL, &g), 0);
	print_message("oven: %.3f CPUs busy under a cap of %.3f (%s), %d requests in 0.5 s, "
		      "average bits %.2f\n",
		      g.busy_cpus, g.work_cap_cpus, g.saturated ? "saturated" : "not saturated",
		      l.requests - before, average_bits(bm));
	assert_true(g.busy_cpus <= g.work_cap_cpus * 1.3 + 0.05);
	assert_true(g.saturated);
	assert_true(l.requests > before); /* throttled, not stopped */
	harness_load_stop(&l);
	bitmix_close(bm);
	harness_finish(&h);
}

static void test_holds_and_governor_switching(void **state)
{
	struct daemon_harness *h = *state;
	struct bitmix_layer_bits bits[1024], powersave[1024];
	struct bitmix_governor_info g;
	struct bitmix_policy_info p;
	struct bitmix_model *m, *m2;
	struct bitmix *bm, *holder;
	uint32_t id, id2;
	uint32_t n;

	assert_int_equal(bitmix_connect(h->socket, &bm), 0);
	assert_int_equal(bitmix_open_model(bm, "fmnist", &m), 0);
	n = bitmix_model_get_info(m)->layer_count;
	assert_int_equal(bitmix_governor(bm, "turbo", &g), -ENOENT);
	assert_non_null(strstr(bitmix_strerror(bm), "available: performance"));
	harness_wait_cost_complete(h, "fmnist"); /* the cheapest point no longer moves */
	assert_int_equal(bitmix_governor(bm, "powersave", &g), 0);
	assert_string_equal(g.name, "powersave");
	assert_powersave_point(bm, m, n, powersave);

	/* Only userspace takes bits from clients. */
	assert_int_equal(bitmix_get_bits(m, bits, NULL), 0);
	assert_int_equal(bitmix_set_bits(m, bits, NULL), -EBUSY);
	assert_non_null(strstr(bitmix_strerror(bm), "bitmixctl governor userspace"));

	/* A floor held by another connection lifts every layer that allows it. */
	assert_int_equal(bitmix_connect(h->socket, &holder), 0);
	assert_int_equal(bitmix_open_model(holder, "fmnist", &m2), 0);
	assert_int_equal(bitmix_hold(holder, "fmnist", BITMIX_HOLD_MIN_BITS, 6, &id), 0);
	assert_int_equal(bitmix_get_bits(m, bits, NULL), 0);
	for (uint32_t i = 0; i < n; i++)
		assert_true(bits[i].w_bits >= 6 || !(bitmix_model_layer_bits_mask(m, i) & 0x1c0));
	assert_int_equal(bitmix_get_policy(bm, "fmnist", &p), 0);
	assert_int_equal(p.floor_bits, 6);
	assert_int_equal(p.holds, 1);
	/* Nobody else may release it; bad values and kinds are refused. */
	assert_int_equal(bitmix_release(bm, "fmnist", id), -EPERM);
	assert_int_equal(bitmix_hold(holder, "fmnist", BITMIX_HOLD_MIN_BITS, 9, &id2), -EINVAL);
	assert_int_equal(bitmix_hold(holder, "fmnist", 7, 1, &id2), -EINVAL);
	assert_int_equal(bitmix_hold(holder, "nosuch", BITMIX_HOLD_MIN_BITS, 4, &id2), -ENOENT);
	/* At most 8 per connection. */
	for (int i = 0; i < 7; i++)
		assert_int_equal(bitmix_hold(holder, "fmnist", BITMIX_HOLD_MIN_BITS, 3, &id2), 0);
	assert_int_equal(bitmix_hold(holder, "fmnist", BITMIX_HOLD_MIN_BITS, 3, &id2), -ENOSPC);

	/* The holder goes away: its holds go with it and powersave has its way again. */
	bitmix_close(holder);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(bitmix_get_policy(bm, "fmnist", &p), 0);
		if (p.holds == 0)
			break;
		usleep(10000);
	}
	assert_int_equal(p.holds, 0);
	assert_int_equal(p.floor_bits, 0);
	assert_int_equal(bitmix_get_bits(m, bits, NULL), 0);
	assert_memory_equal(bits, powersave, n * sizeof(*bits));

	/* userspace keeps what runs and takes bits again. */
	assert_int_equal(bitmix_governor(bm, "userspace", &g), 0);
	assert_int_equal(bitmix_get_bits(m, bits, NULL), 0);
	assert_int_equal(bitmix_set_bits(m, bits, NULL), 0);
	bitmix_close(bm);
}

static void test_bitmixctl_stats_and_governor(void **state)
{
	struct daemon_harness *h = *state;
	char out[8192];

	/* userspace (from the test before) at 4 bits, then performance: at least one transition. */
	assert_int_equal(harness_ctl(h, out, sizeof(out), "bits fmnist 4"), 0);
	assert_int_equal(harness_ctl(h, out, sizeof(out), "governor performance"), 0);
	assert_non_null(strstr(out, "governor: performance"));
	assert_int_equal(harness_ctl(h, out, sizeof(out), "stats fmnist"), 0);
	assert_non_null(strstr(out, "model fmnist: average 8.00 bits"));
	assert_non_null(strstr(out, "time in state (average bits):"));
	assert_non_null(strstr(out, "transition table (from \\ to):"));
	assert_int_equal(harness_ctl(h, out, sizeof(out), "status"), 0);
	assert_non_null(strstr(out, "governor:  performance (1 model(s))"));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_holds_and_governor_switching),
		cmocka_unit_test(test_bitmixctl_stats_and_governor),
	};
	const struct CMUnitTest loop[] = {
		cmocka_unit_test(test_power_allocator_closes_the_loop),
		cmocka_unit_test(test_work_cap_holds_the_workers),
	};

	if (harness_args(argc, argv, true) < 0)
		return 2;
	return cmocka_run_group_tests(tests, harness_group_setup, harness_group_teardown) |
	       cmocka_run_group_tests(loop, NULL, NULL);
}
