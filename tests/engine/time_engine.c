/* SPDX-License-Identifier: MIT */
/*
 * time_engine.c — how long one inference takes on the engine (the path BITMIX_KERNELS or the
 * CPU picks): builds a standard architecture with bmx_build_arch(), or loads a .bmx file, then
 * times bmx_engine_run() at uniform bits (each layer at the nearest bit-width it supports).
 * Usage: time_engine ARCH|FILE.bmx [ITERATIONS [BITS[,ABITS] [BATCH]]]
 *   e.g. time_engine fmnist 1000 8 1; time_engine models/fmnist-resnet.bmx 1000 4 16;
 *        time_engine models/fmnist-resnet.bmx 1000 2,4 1 (2-bit weights, 4-bit activations)
 *        time_engine ARCH|FILE.bmx ITERATIONS BITS BATCH nodes   (then each node alone, too)
 * Also the harness to profile a run under perf or callgrind (the iterations are the only work).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bmx_engine.h"
#include "bmx_writer.h"
#include "bmx_arch.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	const double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The Q-quantile of N times (sorted in place): the machine is shared, so medians, not means. */
static double quantile(double *t, size_t n, double q)
{
	qsort(t, n, sizeof(double), cmp_double);
	return t[(size_t)(q * (double)(n - 1))];
}

static const char *op_name(uint16_t op)
{
	static const char *const names[] = { "?",    "input",	"conv2d",  "linear",
					     "add",  "maxpool", "avgpool", "gavgpool",
					     "relu", "relu6",	"flatten", "softmax" };

	return op < sizeof(names) / sizeof(names[0]) ? names[op] : "?";
}

/*
 * The time of each position of the order run alone (bmx_engine_run_range() over [i, i + 1))
 * after one whole run has filled the values it reads; a ReLU fused into its layer shows ~0.
 */
static void time_nodes(const struct bmx_engine *e, const struct bmx_layer_bits *bits, int iters,
		       uint32_t batch, const float *in, void *scratch)
{
	const struct bmx_model *m = bmx_engine_model(e);
	double total = 0, *t = calloc(m->node_count, sizeof(double));
	double *lo = calloc(m->node_count, sizeof(double));
	double *runs = calloc((size_t)iters, sizeof(double));

	if (!t || !lo || !runs)
		goto out;
	for (uint32_t i = 0; i < m->node_count; i++) {
		for (int k = 0; k < iters; k++) {
			double t0 = now_s();

			bmx_engine_run_range(e, bits, batch, in, scratch, i, i + 1, NULL);
			runs[k] = now_s() - t0;
		}
		t[i] = quantile(runs, (size_t)iters, 0.5) * 1e3;
		lo[i] = runs[0] * 1e3; /* sorted by quantile() */
		total += t[i];
	}
	for (uint32_t i = 0; i < m->node_count; i++) {
		const struct bmx_node *n = &m->nodes[m->order[i]];
		const struct bmx_node *x = n->n_inputs ? &m->nodes[n->inputs[0]] : n;

		printf("  %2u %-8s %3ux%-3ux%-4u -> %3ux%-3ux%-4u k%ux%u/%u g%-3u %8.4f ms %5.1f%% "
		       "min %8.4f\n",
		       i, op_name(n->op), x->out_h, x->out_w, x->out_c, n->out_h, n->out_w,
		       n->out_c, n->kernel_h, n->kernel_w, n->stride_h, n->groups, t[i],
		       100 * t[i] / total, lo[i]);
	}
	printf("  sum of node medians %.4f ms\n", total);
out:
	free(runs);
	free(lo);
	free(t);
}

/* The nearest bit-width layer V supports at or below B, else the lowest above. */
static uint8_t bits_near(const struct bmx_layer_view *v, unsigned b)
{
	b = b < BMX_MIN_BITS ? BMX_MIN_BITS : b > BMX_MAX_BITS ? BMX_MAX_BITS : b;
	while (b > BMX_MIN_BITS && v->bit_index[b] < 0)
		b--;
	return (uint8_t)(v->bit_index[b] < 0 ? v->bits[0] : b);
}

static int time_arch(const char *arch, int iters, unsigned b, unsigned ab, uint32_t batch,
		     int nodes)
{
	struct bmx_layer_bits bits[BMX_MAX_LAYERS];
	struct bmx_model *m = NULL;
	struct bmx_engine *e = NULL;
	struct bmx_error err = { { 0 } };
	void *file = NULL, *scratch = NULL;
	float *in = NULL, *out = NULL;
	size_t size;
	double *runs = NULL, sum = 0, med;
	int r;

	if (strstr(arch, ".bmx")) {
		r = bmx_model_load_file(arch, &m, &err);
	} else {
		r = bmx_build_arch(arch, 1, arch, &file, &size);
		if (r >= 0)
			r = bmx_model_load_memory(file, size, &m, &err);
	}
	if (r >= 0)
		r = bmx_engine_new(m, &e);
	if (r < 0) {
		fprintf(stderr, "%s: %s %s\n", arch, strerror(-r), err.msg);
		goto out;
	}
	for (uint32_t l = 0; l < m->layer_count; l++) {
		bits[l].w_bits = bits_near(&m->views[l], b);
		bits[l].a_bits = bits_near(&m->views[l], ab);
	}
	scratch = aligned_alloc(64, (bmx_engine_scratch_size(e, batch) + 63) / 64 * 64);
	in = calloc((size_t)batch * bmx_model_input_size(m), sizeof(float));
	out = calloc((size_t)batch * bmx_model_output_size(m), sizeof(float));
	runs = calloc(iters > 0 ? (size_t)iters : 1, sizeof(double));
	r = -ENOMEM;
	if (!scratch || !in || !out || !runs || iters < 1)
		goto out;
	for (size_t i = 0; i < batch * bmx_model_input_size(m); i++)
		in[i] = (float)(i % 251) / 251.0f;
	r = bmx_engine_run(e, bits, batch, in, out, scratch); /* warm-up */
	for (int i = 0; r >= 0 && i < iters; i++) {
		double t0 = now_s();

		r = bmx_engine_run(e, bits, batch, in, out, scratch);
		runs[i] = now_s() - t0;
		sum += runs[i];
	}
	if (r < 0) {
		fprintf(stderr, "%s: run: %s\n", arch, strerror(-r));
		goto out;
	}
	med = quantile(runs, (size_t)iters, 0.5); /* sorts RUNS: runs[0] is the minimum */
	printf("%s: %u layers, %.1f MMACs/sample, W%uA%u batch %u: %.4f ms per run (mean), median %.4f, "
	       "p10 %.4f, min %.4f (%d runs), scratch %zu KiB\n",
	       arch, m->layer_count, m->total_macs / 1e6, b, ab, batch, sum * 1e3 / iters,
	       med * 1e3, quantile(runs, (size_t)iters, 0.1) * 1e3, runs[0] * 1e3, iters,
	       bmx_engine_scratch_size(e, batch) >> 10);
	if (nodes)
		time_nodes(e, bits, iters, batch, in, scratch);
out:
	free(runs);
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
	const char *bits = argc > 3 ? argv[3] : "8", *comma = strchr(bits, ',');
	const unsigned w = (unsigned)atoi(bits), a = comma ? (unsigned)atoi(comma + 1) : w;

	if (argc < 2) {
		fprintf(stderr, "usage: %s ARCH|FILE.bmx [ITERATIONS [BITS[,ABITS] [BATCH]]]\n",
			argv[0]);
		return 2;
	}
	return time_arch(argv[1], argc > 2 ? atoi(argv[2]) : 100, w, a,
			 argc > 4 ? (uint32_t)atoi(argv[4]) : 1,
			 argc > 5 && strcmp(argv[5], "nodes") == 0);
}
