/* SPDX-License-Identifier: MIT */
/*
 * fuzz_bmx.c — libFuzzer target for the .bmx loader (kernels/bmx_loader*.c) and, for the models
 * it accepts, the engine that runs them.
 *
 * The input is a whole .bmx file. Its CRC-32 is fixed up before loading (a mutated file would
 * otherwise stop at the checksum and never reach the graph, layer and adaptive checks); the
 * loader sees it in 64-byte aligned memory, as it does in a memfd. A model that loads is handed
 * to the engine: every operating point the loader accepted must build, and a small one runs a
 * sample at its lowest and highest bits, so that "validated" means "safe to run".
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bmx_engine.h"
#include "bmx_format.h"
#include "bmx_model.h"
#include "bmx_writer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Run models up to this many MACs per sample: enough for the tiny seeds, not for fmnist. */
#define FUZZ_RUN_MACS (1u << 20)

static void run_at(const struct bmx_engine *e, const struct bmx_model *m, unsigned bits)
{
	struct bmx_layer_bits lb[BMX_MAX_LAYERS];
	size_t in = bmx_model_input_size(m), out = bmx_model_output_size(m);
	float *input, *output;
	void *scratch;

	bmx_engine_default_bits(e, lb);
	for (uint32_t i = 0; i < m->layer_count; i++) {
		/* the nearest bit-width the layer allows at or above BITS, else its default */
		for (unsigned b = bits; b <= BMX_MAX_BITS; b++)
			if (m->views[i].bit_index[b] >= 0) {
				lb[i] = (struct bmx_layer_bits){ (uint8_t)b, (uint8_t)b };
				break;
			}
	}
	if (bmx_engine_check_bits(e, lb, NULL) < 0)
		bmx_engine_default_bits(e, lb);
	input = calloc(in ? in : 1, sizeof(float));
	output = calloc(out ? out : 1, sizeof(float));
	scratch = aligned_alloc(64, (bmx_engine_scratch_size(e, 1) + 63) / 64 * 64 + 64);
	if (input && output && scratch) {
		for (size_t i = 0; i < in; i++)
			input[i] = (float)((int)(i % 7) - 3) * 0.25f;
		bmx_engine_run(e, lb, 1, input, output, scratch);
	}
	free(scratch);
	free(output);
	free(input);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bmx_model *m = NULL;
	struct bmx_engine *e = NULL;
	struct bmx_error err;
	uint8_t *copy;

	copy = aligned_alloc(BMX_ALIGN, (size + BMX_ALIGN - 1) / BMX_ALIGN * BMX_ALIGN + BMX_ALIGN);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (size >= sizeof(struct bmx_file_header)) {
		uint32_t crc = bmx_file_checksum(copy, size);

		memcpy(copy + offsetof(struct bmx_file_header, checksum), &crc, sizeof(crc));
	}
	if (bmx_model_load_memory(copy, size, &m, &err) == 0) {
		if (bmx_engine_new(m, &e) == 0) {
			if (m->total_macs <= FUZZ_RUN_MACS) {
				run_at(e, m, 2);
				run_at(e, m, 8);
			}
			bmx_engine_free(e);
		}
		bmx_model_free(m);
	}
	free(copy);
	return 0;
}
