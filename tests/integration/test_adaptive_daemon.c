/* SPDX-License-Identifier: MIT */
/*
 * test_adaptive_daemon.c — per-sample adaptive precision in a live bitmixd serving the bundled
 * model: under operating points set with the userspace governor, a policy min_bits and a
 * client's QoS hold, every cascade, policy and default request reports configurations whose
 * bits are at or below the published operating point and at or above the floor, and its output
 * and BitOps are exactly what the engine computes in this process for that ceiling and floor.
 * Fixed requests report the operating point's BitOps; the statistics count adaptive traffic, and
 * adaptive traffic alone brings the power model's cost scale under 1;
 * a model without the sections refuses adaptive requests and falls back from its YAML default.
 * Usage: test_adaptive_daemon BITMIXD BUNDLED.bmx PLACEHOLDER.bmx
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
#include "bmx_adaptive.h"
#include "daemon_harness.h"

#define BATCH 16u

static const char *placeholder_path;

static const char adaptive_yaml[] = "governor:\n"
				    "  name: userspace\n"
				    "  policies:\n"
				    "    fmnist: {min_bits: 3, precision: cascade}\n"
				    "sensors: {source: simulator}\n";

struct local {
	struct bmx_model *m;
	struct bmx_engine *e;
	void *scratch;
};

static void local_open(struct local *l, const char *path)
{
	struct bmx_error err;
	size_t size;

	if (bmx_model_load_file(path, &l->m, &err) < 0)
		fail_msg("%s: %s", path, err.msg);
	assert_int_equal(bmx_engine_new(l->m, &l->e), 0);
	size = bmx_adaptive_scratch_size(l->e, BATCH);
	l->scratch = aligned_alloc(64, (size + 63) & ~(size_t)63);
	assert_non_null(l->scratch);
}

static void local_close(struct local *l)
{
	free(l->scratch);
	bmx_engine_free(l->e);
	bmx_model_free(l->m);
}

static void fill(float *x, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		x[i] = (float)((seed >> 33) % 256) / 255.0f;
	}
}

/*
 * One request of BATCH samples at PRECISION, checked against the local engine with the
 * published bits as the ceiling and FLOOR; returns the configurations mask it reported.
 */
static unsigned check_request(struct local *l, struct bitmix_model *m, float *in, float *out,
			      uint32_t batch, unsigned precision, enum bmx_adaptive_mode mode,
			      uint8_t floor)
{
	struct bitmix_layer_bits pub[64];
	struct bmx_layer_bits ceiling[64], bits[64];
	struct bmx_adaptive_result res[BATCH];
	struct bitmix_result r;
	float ref[BATCH * 10];
	uint64_t gen, bitops = 0;
	unsigned configs = 0, escalated = 0;

	assert_int_equal(bitmix_get_bits(m, pub, &gen), 0);
	for (uint32_t i = 0; i < l->m->layer_count; i++)
		ceiling[i] = (struct bmx_layer_bits){ pub[i].w_bits, pub[i].a_bits };
	assert_int_equal(bitmix_infer_precision(m, in, out, batch, precision, &r), 0);
	assert_int_equal(r.generation, gen); /* nothing changed the bits in between */
	assert_int_equal(r.mode, mode);
	{
		const struct bmx_adaptive_request req = { .mode = mode,
							  .ceiling = ceiling,
							  .floor = floor };

		assert_int_equal(
			bmx_adaptive_run(l->e, &req, batch, in, ref, l->scratch, NULL, res), 0);
		for (uint32_t s = 0; s < batch; s++) {
			configs |= mode ? 1u << res[s].config : 0;
			escalated += res[s].runs > 1;
			bitops += res[s].bitops;
			for (uint32_t k = 0; mode && k <= res[s].config; k++) {
				bmx_adaptive_config(l->e, &req, k, bits);
				for (uint32_t i = 0; i < l->m->layer_count; i++) {
					const struct bmx_layer_view *v = &l->m->views[i];

					assert_true(bits[i].w_bits <= ceiling[i].w_bits);
					assert_true(bits[i].a_bits <= ceiling[i].a_bits);
					if (v->bit_index[floor] >= 0)
						assert_true(bits[i].w_bits >= floor &&
							    bits[i].a_bits >= floor);
				}
			}
		}
	}
	assert_memory_equal(out, ref, (size_t)batch * 10 * sizeof(float));
	assert_int_equal(r.configs, configs);
	assert_int_equal(r.escalated, escalated);
	assert_int_equal(r.bitops, bitops);
	return configs;
}

static void set_uniform(struct bitmix_model *m, const struct bmx_model *lm, const uint8_t *b)
{
	struct bitmix_layer_bits bits[64];

	for (uint32_t i = 0; i < lm->layer_count; i++)
		bits[i] = (struct bitmix_layer_bits){ b[i], b[i] };
	assert_int_equal(bitmix_set_bits(m, bits, NULL), 0);
}

static void test_limits_and_identity(void **state)
{
	static const uint8_t points[][8] = {
		{ 8, 8, 8, 8, 8, 8, 8, 8 },
		{ 8, 4, 4, 4, 4, 4, 4, 8 },
		{ 8, 6, 3, 5, 4, 8, 4, 8 },
		{ 8, 3, 3, 3, 3, 3, 3, 8 },
	};
	struct daemon_harness *h = *state;
	struct bitmix_policy_info p;
	struct bitmix_model *m;
	struct bitmix *bm;
	struct local l;
	unsigned seen = 0;
	uint32_t hold;
	float *in, *out;

	local_open(&l, harness_model);
	assert_int_equal(bitmix_connect(h->socket, &bm), 0);
	assert_int_equal(bitmix_open_model(bm, "fmnist", &m), 0);
	in = bitmix_tensor_alloc(bm, BATCH * 28 * 28 * sizeof(float));
	out = bitmix_tensor_alloc(bm, BATCH * 10 * sizeof(float));
	assert_non_null(in);
	assert_non_null(out);
	for (int held = 0; held < 2; held++) {
		const uint8_t floor = held ? 5 : 3; /* min_bits 3; the hold raises it to 5 */

		if (held)
			assert_int_equal(bitmix_hold(bm, "fmnist", BITMIX_HOLD_MIN_BITS, 5, &hold),
					 0);
		for (size_t pt = 0; pt < sizeof(points) / sizeof(points[0]); pt++) {
			set_uniform(m, l.m, points[pt]);
			for (uint32_t i = 0; i < 6; i++) {
				fill(in, BATCH * 28 * 28, 1000 * pt + i);
				seen |= check_request(&l, m, in, out, 1, BITMIX_INFER_CASCADE,
						      BMX_ADAPTIVE_CASCADE, floor);
				check_request(&l, m, in, out, 1, BITMIX_INFER_POLICY,
					      BMX_ADAPTIVE_POLICY, floor);
				check_request(&l, m, in, out, 1, BITMIX_INFER_CURRENT,
					      BMX_ADAPTIVE_CASCADE, floor);
				check_request(&l, m, in, out, 1, BITMIX_INFER_FIXED,
					      BMX_ADAPTIVE_OFF, floor);
			}
			check_request(&l, m, in, out, BATCH, BITMIX_INFER_CASCADE,
				      BMX_ADAPTIVE_CASCADE, floor);
			check_request(&l, m, in, out, BATCH, BITMIX_INFER_POLICY,
				      BMX_ADAPTIVE_POLICY, floor);
		}
	}
	/* Adaptive traffic alone at a full-precision ceiling: the power model's cost scale falls. */
	assert_int_equal(bitmix_release(bm, "fmnist", hold), 0);
	set_uniform(m, l.m, points[0]);
	fill(in, BATCH * 28 * 28, 7);
	for (int i = 0; i < 200; i++) {
		assert_int_equal(
			bitmix_infer_precision(m, in, out, BATCH, BITMIX_INFER_CASCADE, NULL), 0);
		if (i % 20 == 19) {
			assert_int_equal(bitmix_get_policy(bm, "fmnist", &p), 0);
			if (p.cost_scale < 0.9)
				break;
		}
		usleep(5000);
	}
	assert_int_equal(bitmix_get_policy(bm, "fmnist", &p), 0);
	print_message("cost scale after cascade traffic: %.3f\n", p.cost_scale);
	assert_true(p.cost_scale < 0.9); /* random pixels escalate to 6 bits: about 0.55 */
	print_message("cascade final configurations seen (mask): 0x%x\n", seen);
	/* Some samples stopped early and some escalated (the floor of 3 merges the 2-bit start
	 * into the 3-bit configuration, so the cheapest seen is configuration 1). */
	assert_true(__builtin_popcount(seen) >= 2);
	assert_false(seen & 1u);
	assert_int_equal(bitmix_get_policy(bm, "fmnist", &p), 0);
	assert_string_equal(p.precision, "cascade");
	assert_true(p.adaptive_requests >= 2 * 4 * (6 * 3 + 2));
	assert_true(p.adaptive_bitops > 0 && p.adaptive_ceiling_bitops > 0);
	bitmix_close(bm);
	local_close(&l);
}

/* The placeholder has no adaptive sections: requests are refused, the YAML default falls back. */
static void test_model_without_sections(void **state)
{
	struct daemon_harness h;
	struct bitmix_policy_info p;
	struct bitmix_result r;
	struct bitmix_model *m;
	struct bitmix *bm;
	float *in, *out;

	(void)state;
	assert_int_equal(harness_start(&h, harness_bitmixd, placeholder_path, adaptive_yaml), 0);
	assert_true(harness_log_contains(&h, "has no CASCADE section", 5000));
	assert_int_equal(bitmix_connect(h.socket, &bm), 0);
	assert_int_equal(bitmix_open_model(bm, "fmnist", &m), 0);
	in = bitmix_tensor_alloc(bm, 28 * 28 * sizeof(float));
	out = bitmix_tensor_alloc(bm, 10 * sizeof(float));
	fill(in, 28 * 28, 1);
	assert_int_equal(bitmix_infer_precision(m, in, out, 1, BITMIX_INFER_CASCADE, &r),
			 -EOPNOTSUPP);
	assert_int_equal(bitmix_infer_precision(m, in, out, 1, BITMIX_INFER_POLICY, &r),
			 -EOPNOTSUPP);
	assert_int_equal(bitmix_infer_precision(m, in, out, 1, BITMIX_INFER_CURRENT, &r), 0);
	assert_int_equal(r.mode, 0);
	assert_true(r.bitops > 0);
	assert_int_equal(bitmix_get_policy(bm, "fmnist", &p), 0);
	assert_string_equal(p.precision, "fixed");
	bitmix_close(bm);
	harness_finish(&h);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limits_and_identity),
	};
	const struct CMUnitTest alone[] = {
		cmocka_unit_test(test_model_without_sections),
	};

	if (argc != 4) {
		fprintf(stderr, "usage: %s BITMIXD BUNDLED.bmx PLACEHOLDER.bmx\n", argv[0]);
		return 2;
	}
	harness_bitmixd = argv[1];
	harness_model = argv[2];
	placeholder_path = argv[3];
	harness_yaml = adaptive_yaml;
	return cmocka_run_group_tests(tests, harness_group_setup, harness_group_teardown) |
	       cmocka_run_group_tests(alone, NULL, NULL);
}
