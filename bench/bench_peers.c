/* SPDX-License-Identifier: MIT */
/*
 * bench_peers.c — oneDNN and OpenBLAS on bench/kernels' shapes (bench_peers.h). Built with
 * whichever of the two meson found (BENCH_HAVE_DNNL, BENCH_HAVE_OPENBLAS); a missing one
 * reports -1 and the table shows it as such. oneDNN's threads are its OpenMP runtime's (one
 * per online CPU unless OMP_NUM_THREADS says otherwise).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "bench_peers.h"

#if BENCH_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif
#if BENCH_HAVE_OPENBLAS
#include <cblas.h>
#endif

#if BENCH_HAVE_DNNL
#define MAX_COPIES 32

struct dnnl_run {
	dnnl_engine_t eng;
	dnnl_stream_t stream;
	dnnl_primitive_t prim;
	dnnl_memory_t src, dst, wei[MAX_COPIES];
	unsigned copies;
};

/* The matmul primitive and COPIES weight memories in its preferred layout. */
static int dnnl_setup(struct dnnl_run *r, uint32_t m, uint32_t k, uint32_t n)
{
	dnnl_dims_t sd = { m, k }, wd = { k, n }, dd = { m, n };
	dnnl_memory_desc_t src_md, wei_any, wei_plain, dst_md;
	dnnl_matmul_desc_t desc;
	dnnl_primitive_desc_t pd, rpd;
	dnnl_primitive_t reorder;
	dnnl_memory_t plain;
	const dnnl_memory_desc_t *wei_md;
	void *p;

	dnnl_memory_desc_init_by_tag(&src_md, 2, sd, dnnl_u8, dnnl_ab);
	dnnl_memory_desc_init_by_tag(&wei_any, 2, wd, dnnl_s8, dnnl_format_tag_any);
	dnnl_memory_desc_init_by_tag(&wei_plain, 2, wd, dnnl_s8, dnnl_ab);
	dnnl_memory_desc_init_by_tag(&dst_md, 2, dd, dnnl_s32, dnnl_ab);
	if (dnnl_matmul_desc_init(&desc, &src_md, &wei_any, NULL, &dst_md) != dnnl_success ||
	    dnnl_primitive_desc_create(&pd, &desc, NULL, r->eng, NULL) != dnnl_success)
		return -1;
	wei_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
	dnnl_memory_create(&r->src, &src_md, r->eng, DNNL_MEMORY_ALLOCATE);
	dnnl_memory_create(&r->dst, &dst_md, r->eng, DNNL_MEMORY_ALLOCATE);
	dnnl_memory_create(&plain, &wei_plain, r->eng, DNNL_MEMORY_ALLOCATE);
	dnnl_memory_get_data_handle(r->src, &p);
	memset(p, 3, (size_t)m * k);
	dnnl_memory_get_data_handle(plain, &p);
	for (size_t i = 0; i < (size_t)k * n; i++)
		((int8_t *)p)[i] = (int8_t)(i * 2654435761u >> 24);
	dnnl_reorder_primitive_desc_create(&rpd, &wei_plain, r->eng, wei_md, r->eng, NULL);
	dnnl_primitive_create(&reorder, rpd);
	for (unsigned c = 0; c < r->copies; c++) {
		dnnl_memory_create(&r->wei[c], wei_md, r->eng, DNNL_MEMORY_ALLOCATE);
		dnnl_exec_arg_t rargs[2] = { { DNNL_ARG_FROM, plain }, { DNNL_ARG_TO, r->wei[c] } };
		dnnl_primitive_execute(reorder, r->stream, 2, rargs);
	}
	dnnl_stream_wait(r->stream);
	dnnl_primitive_destroy(reorder);
	dnnl_primitive_desc_destroy(rpd);
	dnnl_memory_destroy(plain);
	dnnl_primitive_create(&r->prim, pd);
	dnnl_primitive_desc_destroy(pd);
	return 0;
}

static void dnnl_run_once(struct dnnl_run *r, unsigned i)
{
	dnnl_exec_arg_t args[3] = { { DNNL_ARG_SRC, r->src },
				    { DNNL_ARG_WEIGHTS, r->wei[i % r->copies] },
				    { DNNL_ARG_DST, r->dst } };

	dnnl_primitive_execute(r->prim, r->stream, 3, args);
	dnnl_stream_wait(r->stream);
}

double peer_onednn_matmul(uint32_t m, uint32_t k, uint32_t n, unsigned iters, unsigned copies)
{
	struct dnnl_run r = { .copies = copies < 1	      ? 1
					: copies > MAX_COPIES ? MAX_COPIES
							      : copies };
	double *t = calloc(iters, sizeof(double)), med = -1;

	if (!t || dnnl_engine_create(&r.eng, dnnl_cpu, 0) != dnnl_success) {
		free(t);
		return -1;
	}
	dnnl_stream_create(&r.stream, r.eng, dnnl_stream_default_flags);
	if (dnnl_setup(&r, m, k, n) == 0) {
		for (unsigned c = 0; c < r.copies; c++) /* warm-up */
			dnnl_run_once(&r, c);
		for (unsigned i = 0; i < iters; i++) {
			double t0 = bench_now();

			dnnl_run_once(&r, i);
			t[i] = bench_now() - t0;
		}
		med = bench_median(t, iters);
		dnnl_primitive_destroy(r.prim);
	}
	for (unsigned c = 0; c < r.copies; c++)
		if (r.wei[c])
			dnnl_memory_destroy(r.wei[c]);
	if (r.src)
		dnnl_memory_destroy(r.src);
	if (r.dst)
		dnnl_memory_destroy(r.dst);
	dnnl_stream_destroy(r.stream);
	dnnl_engine_destroy(r.eng);
	free(t);
	return med;
}

const char *peer_onednn_version(void)
{
	static char buf[64];
	const dnnl_version_t *v = dnnl_version();

	const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();

	snprintf(buf, sizeof(buf), "%d.%d.%d (%s, %s)", v->major, v->minor, v->patch,
		 v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "threads",
		 isa == dnnl_cpu_isa_avx2	 ? "AVX2"
		 : isa == dnnl_cpu_isa_avx2_vnni ? "AVX2+VNNI"
		 : isa >= dnnl_cpu_isa_avx512_core_vnni && isa != dnnl_cpu_isa_avx2_vnni
			 ? "AVX-512+VNNI"
		 : isa >= dnnl_cpu_isa_avx512_core ? "AVX-512"
						   : "pre-AVX2");
	return buf;
}

void peer_onednn_limit_isa(const char *path)
{
	if (getenv("ONEDNN_MAX_CPU_ISA") || getenv("DNNL_MAX_CPU_ISA"))
		return;
	if (strcmp(path, "avx2") == 0)
		dnnl_set_max_cpu_isa(dnnl_cpu_isa_avx2);
	else if (strcmp(path, "avxvnni") == 0)
		dnnl_set_max_cpu_isa(dnnl_cpu_isa_avx2_vnni);
}
#else
double peer_onednn_matmul(uint32_t m, uint32_t k, uint32_t n, unsigned iters, unsigned copies)
{
	(void)m, (void)k, (void)n, (void)iters, (void)copies;
	return -1;
}

const char *peer_onednn_version(void)
{
	return "missing";
}

void peer_onednn_limit_isa(const char *path)
{
	(void)path;
}
#endif

#if BENCH_HAVE_OPENBLAS
double peer_openblas_sgemm(uint32_t m, uint32_t k, uint32_t n, unsigned threads, unsigned iters,
			   unsigned copies)
{
	const size_t wn = (size_t)n * k;
	float *a = malloc((size_t)m * k * sizeof(float)), *b = malloc(wn * copies * sizeof(float));
	float *c = malloc((size_t)m * n * sizeof(float));
	double *t = calloc(iters + copies, sizeof(double)), med = -1;

	openblas_set_num_threads((int)threads);
	if (a && b && c && t) {
		for (size_t i = 0; i < (size_t)m * k; i++)
			a[i] = (float)(i % 13) * 0.1f;
		for (size_t i = 0; i < wn * copies; i++)
			b[i] = (float)(i % 11) * 0.01f;
		for (unsigned i = 0; i < iters + copies; i++) { /* the first COPIES runs warm up */
			const float *w = b + wn * (i % copies);
			double t0 = bench_now();

			if (m == 1)
				cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)k, 1.0f, w,
					    (int)k, a, 1, 0.0f, c, 1);
			else
				cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n,
					    (int)k, 1.0f, a, (int)k, w, (int)k, 0.0f, c, (int)n);
			t[i] = bench_now() - t0;
		}
		med = bench_median(t + copies, iters);
	}
	free(a);
	free(b);
	free(c);
	free(t);
	return med;
}

const char *peer_openblas_version(void)
{
	return openblas_get_config();
}
#else
double peer_openblas_sgemm(uint32_t m, uint32_t k, uint32_t n, unsigned threads, unsigned iters,
			   unsigned copies)
{
	(void)m, (void)k, (void)n, (void)threads, (void)iters, (void)copies;
	return -1;
}

const char *peer_openblas_version(void)
{
	return "missing";
}
#endif
