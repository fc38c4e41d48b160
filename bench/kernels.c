/* SPDX-License-Identifier: MIT */
/*
 * kernels.c — bench/kernels: one LINEAR layer (GEMV at M = 1, GEMM above) on our engine at every
 * weight bit-width, beside oneDNN's int8 u8s8s32 matmul and OpenBLAS fp32 sgemm/sgemv on the
 * same shape, and the roofline bound from a read bandwidth and the kernel path's int8 multiply
 * peak (vpdpbusd, or vpmaddubsw on AVX2) measured in the same run; the CPU model and the path
 * (BITMIX_KERNELS or the CPU's best) head the table. DRAM rows stream their weights from memory: each run uses the next of several copies
 * of the weights, together at least 128 MiB (4x this machine's L3), for us and the peers alike.
 * Peers are measured in separate phases (ours, oneDNN, OpenBLAS) so that one library's idle
 * spinning threads do not run during another's measurement.
 * Usage: kernels [--json] [--threads N] [--iters N] [--quick] [--shape M,K,N[,dram]]...
 * (--shape replaces the default shapes, e.g. to profile one of them)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "bench_peers.h"
#include "bmx_writer.h"

#define ROTATE_BYTES (128u << 20) /* weights touched per cycle of copies on DRAM rows */
#define MAX_COPIES 32u
#define MAX_SHAPES 8

struct shape {
	uint32_t m, k, n;
	int from_dram; /* rotate over copies of the weights bigger than the caches together */
};

struct row {
	struct shape s;
	unsigned w_bits; /* 0: the peers' row */
	double ours, onednn, openblas;
};

struct opts {
	int json, quick;
	struct shape shapes[MAX_SHAPES];
	size_t n_shapes;
	unsigned threads, iters;
};

/* Copies of W bytes of weights that together reach ROTATE_BYTES (1 for cache-hot rows). */
static unsigned copies_for(const struct shape *s, double bytes)
{
	unsigned c = s->from_dram ? (unsigned)(ROTATE_BYTES / bytes + 0.999) : 1;

	return c < 1 ? 1 : c > MAX_COPIES ? MAX_COPIES : c;
}

/* A model INPUT 1x1xK -> LINEAR N with random codes, all bit-widths. */
static int linear_model(uint32_t k, uint32_t n, void **file, size_t *size)
{
	struct bmx_writer *w = bmx_writer_new("bench", 1, 1, k, 0x01fc);
	int8_t *codes = malloc((size_t)k * n);
	float *scale = malloc(n * sizeof(float)), *tbn = malloc(7 * 2 * n * sizeof(float));
	float steps[7];
	uint64_t x = 1;
	int r = -ENOMEM;

	if (w && codes && scale && tbn) {
		for (size_t i = 0; i < (size_t)k * n; i++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			codes[i] = (int8_t)(x >> 56);
		}
		for (uint32_t i = 0; i < n; i++)
			scale[i] = 1e-3f;
		for (uint32_t i = 0; i < 7 * 2 * n; i++)
			tbn[i] = (i / n) % 2 ? 0.0f : 1.0f;
		for (int i = 0; i < 7; i++)
			steps[i] = 1.0f / (float)((1 << (i + 2)) - 1);
		struct bmx_node_spec s = { .op = BMX_OP_LINEAR,
					   .inputs = { 0, -1 },
					   .out_c = n,
					   .name = "fc",
					   .tbn_prev = -1,
					   .weights = codes,
					   .w_scale = scale,
					   .a_step = steps,
					   .tbn = tbn };
		r = bmx_writer_add(w, &s);
		if (r >= 0)
			r = bmx_writer_finish(w, file, size);
	}
	bmx_writer_free(w);
	free(codes);
	free(scale);
	free(tbn);
	return r < 0 ? r : 0;
}

/* Median seconds of ITERS calls of RUN(ARG, i). */
static double time_median(void (*run)(void *arg, unsigned i), void *arg, unsigned iters)
{
	double *t = calloc(iters, sizeof(double)), med;

	if (!t)
		return -1;
	for (unsigned i = 0; i < iters; i++) {
		double t0 = bench_now();

		run(arg, i);
		t[i] = bench_now() - t0;
	}
	med = bench_median(t, iters);
	free(t);
	return med;
}

struct ours {
	struct bmx_engine *e[MAX_COPIES]; /* one model, each engine its own copy of the planes */
	unsigned copies;
	struct bmx_layer_bits bits;
	struct bmx_parallel par;
	uint32_t m;
	float *in, *out;
	void *scratch;
};

static void run_ours(void *arg, unsigned i)
{
	struct ours *o = arg;

	bmx_engine_run_parallel(o->e[i % o->copies], &o->bits, o->m, o->in, o->out, o->scratch,
				&o->par);
}

/* Our engine on shape S at every bit-width into ROWS[0..6]. */
static int bench_ours(const struct shape *s, struct bench_pool *pool, unsigned iters,
		      struct row *rows)
{
	struct bmx_model *m = NULL;
	struct bmx_error err;
	struct ours o = { .par = bench_pool_parallel(pool), .m = s->m };
	const unsigned most = copies_for(s, (double)s->k * s->n * 2 / 8);
	void *file = NULL;
	size_t size;
	int r = linear_model(s->k, s->n, &file, &size);

	if (r == 0)
		r = bmx_model_load_memory(file, size, &m, &err);
	for (unsigned c = 0; r == 0 && c < most; c++)
		r = bmx_engine_new(m, &o.e[c]);
	if (r == 0) {
		o.in = malloc((size_t)s->m * s->k * sizeof(float));
		o.out = malloc((size_t)s->m * s->n * sizeof(float));
		o.scratch =
			aligned_alloc(64, (bmx_engine_scratch_size(o.e[0], s->m) + 63) / 64 * 64);
		r = o.in && o.out && o.scratch ? 0 : -ENOMEM;
	}
	for (uint32_t i = 0; r == 0 && i < s->m * s->k; i++)
		o.in[i] = (float)(i % 7) * 0.1f;
	for (unsigned w = 2; r == 0 && w <= 8; w++) {
		o.bits = (struct bmx_layer_bits){ (uint8_t)w, (uint8_t)w };
		o.copies = copies_for(s, (double)s->k * s->n * w / 8);
		for (unsigned c = 0; c < o.copies; c++) /* warm-up: page faults, first touches */
			run_ours(&o, c);
		rows[w - 2].s = *s;
		rows[w - 2].w_bits = w;
		rows[w - 2].ours = time_median(run_ours, &o, iters);
	}
	free(o.in);
	free(o.out);
	free(o.scratch);
	for (unsigned c = 0; c < most; c++)
		bmx_engine_free(o.e[c]);
	bmx_model_free(m);
	free(file);
	return r;
}

/* What the rows were measured on: the CPU, the kernel path, the roofline's two numbers. */
struct machine {
	char cpu[128];
	enum bmx_kernels_path path;
	const char *peak_how;
	double bw, peak;
};

static void print_row(const struct opts *op, const struct row *r, const struct machine *mc)
{
	const double bw = mc->bw, peak = mc->peak;
	const double macs = (double)r->s.m * r->s.k * r->s.n;
	const unsigned bits = r->w_bits ? r->w_bits : 8;
	const double bytes = macs / r->s.m * bits / 8 + (double)r->s.m * (r->s.k + 4.0 * r->s.n);
	const double t_bw = bw > 0 ? bytes / bw : 0, t_ops = peak > 0 ? 2 * macs / peak : 0;
	const double bound = t_bw > t_ops ? t_bw : t_ops;
	const double t = r->w_bits ? r->ours : r->onednn;
	const char *who = r->w_bits ? "bitmix" : "onednn";
	char peer[2][16];

	if (op->json) {
		printf("{\"m\":%u,\"k\":%u,\"n\":%u,\"from_dram\":%s,\"impl\":\"%s\",\"w_bits\":%u,"
		       "\"ms\":%.5f,\"onednn_int8_ms\":%.5f,\"openblas_fp32_ms\":%.5f,\"bound_ms\":%.5f,"
		       "\"bound_bw_ms\":%.5f,\"bound_ops_ms\":%.5f,\"ratio_onednn\":%.3f,"
		       "\"ratio_bound\":%.3f,\"int8_peak_fraction\":%.3f,\"read_gbps\":%.2f,"
		       "\"int8_peak_tops\":%.3f,\"peak_instr\":\"%s\",\"threads\":%u,"
		       "\"path\":\"%s\",\"cpu\":\"%s\"}\n",
		       r->s.m, r->s.k, r->s.n, r->s.from_dram ? "true" : "false", who, bits,
		       t * 1e3, r->onednn * 1e3, r->openblas * 1e3, bound * 1e3, t_bw * 1e3,
		       t_ops * 1e3, r->onednn > 0 ? t / r->onednn : 0, bound > 0 ? t / bound : 0,
		       peak > 0 ? 2 * macs / t / peak : 0, bw / 1e9, peak / 1e12, mc->peak_how,
		       op->threads, bmx_kernels_name(mc->path), mc->cpu);
		return;
	}
	if (t < 0) /* the oneDNN row, without oneDNN */
		return;
	printf("%5u %5u %5u %-4s %-7s %4u %9.4f %9s %9s %9.4f %7.2f %7.2f %6.1f%%\n", r->s.m,
	       r->s.k, r->s.n, r->s.from_dram ? "dram" : "hot", who, bits, t * 1e3,
	       bench_ms_or_na(r->onednn, peer[0], sizeof(peer[0])),
	       bench_ms_or_na(r->openblas, peer[1], sizeof(peer[1])), bound * 1e3,
	       r->onednn > 0 ? t / r->onednn : 0, bound > 0 ? t / bound : 0,
	       peak > 0 ? 100 * 2 * macs / t / peak : 0);
}

/* "M,K,N" or "M,K,N,dram" into S. */
static int parse_shape(const char *arg, struct shape *s)
{
	unsigned m, k, n;
	char tail[8] = "";
	const int got = sscanf(arg, "%u,%u,%u,%7s", &m, &k, &n, tail);

	if (got < 3 || (got == 4 && strcmp(tail, "dram") != 0))
		return -EINVAL;
	if (m < 1 || k < 1 || n < 1 || m > 65536 || k > 65536 || n > 65536)
		return -EINVAL;
	*s = (struct shape){ m, k, n, got == 4 };
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *op)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	*op = (struct opts){ .threads = cpus > 0 ? (unsigned)cpus : 1, .iters = 31 };
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			op->json = 1;
		else if (strcmp(argv[i], "--quick") == 0)
			op->quick = 1;
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			op->threads = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
			op->iters = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--shape") == 0 && i + 1 < argc &&
			 op->n_shapes < MAX_SHAPES &&
			 parse_shape(argv[++i], &op->shapes[op->n_shapes]) == 0)
			op->n_shapes++;
		else {
			fprintf(stderr,
				"usage: %s [--json] [--threads N] [--iters N] [--quick] "
				"[--shape M,K,N[,dram]]... (at most %d shapes, each 1..65536)\n",
				argv[0], MAX_SHAPES);
			return -EINVAL;
		}
	}
	if (op->threads < 1 || op->threads > 16 || op->iters < 1)
		return -EINVAL;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct shape defaults[] = {
		{ 1, 4096, 4096, 1 },  { 1, 1024, 1024, 0 },   { 64, 1024, 1024, 0 },
		{ 64, 4096, 4096, 0 }, { 256, 1024, 1024, 0 },
	};
	const struct shape *shapes = defaults;
	size_t n_shapes = sizeof(defaults) / sizeof(defaults[0]);
	struct row rows[MAX_SHAPES][8];
	struct opts op;
	struct bench_pool *pool;
	struct machine mc;

	if (parse_opts(argc, argv, &op) < 0)
		return 2;
	if (op.n_shapes) {
		shapes = op.shapes;
		n_shapes = op.n_shapes;
	}
	pool = bench_pool_new(op.threads);
	if (!pool)
		return 1;
	memset(rows, 0, sizeof(rows));
	bench_cpu_model(mc.cpu, sizeof(mc.cpu));
	mc.path = bmx_kernels_resolve(BMX_KERNELS_AUTO);
	peer_onednn_limit_isa(bmx_kernels_name(mc.path));
	mc.bw = bench_read_bandwidth(pool, 512u << 20);
	mc.peak = bench_int8_peak(pool, mc.path, &mc.peak_how);
	for (size_t i = 0; i < n_shapes; i++)
		if (bench_ours(&shapes[i], pool, op.quick ? 5 : op.iters, rows[i]) < 0)
			return 1;
	bench_pool_free(pool);
	for (size_t i = 0; i < n_shapes; i++) {
		rows[i][7].s = shapes[i];
		rows[i][7].onednn = peer_onednn_matmul(
			shapes[i].m, shapes[i].k, shapes[i].n, op.quick ? 5 : op.iters,
			copies_for(&shapes[i], (double)shapes[i].k * shapes[i].n));
	}
	for (size_t i = 0; i < n_shapes; i++)
		rows[i][0].openblas = peer_openblas_sgemm(
			shapes[i].m, shapes[i].k, shapes[i].n, op.threads, op.quick ? 5 : op.iters,
			copies_for(&shapes[i], 4.0 * shapes[i].k * shapes[i].n));
	if (!op.json) {
		const char *env = getenv("BITMIX_KERNELS");

		printf("# %s; kernels: %s (%s)\n", mc.cpu, bmx_kernels_name(mc.path),
		       env ? "BITMIX_KERNELS" : "the CPU's best");
		printf("# %u threads; read bandwidth %.1f GB/s, int8 peak %.3f TOPS (%s; measured now)\n",
		       op.threads, mc.bw / 1e9, mc.peak / 1e12, mc.peak_how);
		printf("# peers: oneDNN %s, OpenBLAS %s; times are medians of %u runs, in ms\n",
		       peer_onednn_version(), peer_openblas_version(), op.quick ? 5 : op.iters);
		printf("%5s %5s %5s %-4s %-7s %4s %9s %9s %9s %9s %7s %7s %7s\n", "M", "K", "N",
		       "wts", "impl", "bits", "time", "onednn", "openblas", "bound", "/onednn",
		       "/bound", "%peak");
	}
	for (size_t i = 0; i < n_shapes; i++)
		for (int b = 7; b >= 0; b--) {
			rows[i][b].onednn = rows[i][7].onednn;
			rows[i][b].openblas = rows[i][0].openblas;
			print_row(&op, &rows[i][b], &mc);
		}
	return 0;
}
