/* SPDX-License-Identifier: MIT */
/*
 * time_engine.c — how long one inference takes on the reference engine: builds a standard
 * architecture with bmx_build_arch(), then times bmx_engine_run() at uniform bits (each layer
 * at the nearest bit-width it supports).
 * Usage: time_engine ARCH [ITERATIONS [BITS [BATCH]]]   e.g. time_engine fmnist 1000 8 1
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bmx_engine.h"
#include "bmx_writer.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int time_arch(const char *arch, int iters, unsigned b, uint32_t batch)
{
	struct bmx_layer_bits bits[BMX_MAX_LAYERS];
	struct bmx_model *m = NULL;
	struct bmx_engine *e = NULL;
	struct bmx_error err = { { 0 } };
	void *file = NULL, *scratch = NULL;
	float *in = NULL, *out = NULL;
	size_t size;
	double t0, t1;
	int r;

	r = bmx_build_arch(arch, 1, arch, &file, &size);
	if (r >= 0)
		r = bmx_model_load_memory(file, size, &m, &err);
	if (r >= 0)
		r = bmx_engine_new(m, &e);
	if (r < 0) {
		fprintf(stderr, "%s: %s %s\n", arch, strerror(-r), err.msg);
		goto out;
	}
	b = b < BMX_MIN_BITS ? BMX_MIN_BITS : b > BMX_MAX_BITS ? BMX_MAX_BITS : b;
	for (uint32_t l = 0; l < m->layer_count; l++) {
		unsigned lb = b; /* the nearest supported at or below B, else the lowest above */

		while (lb > BMX_MIN_BITS && m->views[l].bit_index[lb] < 0)
			lb--;
		if (m->views[l].bit_index[lb] < 0)
			lb = m->views[l].bits[0];
		bits[l].w_bits = bits[l].a_bits = (uint8_t)lb;
	}
	scratch = aligned_alloc(64, (bmx_engine_scratch_size(e, batch) + 63) / 64 * 64);
	in = calloc((size_t)batch * bmx_model_input_size(m), sizeof(float));
	out = calloc((size_t)batch * bmx_model_output_size(m), sizeof(float));
	r = -ENOMEM;
	if (!scratch || !in || !out)
		goto out;
	for (size_t i = 0; i < batch * bmx_model_input_size(m); i++)
		in[i] = (float)(i % 251) / 251.0f;
	r = bmx_engine_run(e, bits, batch, in, out, scratch); /* warm-up */
	t0 = now_s();
	for (int i = 0; r >= 0 && i < iters; i++)
		r = bmx_engine_run(e, bits, batch, in, out, scratch);
	t1 = now_s();
	if (r < 0) {
		fprintf(stderr, "%s: run: %s\n", arch, strerror(-r));
		goto out;
	}
	printf("%s: %u layers, %.1f MMACs/sample, W%uA%u batch %u: %.3f ms per run (%d runs), scratch %zu KiB\n",
	       arch, m->layer_count, m->total_macs / 1e6, b, b, batch, (t1 - t0) * 1e3 / iters, iters,
	       bmx_engine_scratch_size(e, batch) >> 10);
out:
	free(in);
	free(out);
	free(scratch);
	bmx_engine_free(e);
	bmx_model_free(m);
	free(file);
	return r < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s ARCH [ITERATIONS [BITS [BATCH]]]\n", argv[0]);
		return 2;
	}
	return time_arch(argv[1], argc > 2 ? atoi(argv[2]) : 100, argc > 3 ? (unsigned)atoi(argv[3]) : 8,
			 argc > 4 ? (uint32_t)atoi(argv[4]) : 1);
}
