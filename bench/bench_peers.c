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

static double median_of(double *t, unsigned iters)
{
	return bench_median(t, iters);
}

#if BENCH_HAVE_DNNL
struct dnnl_run {
	dnnl_stream_t stream;
	dnnl_primitive_t prim;
	dnnl_exec_arg_t args[3];
};

static int dnnl_setup(struct dnnl_run *r, dnnl_engine_t eng, uint32_t m, uint32_t k, uint32_t n,
		      dnnl_memory_t mem[4])
{
	dnnl_dims_t sd = { m, k }, wd = { k, n }, dd = { m, n };
	dnnl_memory_desc_t src_md, wei_any, wei_plain, dst_md;
	dnnl_matmul_desc_t desc;
	dnnl_primitive_desc_t pd, rpd;
	dnnl_primitive_t reorder;
	const dnnl_memory_desc_t *wei_md;
	void *p;

	dnnl_memory_desc_init_by_tag(&src_md, 2, sd, dnnl_u8, dnnl_ab);
	dnnl_memory_desc_init_by_tag(&wei_any, 2, wd, dnnl_s8, dnnl_format_tag_any);
	dnnl_memory_desc_init_by_tag(&wei_plain, 2, wd, dnnl_s8, dnnl_ab);
	dnnl_memory_desc_init_by_tag(&dst_md, 2, dd, dnnl_s32, dnnl_ab);
	if (dnnl_matmul_desc_init(&desc, &src_md, &wei_any, NULL, &dst_md) != dnnl_success ||
	    dnnl_primitive_desc_create(&pd, &desc, NULL, eng, NULL) != dnnl_success)
		return -1;
	wei_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
	dnnl_memory_create(&mem[0], &src_md, eng, DNNL_MEMORY_ALLOCATE);
	dnnl_memory_create(&mem[1], &wei_plain, eng, DNNL_MEMORY_ALLOCATE);
	dnnl_memory_create(&mem[2], wei_md, eng, DNNL_MEMORY_ALLOCATE);
	dnnl_memory_create(&mem[3], &dst_md, eng, DNNL_MEMORY_ALLOCATE);
	dnnl_memory_get_data_handle(mem[0], &p);
	memset(p, 3, (size_t)m * k);
	dnnl_memory_get_data_handle(mem[1], &p);
	for (size_t i = 0; i < (size_t)k * n; i++)
		((int8_t *)p)[i] = (int8_t)(i * 2654435761u >> 24);
	dnnl_reorder_primitive_desc_create(&rpd, &wei_plain, eng, wei_md, eng, NULL);
	dnnl_primitive_create(&reorder, rpd);
	dnnl_exec_arg_t rargs[2] = { { DNNL_ARG_FROM, mem[1] }, { DNNL_ARG_TO, mem[2] } };
	dnnl_primitive_execute(reorder, r->stream, 2, rargs);
	dnnl_stream_wait(r->stream);
	dnnl_primitive_destroy(reorder);
	dnnl_primitive_desc_destroy(rpd);
	dnnl_primitive_create(&r->prim, pd);
	dnnl_primitive_desc_destroy(pd);
	r->args[0] = (dnnl_exec_arg_t){ DNNL_ARG_SRC, mem[0] };
	r->args[1] = (dnnl_exec_arg_t){ DNNL_ARG_WEIGHTS, mem[2] };
	r->args[2] = (dnnl_exec_arg_t){ DNNL_ARG_DST, mem[3] };
	return 0;
}

double peer_onednn_matmul(uint32_t m, uint32_t k, uint32_t n, unsigned threads, unsigned iters,
			  void (*flush)(void))
{
	dnnl_engine_t eng;
	dnnl_memory_t mem[4] = { 0 };
	struct dnnl_run r;
	double *t = calloc(iters, sizeof(double)), med = -1;

	(void)threads;
	if (!t || dnnl_engine_create(&eng, dnnl_cpu, 0) != dnnl_success) {
		free(t);
		return -1;
	}
	dnnl_stream_create(&r.stream, eng, dnnl_stream_default_flags);
	if (dnnl_setup(&r, eng, m, k, n, mem) == 0) {
		dnnl_primitive_execute(r.prim, r.stream, 3, r.args); /* warm-up */
		dnnl_stream_wait(r.stream);
		for (unsigned i = 0; i < iters; i++) {
			double t0;

			if (flush)
				flush();
			t0 = bench_now();
			dnnl_primitive_execute(r.prim, r.stream, 3, r.args);
			dnnl_stream_wait(r.stream);
			t[i] = bench_now() - t0;
		}
		med = median_of(t, iters);
		dnnl_primitive_destroy(r.prim);
	}
	for (int i = 0; i < 4; i++)
		if (mem[i])
			dnnl_memory_destroy(mem[i]);
	dnnl_stream_destroy(r.stream);
	dnnl_engine_destroy(eng);
	free(t);
	return med;
}

const char *peer_onednn_version(void)
{
	static char buf[64];
	const dnnl_version_t *v = dnnl_version();

	snprintf(buf, sizeof(buf), "%d.%d.%d (%s)", v->major, v->minor, v->patch, v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "threads");
	return buf;
}
#else
double peer_onednn_matmul(uint32_t m, uint32_t k, uint32_t n, unsigned threads, unsigned iters,
			  void (*flush)(void))
{
	(void)m, (void)k, (void)n, (void)threads, (void)iters, (void)flush;
	return -1;
}

const char *peer_onednn_version(void)
{
	return "missing";
}
#endif

#if BENCH_HAVE_OPENBLAS
double peer_openblas_sgemm(uint32_t m, uint32_t k, uint32_t n, unsigned threads, unsigned iters,
			   void (*flush)(void))
{
	float *a = malloc((size_t)m * k * sizeof(float)), *b = malloc((size_t)n * k * sizeof(float));
	float *c = malloc((size_t)m * n * sizeof(float));
	double *t = calloc(iters + 1, sizeof(double)), med = -1;

	openblas_set_num_threads((int)threads);
	if (a && b && c && t) {
		for (size_t i = 0; i < (size_t)m * k; i++)
			a[i] = (float)(i % 13) * 0.1f;
		for (size_t i = 0; i < (size_t)n * k; i++)
			b[i] = (float)(i % 11) * 0.01f;
		for (unsigned i = 0; i <= iters; i++) { /* run 0 warms up */
			double t0;

			if (flush)
				flush();
			t0 = bench_now();
			if (m == 1)
				cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)k, 1.0f, b, (int)k, a, 1,
					    0.0f, c, 1);
			else
				cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f,
					    a, (int)k, b, (int)k, 0.0f, c, (int)n);
			t[i] = bench_now() - t0;
		}
		med = median_of(t + 1, iters);
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
			   void (*flush)(void))
{
	(void)m, (void)k, (void)n, (void)threads, (void)iters, (void)flush;
	return -1;
}

const char *peer_openblas_version(void)
{
	return "missing";
}
#endif
