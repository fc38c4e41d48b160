/* SPDX-License-Identifier: MIT */
/*
 * test_adaptive.c — per-sample adaptive precision (kernels/bmx_adaptive.h) on every kernel path
 * this CPU runs, on the seeded "fmnist-adaptive" model and on the bundled trained model:
 *
 * - prefix reuse: every sample's output is bit-identical to a whole run at the configuration it
 *   ended at, whether it escalated once, twice or not at all, and with reuse switched off;
 * - determinism: the decisions (configuration, runs, BitOps) are the same run after run, in a
 *   batch of 16 or one by one, and follow the documented rule (confidence of the cheaper
 *   output below the threshold, the policy's scores against its threshold);
 * - limits: under random ceilings and floors, no layer of any configuration that ran is above
 *   the ceiling or below the floor (where the layer supports the floor).
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

#include "bmx_adaptive.h"
#include "bmx_writer.h"
#include "bmx_arch.h"

#define BATCH 16u

static const char *bundled_path; /* argv[1]: models/fmnist-resnet.bmx */

struct fixture {
	void *file;
	struct bmx_model *m;
	float input[BATCH * 28 * 28];
	float out[BATCH * 10], ref[10];
	void *scratch, *plain;
};

static uint64_t rng(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 33;
}

static void fill_input(float *x, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (float)(rng(&seed) % 256) / 255.0f;
}

static void load(struct fixture *f, int bundled)
{
	struct bmx_error err;
	size_t size;

	memset(f, 0, sizeof(*f));
	if (bundled) {
		if (bmx_model_load_file(bundled_path, &f->m, &err) < 0)
			fail_msg("%s: %s", bundled_path, err.msg);
	} else {
		assert_int_equal(bmx_build_arch("fmnist-adaptive", 3, "fa", &f->file, &size), 0);
		if (bmx_model_load_memory(f->file, size, &f->m, &err) < 0)
			fail_msg("%s", err.msg);
	}
	assert_non_null(f->m->cascade);
	assert_non_null(f->m->policy);
	fill_input(f->input, BATCH * 28 * 28, 99);
}

static void unload(struct fixture *f)
{
	bmx_model_free(f->m);
	free(f->file);
}

static void *scratch_for(size_t size)
{
	void *p = aligned_alloc(64, (size + 63) & ~(size_t)63);

	assert_non_null(p);
	return p;
}

/* Thresholds that split the batch: the median confidence at each configuration. */
static void median_thresholds(const struct bmx_engine *e, const struct fixture *f,
			      const struct bmx_adaptive_request *req, float *t)
{
	const struct bmx_model *m = f->m;
	struct bmx_layer_bits bits[BMX_MAX_LAYERS];
	float out[BATCH * 10], conf[BATCH];
	void *s = scratch_for(bmx_engine_scratch_size(e, BATCH));

	for (uint32_t k = 0; k + 1 < m->cascade->n_configs; k++) {
		bmx_adaptive_config(e, req, k, bits);
		assert_int_equal(bmx_engine_run(e, bits, BATCH, f->input, out, s), 0);
		for (uint32_t j = 0; j < BATCH; j++)
			conf[j] = bmx_confidence(m->cascade->confidence, out + j * 10, 10);
		for (uint32_t a = 0; a < BATCH; a++) /* sort */
			for (uint32_t b = a + 1; b < BATCH; b++)
				if (conf[b] < conf[a]) {
					float x = conf[a];

					conf[a] = conf[b], conf[b] = x;
				}
		t[k] = conf[BATCH / 2];
	}
	free(s);
}

/* Results field by field: the struct's padding bytes are whatever the stack held. */
static void assert_results_equal(const struct bmx_adaptive_result *a,
				 const struct bmx_adaptive_result *b, uint32_t n)
{
	for (uint32_t j = 0; j < n; j++) {
		assert_int_equal(a[j].config, b[j].config);
		assert_int_equal(a[j].runs, b[j].runs);
		assert_int_equal(a[j].bitops, b[j].bitops);
	}
}

/* Every sample's output equals a whole run at its final configuration, bit for bit. */
static void check_identical(const struct bmx_engine *e, const struct fixture *f,
			    const struct bmx_adaptive_request *req,
			    const struct bmx_adaptive_result *res, const float *out)
{
	struct bmx_layer_bits bits[BMX_MAX_LAYERS];
	float ref[10];
	void *s = scratch_for(bmx_engine_scratch_size(e, 1));

	for (uint32_t j = 0; j < BATCH; j++) {
		bmx_adaptive_config(e, req, res[j].config, bits);
		assert_int_equal(bmx_engine_run(e, bits, 1, f->input + j * 28 * 28, ref, s), 0);
		if (memcmp(ref, out + j * 10, sizeof(ref)) != 0)
			fail_msg("sample %u (config %u, %u runs): output differs from a whole run",
				 j, res[j].config, res[j].runs);
	}
	free(s);
}

static void cascade_case(int bundled, enum bmx_kernels_path path)
{
	struct fixture f;
	struct bmx_engine *e;
	struct bmx_adaptive_request req = { .mode = BMX_ADAPTIVE_CASCADE };
	struct bmx_adaptive_result res[BATCH], again[BATCH], one[BATCH], plain[BATCH];
	float t[BMX_MAX_ADAPTIVE_CONFIGS], out2[BATCH * 10];
	struct bmx_layer_bits c0[BMX_MAX_LAYERS];
	float cheap[BATCH * 10];
	unsigned levels[BMX_MAX_ADAPTIVE_CONFIGS] = { 0 };
	void *s;

	load(&f, bundled);
	assert_int_equal(bmx_engine_new_path(f.m, path, &e), 0);
	s = scratch_for(bmx_adaptive_scratch_size(e, BATCH));
	median_thresholds(e, &f, &req, t);
	req.thresholds = t;
	assert_int_equal(bmx_adaptive_run(e, &req, BATCH, f.input, f.out, s, NULL, res), 0);
	check_identical(e, &f, &req, res, f.out);

	/* The rule: a sample escalates from the first configuration iff its confidence < t[0]. */
	bmx_adaptive_config(e, &req, 0, c0);
	assert_int_equal(bmx_engine_run(e, c0, BATCH, f.input, cheap, s), 0);
	for (uint32_t j = 0; j < BATCH; j++) {
		int esc = bmx_confidence(f.m->cascade->confidence, cheap + j * 10, 10) < t[0];

		assert_int_equal(res[j].runs > 1, esc);
		assert_int_equal(res[j].config > 0, esc);
		levels[res[j].config]++;
		assert_true(res[j].bitops >= bmx_bitops(f.m, c0, 0));
	}
	assert_true(levels[0] > 0 && levels[0] < BATCH); /* the medians split the batch */

	/* Deterministic: again, and one sample at a time. */
	assert_int_equal(bmx_adaptive_run(e, &req, BATCH, f.input, out2, s, NULL, again), 0);
	assert_results_equal(res, again, BATCH);
	assert_memory_equal(f.out, out2, sizeof(out2));
	for (uint32_t j = 0; j < BATCH; j++) {
		assert_int_equal(bmx_adaptive_run(e, &req, 1, f.input + j * 28 * 28, out2, s, NULL,
						  &one[j]),
				 0);
		assert_memory_equal(out2, f.out + j * 10, 10 * sizeof(float));
	}
	assert_results_equal(res, one, BATCH);

	/* Without reuse: the same outputs and decisions, more BitOps for the escalated. */
	req.no_reuse = 1;
	assert_int_equal(bmx_adaptive_run(e, &req, BATCH, f.input, out2, s, NULL, plain), 0);
	assert_memory_equal(f.out, out2, sizeof(out2));
	for (uint32_t j = 0; j < BATCH; j++) {
		assert_int_equal(plain[j].config, res[j].config);
		if (res[j].runs > 1)
			assert_true(plain[j].bitops > res[j].bitops);
		else
			assert_true(plain[j].bitops == res[j].bitops);
	}
	free(s);
	bmx_engine_free(e);
	unload(&f);
}

static void policy_case(int bundled, enum bmx_kernels_path path)
{
	const float thresholds[3] = { -1e30f, 0.0f, 1e30f };
	struct fixture f;
	struct bmx_engine *e;
	struct bmx_adaptive_request req = { .mode = BMX_ADAPTIVE_POLICY };
	struct bmx_adaptive_result res[BATCH], one;
	float out1[10], features[4096];
	void *s;

	load(&f, bundled);
	assert_int_equal(bmx_engine_new_path(f.m, path, &e), 0);
	s = scratch_for(bmx_adaptive_scratch_size(e, BATCH));
	for (int i = 0; i < 4; i++) {
		float t = i < 3 ? thresholds[i] : f.m->policy->threshold;
		const struct bmx_node *fn = &f.m->nodes[f.m->policy->feature_node];
		struct bmx_layer_bits c0[BMX_MAX_LAYERS];

		req.thresholds = &t;
		assert_int_equal(bmx_adaptive_run(e, &req, BATCH, f.input, f.out, s, NULL, res), 0);
		check_identical(e, &f, &req, res, f.out);
		bmx_adaptive_config(e, &req, 0, c0);
		for (uint32_t j = 0; j < BATCH; j++) {
			void *one_s = scratch_for(bmx_engine_scratch_size(e, 1));

			/* The choice is the documented rule on the features of this sample alone. */
			assert_int_equal(
				bmx_engine_run_range(e, c0, 1, f.input + j * 28 * 28, one_s, 0,
						     f.m->position[f.m->policy->feature_node] + 1,
						     NULL),
				0);
			bmx_pool_features(bmx_engine_value(e, 1, one_s, f.m->policy->feature_node),
					  fn->out_h * fn->out_w, fn->out_c, features);
			assert_int_equal(res[j].config, bmx_policy_choose(f.m, features, t));
			assert_int_equal(res[j].runs, 1);
			free(one_s);
			assert_int_equal(bmx_adaptive_run(e, &req, 1, f.input + j * 28 * 28, out1,
							  s, NULL, &one),
					 0);
			assert_results_equal(&one, &res[j], 1);
			assert_memory_equal(out1, f.out + j * 10, sizeof(out1));
		}
		if (i == 0) /* -inf: every sample takes the cheapest */
			for (uint32_t j = 0; j < BATCH; j++)
				assert_int_equal(res[j].config, 0);
		if (i == 2)
			for (uint32_t j = 0; j < BATCH; j++)
				assert_int_equal(res[j].config, f.m->policy->n_configs - 1);
	}
	free(s);
	bmx_engine_free(e);
	unload(&f);
}

/* Random ceilings and floors: no configuration that ran leaves [floor, ceiling]. */
static void limits_case(int bundled)
{
	struct fixture f;
	struct bmx_engine *e;
	struct bmx_adaptive_result res[BATCH];
	struct bmx_layer_bits ceiling[BMX_MAX_LAYERS], bits[BMX_MAX_LAYERS];
	uint64_t seed = 5;
	void *s;

	load(&f, bundled);
	assert_int_equal(bmx_engine_new(f.m, &e), 0);
	s = scratch_for(bmx_adaptive_scratch_size(e, BATCH));
	for (int it = 0; it < 40; it++) {
		struct bmx_adaptive_request req = {
			.mode = it % 2 ? BMX_ADAPTIVE_POLICY : BMX_ADAPTIVE_CASCADE,
			.ceiling = ceiling,
			.floor = (uint8_t)(it % 3 ? 2 + rng(&seed) % 7 : 0),
		};
		const float low[2] = { 2.0f, 2.0f }, zero[2] = { -1e30f, -1e30f };

		for (uint32_t l = 0; l < f.m->layer_count; l++) {
			const struct bmx_layer_view *v = &f.m->views[l];
			uint8_t b = v->bits[rng(&seed) % v->nbits];

			/* the governor publishes ceilings at or above the floor where it can */
			for (int i = 0; i < v->nbits && b < req.floor; i++)
				b = v->bits[i];
			ceiling[l] = (struct bmx_layer_bits){ b, b };
		}
		/* Escalate everything (max prob is < 2) or take the cheapest, alternately. */
		req.thresholds = it % 4 < 2 ? low : zero;
		assert_int_equal(bmx_adaptive_run(e, &req, BATCH, f.input, f.out, s, NULL, res), 0);
		check_identical(e, &f, &req, res, f.out);
		for (uint32_t j = 0; j < BATCH; j++)
			for (uint32_t k = 0; k <= res[j].config; k++) {
				bmx_adaptive_config(e, &req, k, bits);
				for (uint32_t l = 0; l < f.m->layer_count; l++) {
					assert_true(bits[l].w_bits <= ceiling[l].w_bits);
					assert_true(bits[l].a_bits <= ceiling[l].a_bits);
					if (f.m->views[l].bit_index[req.floor < 2 ? 2 : req.floor] >=
						    0 &&
					    req.floor <= ceiling[l].w_bits)
						assert_true(bits[l].w_bits >= req.floor);
				}
			}
	}
	free(s);
	bmx_engine_free(e);
	unload(&f);
}

static void each_path(void (*fn)(int, enum bmx_kernels_path), int bundled)
{
	static const enum bmx_kernels_path paths[] = { BMX_KERNELS_REF, BMX_KERNELS_AVX2,
						       BMX_KERNELS_AVXVNNI, BMX_KERNELS_AVX512 };

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (!bmx_kernels_supported(paths[i]))
			continue;
		printf("# %s on %s\n", bundled ? "bundled model" : "fmnist-adaptive",
		       bmx_kernels_name(paths[i]));
		fn(bundled, paths[i]);
	}
}

static void test_cascade_seeded(void **state)
{
	(void)state;
	each_path(cascade_case, 0);
}
static void test_cascade_bundled(void **state)
{
	(void)state;
	each_path(cascade_case, 1);
}
static void test_policy_seeded(void **state)
{
	(void)state;
	each_path(policy_case, 0);
}
static void test_policy_bundled(void **state)
{
	(void)state;
	each_path(policy_case, 1);
}
static void test_limits_seeded(void **state)
{
	(void)state;
	limits_case(0);
}
static void test_limits_bundled(void **state)
{
	(void)state;
	limits_case(1);
}

/* A model without the sections refuses adaptive requests and still runs OFF. */
static void test_unsupported(void **state)
{
	struct bmx_adaptive_request req = { .mode = BMX_ADAPTIVE_CASCADE };
	struct bmx_adaptive_result res[BATCH];
	struct bmx_engine *e;
	struct bmx_model *m;
	struct bmx_error err;
	float in[BATCH * 28 * 28], out[BATCH * 10];
	void *file, *s;
	size_t size;

	(void)state;
	fill_input(in, sizeof(in) / sizeof(in[0]), 1);
	assert_int_equal(bmx_build_arch("fmnist", 3, "f", &file, &size), 0);
	assert_int_equal(bmx_model_load_memory(file, size, &m, &err), 0);
	assert_null(m->cascade);
	assert_int_equal(bmx_engine_new(m, &e), 0);
	s = scratch_for(bmx_adaptive_scratch_size(e, BATCH));
	assert_int_equal(bmx_adaptive_run(e, &req, BATCH, in, out, s, NULL, res), -EOPNOTSUPP);
	req.mode = BMX_ADAPTIVE_POLICY;
	assert_int_equal(bmx_adaptive_run(e, &req, BATCH, in, out, s, NULL, res), -EOPNOTSUPP);
	req.mode = BMX_ADAPTIVE_OFF;
	assert_int_equal(bmx_adaptive_run(e, &req, BATCH, in, out, s, NULL, res), 0);
	assert_int_equal(res[0].runs, 1);
	free(s);
	bmx_engine_free(e);
	bmx_model_free(m);
	free(file);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cascade_seeded), cmocka_unit_test(test_cascade_bundled),
		cmocka_unit_test(test_policy_seeded),  cmocka_unit_test(test_policy_bundled),
		cmocka_unit_test(test_limits_seeded),  cmocka_unit_test(test_limits_bundled),
		cmocka_unit_test(test_unsupported),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: test_adaptive BUNDLED.bmx\n");
		return 2;
	}
	bundled_path = argv[1];
	return cmocka_run_group_tests_name("adaptive", tests, NULL, NULL);
}
