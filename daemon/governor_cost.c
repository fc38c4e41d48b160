/* SPDX-License-Identifier: MIT */
/*
 * governor_cost.c — the cost table's measurement: the engine's time per sample at each uniform
 * bit-width, taken when a model loads (bitmixd) or when a benchmark builds a policy
 * (bench/governor --cost measured), so that both cost the same way.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "governor.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Uniform B bits, or each layer's nearest bits it supports. */
static void uniform_bits(const struct bmx_model *model, unsigned b, struct bmx_layer_bits *bits)
{
	for (uint32_t l = 0; l < model->layer_count; l++) {
		const struct bmx_layer_view *v = &model->views[l];
		unsigned best = v->bits[0];

		for (unsigned i = 0; i < v->nbits; i++)
			if (abs((int)v->bits[i] - (int)b) < abs((int)best - (int)b))
				best = v->bits[i];
		bits[l] = (struct bmx_layer_bits){ (uint8_t)best, (uint8_t)best };
	}
}

/*
 * The best of a few timed runs of a batch of MEASURE_BATCH per bit-width, about 60 ms for the
 * whole table at most: enough to rank bit-widths by cost, short enough not to delay start-up.
 * Bit-widths the time budget did not reach are scaled from the measured ones by BitOps
 * (governor_policy.c). Timing noise must not make fewer bits look dearer than more, so the
 * table is made non-decreasing in bits.
 */
#define MEASURE_BATCH 16
void gov_measure_uniform_ns(const struct bmx_engine *engine, double uniform_ns[9])
{
	const struct bmx_model *model = bmx_engine_model(engine);
	size_t in = bmx_model_input_size(model) * MEASURE_BATCH;
	size_t out = bmx_model_output_size(model) * MEASURE_BATCH;
	struct bmx_layer_bits *bits = calloc(model->layer_count, sizeof(*bits));
	float *input = calloc(in, sizeof(float)), *output = calloc(out, sizeof(float));
	void *scratch = aligned_alloc(64, (bmx_engine_scratch_size(engine, MEASURE_BATCH) + 63) /
						  64 * 64);
	uint64_t budget_ns = 60000000, spent = 0;
	double floor_ns = 0;

	memset(uniform_ns, 0, 9 * sizeof(*uniform_ns));
	if (!bits || !input || !output || !scratch)
		goto out;
	for (unsigned b = 8; b >= 2 && spent < budget_ns; b--) {
		uint64_t best = UINT64_MAX;

		if (!(model->info->bits_mask & (1u << b)))
			continue;
		uniform_bits(model, b, bits);
		for (int rep = 0; rep < 5 && spent < budget_ns; rep++) {
			uint64_t t0 = mono_ns(), t;

			if (bmx_engine_run(engine, bits, MEASURE_BATCH, input, output, scratch) < 0)
				break;
			t = mono_ns() - t0;
			spent += t;
			best = t < best ? t : best;
		}
		if (best != UINT64_MAX)
			uniform_ns[b] = (double)best / MEASURE_BATCH;
	}
	for (unsigned b = 2; b <= 8; b++) {
		if (uniform_ns[b] > 0 && uniform_ns[b] < floor_ns)
			uniform_ns[b] = floor_ns;
		if (uniform_ns[b] > floor_ns)
			floor_ns = uniform_ns[b];
	}
out:
	free(bits);
	free(input);
	free(output);
	free(scratch);
}

