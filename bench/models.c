/* SPDX-License-Identifier: MIT */
/*
 * models.c — bench/models: whole models at batch 1 on our engine (the bundled fmnist shape and
 * a ResNet-18-shaped model, 224x224, random weights, from bmx_build_arch()) at 8, 4 and 2 bits,
 * beside PyTorch's quantized int8 engine on the same shapes (bench/torch_models.py, run by
 * /usr/bin/python3 in the same run; skipped with a message if torch is missing). Then the cost
 * of changing bits between consecutive requests: runs alternating 8 and 2 bits against the
 * mean of the fixed-bits runs.
 * Usage: models [--threads N] [--runs ROUNDS] [--no-torch] [--json]   (run from the source tree,
 * or set BITMIX_BENCH_DIR to the folder holding torch_models.py)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "bmx_writer.h"
#include "bmx_arch.h"

struct model_run {
	const char *arch;
	struct bmx_model *model;
	struct bmx_engine *engine;
	void *file, *scratch;
	double new_ms; /* bmx_engine_new(): folding and repacking into bit-planes */
	float *in, *out;
	struct bmx_layer_bits bits[3][BMX_MAX_LAYERS]; /* 8, 4, 2 */
};

/* Each layer at the supported bit-width nearest to B (at or below if possible). */
static void uniform_bits(const struct bmx_model *m, unsigned b, struct bmx_layer_bits *bits)
{
	for (uint32_t l = 0; l < m->layer_count; l++) {
		const struct bmx_layer_view *v = &m->views[l];
		unsigned best = v->bits[v->nbits - 1];

		for (unsigned i = 0; i < v->nbits; i++)
			if (v->bits[i] >= b) {
				best = v->bits[i];
				break;
			}
		bits[l] = (struct bmx_layer_bits){ (uint8_t)best, (uint8_t)best };
	}
}

static int model_open(struct model_run *r, const char *arch)
{
	struct bmx_error err;
	size_t size;
	int rc;

	memset(r, 0, sizeof(*r));
	r->arch = arch;
	rc = bmx_build_arch(arch, 1, arch, &r->file, &size);
	if (rc == 0)
		rc = bmx_model_load_memory(r->file, size, &r->model, &err);
	if (rc == 0) {
		double t0 = bench_now();

		rc = bmx_engine_new(r->model, &r->engine);
		r->new_ms = (bench_now() - t0) * 1e3;
	}
	if (rc < 0)
		return rc;
	r->scratch = aligned_alloc(64, (bmx_engine_scratch_size(r->engine, 1) + 63) / 64 * 64);
	r->in = calloc(bmx_model_input_size(r->model), sizeof(float));
	r->out = calloc(bmx_model_output_size(r->model), sizeof(float));
	if (!r->scratch || !r->in || !r->out)
		return -ENOMEM;
	for (uint64_t i = 0; i < bmx_model_input_size(r->model); i++)
		r->in[i] = (float)(i % 255) / 255.0f;
	uniform_bits(r->model, 8, r->bits[0]);
	uniform_bits(r->model, 4, r->bits[1]);
	uniform_bits(r->model, 2, r->bits[2]);
	return 0;
}

static void model_close(struct model_run *r)
{
	bmx_engine_free(r->engine);
	bmx_model_free(r->model);
	free(r->file);
	free(r->scratch);
	free(r->in);
	free(r->out);
}

/* Seconds of one run at operating point BITS (0: 8, 1: 4, 2: 2 bits). */
static double run_once(struct model_run *r, const struct bmx_parallel *par, int bits)
{
	double t0 = bench_now();

	bmx_engine_run_parallel(r->engine, r->bits[bits], 1, r->in, r->out, r->scratch, par);
	return bench_now() - t0;
}

/* Medians over rounds: [0] 8 bits, [1] 4, [2] 2, [3] 8 and [4] 2 bits while alternating. */
struct timings {
	double ms[5];
};

/*
 * ROUNDS rounds, each: 3 runs at 8 bits, 3 at 4, 3 at 2 (the last 2 of each block are kept:
 * fixed bits), then 8, 2, 8, 2 (all kept: every run follows a change of bits). Interleaving
 * the blocks keeps a burst of load on a shared machine from biasing one of them.
 */
static int time_rounds(struct model_run *r, const struct bmx_parallel *par, unsigned rounds,
		       struct timings *out)
{
	double *t[5];
	int rc = 0;

	for (int i = 0; i < 5; i++)
		t[i] = calloc(2 * (size_t)rounds, sizeof(double));
	for (int i = 0; i < 5; i++)
		if (!t[i])
			rc = -ENOMEM;
	for (unsigned k = 0; rc == 0 && k < 3; k++) /* warm-up */
		run_once(r, par, 0);
	for (unsigned k = 0; rc == 0 && k < rounds; k++) {
		for (int b = 0; b < 3; b++) {
			run_once(r, par, b);
			t[b][2 * k] = run_once(r, par, b);
			t[b][2 * k + 1] = run_once(r, par, b);
		}
		for (int j = 0; j < 2; j++) {
			t[3][2 * k + j] = run_once(r, par, 0);
			t[4][2 * k + j] = run_once(r, par, 2);
		}
	}
	for (int i = 0; i < 5; i++) {
		if (rc == 0)
			out->ms[i] = bench_median(t[i], 2 * (size_t)rounds) * 1e3;
		free(t[i]);
	}
	return rc;
}

/* PyTorch's int8 backends, in the order of the table's columns. */
static const char *const torch_backends[] = { "onednn", "fbgemm" };
#define N_BACKENDS (sizeof(torch_backends) / sizeof(torch_backends[0]))

/*
 * PyTorch's ms per model (0 fmnist, 1 resnet18) and backend, from torch_models.py; -1 where
 * unavailable (Debian's python3-torch 1.13 is built without fbgemm: its
 * torch.backends.quantized.supported_engines lists only qnnpack and onednn).
 */
static void torch_times(unsigned threads, double ms[2][N_BACKENDS])
{
	const char *dir = getenv("BITMIX_BENCH_DIR");
	char cmd[512], line[512], arch[32], backend[32];
	int any = 0;
	FILE *p;

	for (int a = 0; a < 2; a++)
		for (size_t b = 0; b < N_BACKENDS; b++)
			ms[a][b] = -1;
	if (access("/usr/bin/python3", X_OK) != 0) {
		fprintf(stderr, "models: /usr/bin/python3 missing: PyTorch columns skipped\n");
		return;
	}
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s/torch_models.py --threads %u 2>/dev/null",
		 dir ? dir : "bench", threads);
	p = popen(cmd, "r");
	if (!p)
		return;
	while (fgets(line, sizeof(line), p)) {
		const char *m = strstr(line, "\"ms\": ");
		const char *be = strstr(line, "\"backend\": \"");
		double v;

		if (sscanf(line, "{\"arch\": \"%31[^\"]\"", arch) != 1 || !m || !be ||
		    sscanf(be + 12, "%31[^\"]", backend) != 1 || sscanf(m + 6, "%lf", &v) != 1)
			continue;
		for (size_t b = 0; b < N_BACKENDS; b++) {
			if (strcmp(backend, torch_backends[b]) != 0)
				continue;
			ms[strcmp(arch, "resnet18") == 0][b] = v / 1e3;
			any = 1;
		}
	}
	if (pclose(p) != 0 && !any)
		fprintf(stderr,
			"models: python3-torch not usable (tools/setup-bench-deps.sh): PyTorch columns skipped\n");
	for (size_t b = 0; any && b < N_BACKENDS; b++)
		if (ms[0][b] < 0)
			fprintf(stderr,
				"models: this PyTorch has no '%s' int8 backend: its column is empty\n",
				torch_backends[b]);
}

/* The faster of the PyTorch backends that ran, or -1. */
static double torch_best(const double ms[N_BACKENDS])
{
	double best = -1;

	for (size_t b = 0; b < N_BACKENDS; b++)
		if (ms[b] > 0 && (best < 0 || ms[b] < best))
			best = ms[b];
	return best;
}

int main(int argc, char **argv)
{
	static const char *const archs[] = { "fmnist", "resnet18" };
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads = cpus > 0 ? (unsigned)cpus : 1, runs = 0;
	int use_torch = 1, json = 0;
	double torch_ms[2][N_BACKENDS], best;
	char cpu[128];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			runs = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--no-torch") == 0)
			use_torch = 0;
		else if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else {
			fprintf(stderr,
				"usage: %s [--threads N] [--runs ROUNDS] [--no-torch] [--json]\n",
				argv[0]);
			return 2;
		}
	}
	if (threads < 1 || threads > 16)
		return 2;
	for (int a = 0; a < 2; a++)
		for (size_t b = 0; b < N_BACKENDS; b++)
			torch_ms[a][b] = -1;
	if (use_torch)
		torch_times(threads, torch_ms);
	bench_cpu_model(cpu, sizeof(cpu));
	sleep(1); /* let OpenMP's idle threads stop spinning */
	if (!json)
		printf("%-9s %7s %9s %9s %9s %9s %9s %8s %8s %9s %9s %9s\n", "model", "threads",
		       "W8A8 ms", "W4A4 ms", "W2A2 ms", "onednn ms", "fbgemm ms", "8/torch",
		       "8b/4b", "8b/2b", "alt/fixed", "new ms");
	for (size_t a = 0; a < 2; a++) {
		struct bench_pool *pool = bench_pool_new(threads);
		struct bmx_parallel par;
		struct model_run r;
		unsigned n = runs ? runs : (a == 0 ? 100 : 12); /* rounds of 13 runs */
		struct timings tm;
		double t8, t4, t2, alt;
		char na[2][16];

		if (!pool || model_open(&r, archs[a]) < 0) {
			fprintf(stderr, "models: %s: cannot build\n", archs[a]);
			return 1;
		}
		par = bench_pool_parallel(pool);
		if (time_rounds(&r, &par, n, &tm) < 0)
			return 1;
		t8 = tm.ms[0] / 1e3;
		t4 = tm.ms[1] / 1e3;
		t2 = tm.ms[2] / 1e3;
		alt = (tm.ms[3] + tm.ms[4]) / 2 / 1e3;
		best = torch_best(torch_ms[a]);
		if (json)
			printf("{\"arch\":\"%s\",\"threads\":%u,\"kernels\":\"%s\",\"w8a8_ms\":%.4f,"
			       "\"w4a4_ms\":%.4f,\"w2a2_ms\":%.4f,\"torch_int8_onednn_ms\":%.4f,"
			       "\"torch_int8_fbgemm_ms\":%.4f,\"alternating_8_2_ms\":%.4f,"
			       "\"fixed_8_2_mean_ms\":%.4f,\"rounds\":%u,\"engine_new_ms\":%.2f,"
			       "\"cpu\":\"%s\"}\n",
			       archs[a], threads, bmx_kernels_name(bmx_engine_path(r.engine)),
			       t8 * 1e3, t4 * 1e3, t2 * 1e3, torch_ms[a][0] * 1e3,
			       torch_ms[a][1] * 1e3, alt * 1e3, (t8 + t2) / 2 * 1e3, n, r.new_ms,
			       cpu);
		else
			printf("%-9s %7u %9.3f %9.3f %9.3f %9s %9s %8.2f %8.2f %9.2f %9.3f %9.1f\n",
			       archs[a], threads, t8 * 1e3, t4 * 1e3, t2 * 1e3,
			       bench_ms_or_na(torch_ms[a][0], na[0], sizeof(na[0])),
			       bench_ms_or_na(torch_ms[a][1], na[1], sizeof(na[1])),
			       best > 0 ? t8 / best : 0, t8 / t4, t8 / t2, alt / ((t8 + t2) / 2),
			       r.new_ms);
		model_close(&r);
		bench_pool_free(pool);
	}
	if (!json)
		printf("# %s, kernels %s; medians in ms; alt/fixed = alternating 8/2-bit runs over the "
		       "mean of fixed 8 and fixed 2 (1.00: switching costs nothing); onednn, fbgemm = "
		       "PyTorch int8 backends, FX post-training quantization (n/a: not in this "
		       "PyTorch); 8/torch = W8A8 over the faster of them\n",
		       cpu, bmx_kernels_name(bmx_kernels_resolve(BMX_KERNELS_AUTO)));
	return 0;
}
