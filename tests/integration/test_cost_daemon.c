/* SPDX-License-Identifier: MIT */
/*
 * test_cost_daemon.c — the per-layer cost table inside a live bitmixd: COST (and `bitmixctl
 * cost`, text and --json, and `status`) has every layer and bit-width from the start, the rows
 * become measured in the background, the table is cached under $CACHE_DIRECTORY and read back
 * by the next daemon, and a corrupt or foreign cache file is ignored with a log line. Waits for
 * the background measurement are generous safety nets, not statements about speed.
 * Usage: test_cost_daemon BITMIXD MODEL.bmx BITMIXCTL
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bitmix.h"
#include "daemon_harness.h"

#define WAIT_S 600 /* the background measurement under sanitizers on a busy machine */

static char cache_dir[64];
static char cache_file[128];

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The model's table through libbitmix; checks every layer and allowed bit-width has a time. */
static void get_cost(const struct daemon_harness *h, struct bitmix_cost_info *info,
		     struct bitmix_cost_layer *layers)
{
	struct bitmix *bm;
	unsigned rows = 0;

	assert_int_equal(bitmix_connect(h->socket, &bm), 0);
	assert_int_equal(bitmix_get_cost(bm, "fmnist", info, layers, 1024), 0);
	bitmix_close(bm);
	assert_true(info->layer_count > 0 && info->layer_count <= 1024);
	for (unsigned l = 0; l < info->layer_count; l++) {
		assert_true(layers[l].allowed != 0);
		assert_true(layers[l].name[0] != '\0');
		for (int b = 2; b <= 8; b++) {
			bool allowed = layers[l].allowed & (1u << b);

			assert_true((layers[l].ns[0][b] > 0) == allowed);
			assert_true((layers[l].ns[1][b] > 0) == allowed);
		}
		rows += (unsigned)__builtin_popcount(layers[l].allowed);
	}
	assert_int_equal(rows, info->rows);
	assert_int_equal(info->large_batch, 256);
}

static void wait_complete(const struct daemon_harness *h, struct bitmix_cost_info *info,
			  struct bitmix_cost_layer *layers)
{
	double t0 = mono();

	get_cost(h, info, layers);
	while (!info->complete && mono() - t0 < WAIT_S) {
		usleep(200000);
		get_cost(h, info, layers);
	}
	assert_true(info->complete);
	assert_int_equal(info->measured[0], info->rows);
	assert_int_equal(info->measured[1], info->rows);
	for (unsigned l = 0; l < info->layer_count; l++)
		assert_int_equal(layers[l].measured[0] & layers[l].measured[1], layers[l].allowed);
}

/* `bitmixctl cost` prints one line per row; --json the same rows; status the state. */
static void check_bitmixctl(const struct daemon_harness *h, const struct bitmix_cost_info *info)
{
	char out[65536], want[128];
	unsigned lines = 0;

	assert_int_equal(harness_ctl(h, out, sizeof(out), "cost fmnist"), 0);
	for (const char *p = out; (p = strchr(p, '\n')); p++)
		lines++;
	assert_int_equal(lines, info->rows + 3); /* two lines of summary, a header, the rows */
	assert_int_equal(harness_ctl(h, out, sizeof(out), "--json cost fmnist"), 0);
	/*
	 * An incomplete table goes on being measured between INFO and these calls: only a complete
	 * one has counts that cannot have moved.
	 */
	if (info->complete)
		snprintf(want, sizeof(want),
			 "\"rows\":%u,\"measured_rows\":[%u,%u],\"complete\":true", info->rows,
			 info->measured[0], info->measured[1]);
	else
		snprintf(want, sizeof(want), "\"rows\":%u,\"measured_rows\":[", info->rows);
	assert_non_null(strstr(out, want));
	assert_int_equal(harness_ctl(h, out, sizeof(out), "status"), 0);
	assert_non_null(strstr(out, info->complete ? "cost table: complete" : "cost table: "));
}

static void test_measured_then_cached(void **state)
{
	static struct bitmix_cost_layer layers[1024];
	struct bitmix_cost_info info;
	struct daemon_harness h;
	char out[4096];

	(void)state;
	assert_int_equal(harness_start(&h, harness_bitmixd, harness_model, NULL), 0);
	get_cost(&h, &info, layers); /* every row at once, measured or estimated */
	assert_string_equal(info.source, "measured");
	check_bitmixctl(&h, &info);
	wait_complete(&h, &info, layers);
	check_bitmixctl(&h, &info);
	assert_true(harness_log_contains(&h, "cost table complete", 5000));
	harness_finish(&h);
	assert_int_equal(access(cache_file, R_OK), 0);

	/* The next daemon reads it: complete at once, from the cache. */
	assert_int_equal(harness_start(&h, harness_bitmixd, harness_model, NULL), 0);
	get_cost(&h, &info, layers);
	assert_true(info.complete);
	assert_string_equal(info.source, "cache");
	assert_true(harness_log_contains(&h, "cost table read from", 5000));
	assert_int_equal(harness_ctl(&h, out, sizeof(out), "status"), 0);
	assert_non_null(strstr(out, "from the cache"));
	harness_finish(&h);
}

/* Replace line LINE (1-based) of the cache file with TEXT. */
static void rewrite_line(int line, const char *text)
{
	char buf[65536], *p = buf, *end;
	FILE *f = fopen(cache_file, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (int i = 1; i < line; i++)
		p = strchr(p, '\n') + 1;
	end = strchr(p, '\n');
	f = fopen(cache_file, "w");
	assert_non_null(f);
	fprintf(f, "%.*s%s%s", (int)(p - buf), buf, text, end);
	fclose(f);
}

static void test_corrupt_and_foreign_cache_ignored(void **state)
{
	static struct bitmix_cost_layer layers[1024];
	struct bitmix_cost_info info;
	struct daemon_harness h;

	(void)state;
	rewrite_line(7, "row 9999 4 3 nonsense"); /* the first row */
	assert_int_equal(harness_start(&h, harness_bitmixd, harness_model, NULL), 0);
	assert_true(harness_log_contains(&h, "ignoring the file", 5000));
	get_cost(&h, &info, layers);
	assert_string_equal(info.source, "measured"); /* measuring again */
	harness_finish(&h);

	rewrite_line(3, "cpu Some Other CPU");
	assert_int_equal(harness_start(&h, harness_bitmixd, harness_model, NULL), 0);
	assert_true(harness_log_contains(&h, "written for another model, CPU", 5000));
	get_cost(&h, &info, layers);
	assert_string_equal(info.source, "measured");
	harness_finish(&h);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_measured_then_cached),
		cmocka_unit_test(test_corrupt_and_foreign_cache_ignored),
	};
	int r;

	if (harness_args(argc, argv, true) < 0)
		return 2;
	snprintf(cache_dir, sizeof(cache_dir), "/tmp/bitmix-cost-XXXXXX");
	if (!mkdtemp(cache_dir))
		return 1;
	snprintf(cache_file, sizeof(cache_file), "%s/cost-fmnist.tab", cache_dir);
	setenv("CACHE_DIRECTORY", cache_dir, 1); /* as systemd's CacheDirectory= sets it */
	r = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(cache_file);
	rmdir(cache_dir);
	return r;
}
