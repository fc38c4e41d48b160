/* SPDX-License-Identifier: MIT */
/*
 * engine_fast.c — one CONV2D or LINEAR layer on a fast kernel path (kern.h): quantize the
 * input once into unsigned bytes, lay it out as GEMM rows with their sums (nothing for 1x1
 * stride-1 convolutions; none either where the path reads windows in place, kern_direct, with
 * the rows' sums made from per-pixel sums; else im2col), then run the fused GEMM or depthwise
 * kernel.
 * Every phase is split over the caller's parallel-for: the GEMM by output channels (or by rows
 * when there are few channels), the preparation by elements and rows.
 *
 * Memory: everything mutable lives in the scratch block the engine hands in (64-byte aligned,
 * engine_fast_scratch() bytes). Tasks write disjoint output ranges and read shared inputs that
 * were completely written before for_each() was called (its return orders them).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "engine_fast.h"
#include "ops_ref.h"

#define ROW_BLOCK 8u	/* rows per GEMM tile: tasks split rows in multiples of it */
#define LUT_MIN_ROWS 6u /* below, the table-lookup kernel's tables cost more than they save */

/* Below this many input elements a layer's preparation runs on the calling thread alone. */
#define PREP_SPLIT_MIN 32768u

static uint64_t round_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

bool engine_fast_lut_serves(const struct kern_ops *ops, unsigned w, unsigned a)
{
	return ops->gemm_lut && w <= BMX_MAX_BITS && (ops->lut_w_mask >> w & 1) && a >= 1 &&
	       a <= BMX_MAX_BITS && (1u << a) - 1 <= ops->lut_max_u;
}

/*
 * The static rule (docs/kernels.md, "Low-bit kernels"), each path's own (kern_ops.lut_rule_*):
 * table lookup where the path serves (w, a), a <= lut_rule_max_a, on layers of at least
 * lut_rule_min_n output channels and, where lut_rule_direct_only, only on convolutions read in
 * place (a kernel larger than 1x1 over a multiple of 16 channels: their tables are per input
 * pixel, shared by the windows). On AVX-512 (Zen 5) that is 3x3 convolutions of 128 channels
 * and more, elsewhere the tables, the tile's fixed costs or, from 4 activation bits, the folds
 * of the byte sums every 4 steps or fewer ate the gain over vpdpbusd; on AVX2 table lookup
 * beats vpmaddubsw on every GEMM of the bundled model. BITMIX_LOWBIT=on takes table lookup
 * wherever it is served, =off nowhere (to measure one against the other, and to test both).
 */
static void choose_kernels(const struct bmx_layer_view *v, const struct kern_ops *ops,
			   struct fast_layer *fl)
{
	const char *env = getenv("BITMIX_LOWBIT");
	const bool forced = env && strcmp(env, "on") == 0;
	const struct bmx_node *n = v->node;
	const bool direct = n->op == BMX_OP_CONV2D && n->kernel_h * n->kernel_w > 1 &&
			    v->in_c % 16 == 0;

	memset(fl->kernel, FAST_KERNEL_DOT, sizeof(fl->kernel));
	if (env && strcmp(env, "off") == 0)
		return;
	if (!forced && (v->out_c < ops->lut_rule_min_n ||
			(ops->lut_rule_direct_only && !(ops->direct && direct))))
		return;
	for (unsigned w = BMX_MIN_BITS; w <= BMX_MAX_BITS; w++)
		for (unsigned a = BMX_MIN_BITS; a <= BMX_MAX_BITS; a++)
			if (engine_fast_lut_serves(ops, w, a) &&
			    (forced || a <= ops->lut_rule_max_a)) {
				fl->kernel[w][a] = FAST_KERNEL_LUT;
				fl->lut_any = true;
			}
}

int engine_fast_prepare(const struct bmx_layer_view *v, const struct kern_ops *ops,
			struct fast_layer *fl)
{
	const uint32_t groups = v->node->groups ? v->node->groups : 1;

	memset(fl, 0, sizeof(*fl));
	if (groups == 1) {
		fl->kind = FAST_GEMM;
		choose_kernels(v, ops, fl);
		return kern_planes_pack(v->weights, v->out_c, v->reduction, ops->plane_order,
					&fl->planes);
	}
	if (groups == v->in_c && groups == v->out_c) {
		fl->kind = FAST_DEPTHWISE;
		return kern_dw_pack(v->weights, v->out_c, v->reduction, &fl->dw);
	}
	return 0; /* grouped convolutions stay on the reference kernels */
}

void engine_fast_free(struct fast_layer *fl)
{
	kern_planes_free(&fl->planes);
	kern_dw_free(&fl->dw);
}

/*
 * Byte offsets in the layer's scratch: input bytes (a convolution's with its padding border),
 * GEMM rows (or a direct convolution's per-pixel sums), row sums, task panels, and the
 * table-lookup kernel's activation tables (4 bytes per position of K rounded up to 16 for
 * every row, or per byte of the padded input).
 */
struct fast_scratch {
	uint64_t rows, sum_q, panels, lut, total;
};

/* K rounded up to the table-lookup kernel's steps of 16 positions. */
static uint32_t lut_k16(const struct fast_layer *fl)
{
	return (fl->planes.k + 15) / 16 * 16;
}

/* Pixels of BATCH inputs of V with the convolution's padding around each (1x1 for LINEAR). */
static uint64_t padded_pixels(const struct bmx_layer_view *v, uint32_t batch)
{
	const struct bmx_node *n = v->node;

	return (uint64_t)(v->in_h + n->pad_top + n->pad_bottom) *
	       (v->in_w + n->pad_left + n->pad_right) * batch;
}

static struct fast_scratch fast_scratch_layout(const struct bmx_layer_view *v,
					       const struct fast_layer *fl, uint32_t batch)
{
	const uint64_t pixels = padded_pixels(v, batch), in = pixels * v->in_c;
	const uint64_t m = (uint64_t)v->out_h * v->out_w * batch;
	const uint64_t rows = m * fl->planes.kp;
	struct fast_scratch s = { 0 };

	s.rows = round_up(in + 64, 64);
	if (fl->kind == FAST_GEMM) {
		s.sum_q = s.rows + round_up(rows > pixels * 4 ? rows : pixels * 4, 64);
		s.panels = s.sum_q + round_up(m * sizeof(int32_t), 64);
		s.lut = s.panels + (uint64_t)KERN_MAX_TASKS * 2 * KERN_PANEL * fl->planes.kp;
		s.total = s.lut;
		if (fl->lut_any) {
			const uint64_t by_rows = m * lut_k16(fl);

			s.total += 4 * round_up(by_rows > in ? by_rows : in, 64);
		}
	} else {
		s.total = s.sum_q = s.panels = s.lut = s.rows;
	}
	return s;
}

/* The unpadded 1x1 convolution whose GEMM reads its quantized input itself as A. */
static bool input_is_rows(const struct bmx_conv_shape *s, uint32_t kp)
{
	return s->kernel_h == 1 && s->kernel_w == 1 && s->stride_h == 1 && s->stride_w == 1 &&
	       s->pad_top == 0 && s->pad_left == 0 && s->pad_bottom == 0 && s->pad_right == 0 &&
	       s->in_c == kp;
}

void engine_fast_input_layout(const struct fast_layer *fl, const struct kern_ops *ops,
			      const struct bmx_node *in, const struct bmx_conv_shape *s,
			      struct kern_requant *rq)
{
	const uint64_t c = in->out_c;
	const bool padded =
		s && (fl->kind == FAST_DEPTHWISE ? ops->direct : !input_is_rows(s, fl->planes.kp));
	const uint64_t ph = padded ? (uint64_t)in->out_h + s->pad_top + s->pad_bottom : in->out_h;
	const uint64_t pw = padded ? (uint64_t)in->out_w + s->pad_left + s->pad_right : in->out_w;

	rq->hw = in->out_h * in->out_w;
	rq->w = in->out_w;
	rq->pixel = c;
	rq->line = pw * c;
	rq->origin = padded ? (s->pad_top * pw + s->pad_left) * c : 0;
	rq->sample = s ? ph * pw * c : fl->planes.kp;
}

uint64_t engine_fast_scratch(const struct bmx_layer_view *v, const struct fast_layer *fl,
			     uint32_t batch)
{
	return fl->kind == FAST_NONE ? 0 : fast_scratch_layout(v, fl, batch).total;
}

/*
 * GEMM rows [r0, r1) of a convolution from its padded quantized input U (quantize_padded_task):
 * each output pixel's window, kernel_h segments of kernel_w * in_c contiguous bytes. Rows of
 * short segments (a stem's) get their sums of q here, while the bytes pass by (returns 1).
 */
static int im2col_rows(const struct bmx_conv_shape *s, const uint8_t *u, int32_t off, uint32_t kp,
		       uint32_t r0, uint32_t r1, uint8_t *rows, int32_t *sum_q)
{
	const size_t cin = s->in_c, seg = (size_t)s->kernel_w * cin, k = s->kernel_h * seg;
	const size_t ph = s->in_h + s->pad_top + s->pad_bottom;
	const size_t line = (s->in_w + s->pad_left + s->pad_right) * cin;
	const uint32_t per_sample = s->out_h * s->out_w;
	uint32_t n = r0 / per_sample, oh = r0 % per_sample / s->out_w, ow = r0 % s->out_w;

	for (uint32_t r = r0; r < r1; r++) {
		const uint8_t *src = u + (n * ph + (size_t)oh * s->stride_h) * line +
				     (size_t)ow * s->stride_w * cin;
		uint8_t *p = rows + (size_t)r * kp;

		if (seg <= 16) { /* a stem's few bytes: a call per segment would cost more */
			int32_t sum = 0;

			for (uint32_t kh = 0; kh < s->kernel_h; kh++, src += line)
				for (size_t i = 0; i < seg; i++) {
					sum += src[i];
					*p++ = src[i];
				}
			for (size_t i = k; i < kp; i++)
				*p++ = 0;
			sum_q[r] = sum - (int32_t)k * off;
		} else {
			for (uint32_t kh = 0; kh < s->kernel_h; kh++, src += line, p += seg)
				memcpy(p, src, seg);
			memset(p, 0, kp - k);
		}
		if (++ow == s->out_w) { /* the next output pixel, without divisions */
			ow = 0;
			if (++oh == s->out_h) {
				oh = 0;
				n++;
			}
		}
	}
	return seg <= 16;
}

/*
 * The preparation of a convolution's GEMM, split like the GEMM: quantize the input (phase 1,
 * by elements, or by padded rows), then build rows and their sums (phase 2, by rows; rows NULL:
 * the GEMM reads the quantized input itself, 1x1 convolutions).
 */
struct prep_job {
	const struct fast_run *fr;
	const struct bmx_conv_shape *s;
	const float *x;
	uint8_t *u, *rows;
	int32_t *sum_q;
	int32_t *pixel_sums; /* direct convolutions: sum q over each input pixel's channels */
	size_t n_in;
	uint32_t m, kp, pixels;
	unsigned tasks;
};

/*
 * LINEAR: one GEMM row per sample, quantized straight into place (x NULL: already there) with
 * its K tail zeroed, and its sum of q, for samples [t/tasks, (t+1)/tasks) of m.
 */
static void linear_rows_task(void *arg, unsigned t)
{
	const struct prep_job *j = arg;
	const struct fast_run *fr = j->fr;
	const uint32_t a = (uint32_t)((uint64_t)j->m * t / j->tasks);
	const uint32_t b = (uint32_t)((uint64_t)j->m * (t + 1) / j->tasks);
	const size_t in_sample = j->n_in / j->m;

	for (uint32_t n = a; n < b; n++) {
		uint8_t *row = j->rows + (size_t)n * j->kp;

		if (j->x) /* else the producer's epilogue wrote the codes (kern_requant) */
			fr->ops->quantize(j->x + n * in_sample, in_sample, fr->inv, fr->lo, fr->hi,
					  fr->off, row);
		memset(row + in_sample, 0, j->kp - in_sample);
	}
	fr->ops->row_sums(j->rows + (size_t)a * j->kp, j->kp, b - a, fr->layer->planes.k, fr->off,
			  j->sum_q + a);
}

static void quantize_task(void *arg, unsigned t)
{
	const struct prep_job *j = arg;
	const size_t a = j->n_in * t / j->tasks, b = j->n_in * (t + 1) / j->tasks;

	j->fr->ops->quantize(j->x + a, b - a, j->fr->inv, j->fr->lo, j->fr->hi, j->fr->off,
			     j->u + a);
}

/*
 * A convolution's input for im2col or the direct path: quantized rows with the padding around
 * them as q = 0's code, so that every tap of every window is inside (padded rows [t/tasks,
 * (t+1)/tasks) of all). X NULL: the rows are there already (kern_requant), only the padding.
 */
static void quantize_padded_task(void *arg, unsigned t)
{
	const struct prep_job *j = arg;
	const struct bmx_conv_shape *s = j->s;
	const uint32_t ph = s->in_h + s->pad_top + s->pad_bottom;
	const size_t pw = s->in_w + s->pad_left + s->pad_right, c = s->in_c, line = pw * c;
	const uint32_t lines = s->batch * ph;
	const uint32_t l0 = (uint32_t)((uint64_t)lines * t / j->tasks);
	const uint32_t l1 = (uint32_t)((uint64_t)lines * (t + 1) / j->tasks);
	const int off = (int)j->fr->off;

	for (uint32_t l = l0; l < l1; l++) {
		const uint32_t n = l / ph, row = l % ph;
		uint8_t *dst = j->u + l * line;

		if (row < s->pad_top || row >= s->pad_top + s->in_h) {
			memset(dst, off, line);
			continue;
		}
		memset(dst, off, s->pad_left * c);
		if (j->x)
			j->fr->ops->quantize(j->x + ((size_t)n * s->in_h + row - s->pad_top) *
							     s->in_w * c,
					     s->in_w * c, j->fr->inv, j->fr->lo, j->fr->hi,
					     j->fr->off, dst + s->pad_left * c);
		memset(dst + (s->pad_left + s->in_w) * c, off, s->pad_right * c);
	}
}

static void rows_task(void *arg, unsigned t)
{
	const struct prep_job *j = arg;
	const uint32_t r0 = (uint32_t)((uint64_t)j->m * t / j->tasks);
	const uint32_t r1 = (uint32_t)((uint64_t)j->m * (t + 1) / j->tasks);
	const uint8_t *rows = j->rows ? j->rows : j->u;

	if (j->rows && im2col_rows(j->s, j->u, j->fr->off, j->kp, r0, r1, j->rows, j->sum_q))
		return;
	j->fr->ops->row_sums(rows + (size_t)r0 * j->kp, j->kp, r1 - r0, j->fr->layer->planes.k,
			     j->fr->off, j->sum_q + r0);
}

static void pixel_sums_task(void *arg, unsigned t)
{
	const struct prep_job *j = arg;
	const uint32_t p0 = (uint32_t)((uint64_t)j->pixels * t / j->tasks);
	const uint32_t p1 = (uint32_t)((uint64_t)j->pixels * (t + 1) / j->tasks);
	const uint32_t c = j->s->in_c;

	j->fr->ops->row_sums(j->u + (size_t)p0 * c, c, p1 - p0, c, j->fr->off, j->pixel_sums + p0);
}

/* A direct convolution's row sums: the sums of its window's pixel sums (the border's are 0). */
static void direct_sums_task(void *arg, unsigned t)
{
	const struct prep_job *j = arg;
	const struct bmx_conv_shape *s = j->s;
	const uint32_t r0 = (uint32_t)((uint64_t)j->m * t / j->tasks);
	const uint32_t r1 = (uint32_t)((uint64_t)j->m * (t + 1) / j->tasks);
	const uint32_t per_sample = s->out_h * s->out_w;
	const size_t ph = s->in_h + s->pad_top + s->pad_bottom;
	const size_t pw = s->in_w + s->pad_left + s->pad_right;
	uint32_t n = r0 / per_sample, oh = r0 % per_sample / s->out_w, ow = r0 % s->out_w;

	for (uint32_t r = r0; r < r1; r++) {
		const int32_t *ps = j->pixel_sums + (n * ph + (size_t)oh * s->stride_h) * pw +
				    (size_t)ow * s->stride_w;
		int32_t sum = 0;

		for (uint32_t kh = 0; kh < s->kernel_h; kh++, ps += pw)
			for (uint32_t kw = 0; kw < s->kernel_w; kw++)
				sum += ps[kw];
		j->sum_q[r] = sum;
		if (++ow == s->out_w) { /* the next output pixel, without divisions */
			ow = 0;
			if (++oh == s->out_h) {
				oh = 0;
				n++;
			}
		}
	}
}

struct gemm_job {
	const struct kern_ops *ops;
	struct kern_gemm g;
	uint8_t *panels;
	uint32_t n_pad; /* channels rounded up to KERN_PANEL */
	uint32_t tasks;
	int by_rows; /* split rows, not channels */
};

static void gemm_task(void *arg, unsigned t)
{
	const struct gemm_job *j = arg;
	int8_t *panel = (int8_t *)j->panels + (size_t)t * 2 * KERN_PANEL * j->g.w->kp;
	void (*const gemm)(const struct kern_gemm *, uint32_t, uint32_t, int8_t *) =
		j->g.lut ? j->ops->gemm_lut : j->ops->gemm;

	if (j->by_rows) {
		const uint32_t blocks = (j->g.m + ROW_BLOCK - 1) / ROW_BLOCK;
		const uint32_t r0 = blocks * t / j->tasks * ROW_BLOCK;
		uint32_t r1 = blocks * (t + 1) / j->tasks * ROW_BLOCK;
		struct kern_gemm g = j->g;
		struct kern_direct direct;

		r1 = r1 > g.m ? g.m : r1;
		if (r0 >= r1)
			return;
		g.m = r1 - r0;
		g.a += r0 * g.lda;
		if (g.direct) {
			direct = *g.direct;
			direct.row0 += r0;
			g.direct = &direct;
		}
		g.sum_q += r0;
		g.ep.y += r0 * g.ep.ldy;
		g.ep.row0 += r0;
		if (g.lut)
			g.lut += r0 * g.lut_ld;
		gemm(&g, 0, j->n_pad, panel);
	} else {
		const uint32_t units = j->n_pad / KERN_PANEL;
		const uint32_t n0 = units * t / j->tasks * KERN_PANEL;
		const uint32_t n1 = units * (t + 1) / j->tasks * KERN_PANEL;

		if (n0 < n1)
			gemm(&j->g, n0, n1, panel);
	}
}

struct dw_job {
	const struct kern_ops *ops;
	struct kern_depthwise d;
	uint32_t rows, tasks;
};

static void dw_task(void *arg, unsigned t)
{
	const struct dw_job *j = arg;

	j->ops->depthwise(&j->d, (uint32_t)((uint64_t)j->rows * t / j->tasks),
			  (uint32_t)((uint64_t)j->rows * (t + 1) / j->tasks));
}

static void run_tasks(const struct bmx_parallel *par, unsigned tasks, void (*fn)(void *, unsigned),
		      void *arg)
{
	if (par && par->for_each && tasks > 1) {
		par->for_each(par->ctx, tasks, fn, arg);
		return;
	}
	for (unsigned t = 0; t < tasks; t++)
		fn(arg, t);
}

/*
 * How many tasks to cut a layer into: four per thread when there are helpers, so that a thread
 * the scheduler takes away (the machine may be shared) holds up only a quarter of its share;
 * whoever is running claims the rest.
 */
static unsigned threads_of(const struct bmx_parallel *par)
{
	unsigned n = par && par->for_each && par->threads > 1 ? 4 * par->threads : 1;

	return n > KERN_MAX_TASKS ? KERN_MAX_TASKS : n;
}

/*
 * The table-lookup kernel's tables (kern_ops.lut_tables) of M rows (LDA apart, K positions,
 * tables of K16) from SRC into T, split by rows.
 */
struct lut_job {
	const struct kern_ops *ops;
	const uint8_t *src;
	uint8_t *t;
	size_t lda;
	uint32_t m, k, k16;
	unsigned tasks;
};

static void lut_task(void *arg, unsigned t)
{
	const struct lut_job *j = arg;
	const uint32_t r0 = (uint32_t)((uint64_t)j->m * t / j->tasks);
	const uint32_t r1 = (uint32_t)((uint64_t)j->m * (t + 1) / j->tasks);

	j->ops->lut_tables(j->src + r0 * j->lda, j->lda, r1 - r0, j->k, j->k16,
			   j->t + (size_t)r0 * j->k16 * 4);
}

/*
 * The tables of M rows of K positions from SRC (LDA apart) into T, 4 K16 bytes per row, for the
 * table-lookup GEMM G (sets its lut, lut_ld = LD and lut_flush; LD is 0 for a direct
 * convolution, whose tables are per padded pixel).
 */
static void build_tables(const struct fast_run *fr, const uint8_t *src, size_t lda, uint32_t m,
			 uint32_t k, uint32_t k16, uint8_t *t, size_t ld, struct kern_gemm *g)
{
	const unsigned threads = threads_of(fr->par);
	struct lut_job j = { .ops = fr->ops,
			     .src = src,
			     .t = t,
			     .lda = lda,
			     .m = m,
			     .k = k,
			     .k16 = k16,
			     .tasks = (uint64_t)m * k16 >= PREP_SPLIT_MIN ? threads : 1 };

	if (j.tasks > m)
		j.tasks = m ? m : 1;
	run_tasks(fr->par, j.tasks, lut_task, &j);
	g->lut = t;
	g->lut_ld = ld;
	g->lut_flush = 255u / (4u * (uint32_t)(fr->hi - fr->lo));
}

/*
 * The GEMM and its epilogue; SUMS_READY: sum_q is filled already. DIRECT: the rows are read in
 * place (ROWS is then the quantized input and LDA 0). LUT (or NULL): the table-lookup kernel
 * on these tables (kern_gemm.lut, lut_ld, lut_flush).
 */
static void run_gemm(const struct fast_run *fr, uint8_t *rows, size_t lda, uint32_t m,
		     int32_t *sum_q, uint8_t *panels, int sums_ready,
		     const struct kern_direct *direct, const struct kern_gemm *lut)
{
	const struct fast_layer *fl = fr->layer;
	const uint32_t panels_n = (fl->planes.n + KERN_PANEL - 1) / KERN_PANEL;
	const unsigned threads = threads_of(fr->par);
	struct gemm_job j = {
		.ops = fr->ops,
		.g = { .w = &fl->planes,
		       .w_bits = fr->w_bits,
		       .off = fr->off,
		       .m = m,
		       .a = rows,
		       .lda = lda,
		       .direct = direct,
		       .sum_q = sum_q,
		       .ep = fr->ep },
		.panels = panels,
		.n_pad = fl->planes.n_pad,
	};

	if (lut) {
		j.g.lut = lut->lut;
		j.g.lut_ld = lut->lut_ld;
		j.g.lut_flush = lut->lut_flush;
	}

	if (!sums_ready)
		fr->ops->row_sums(rows, lda, m, fl->planes.k, fr->off, sum_q);
	if (panels_n >= threads || m < 2 * ROW_BLOCK) {
		j.tasks = threads < panels_n ? threads : panels_n;
	} else {
		j.by_rows = 1;
		j.tasks = threads;
	}
	run_tasks(fr->par, j.tasks, gemm_task, &j);
}

/* Quantize a convolution's input into its padded copy, split by padded rows. */
static void quantize_padded(const struct fast_run *fr, const struct bmx_conv_shape *s,
			    struct prep_job *j)
{
	const uint32_t lines = s->batch * (s->in_h + s->pad_top + s->pad_bottom);
	struct prep_job pj = {
		.fr = fr, .s = s, .x = j->x, .u = j->u, .tasks = j->tasks > lines ? lines : j->tasks
	};

	run_tasks(fr->par, pj.tasks, quantize_padded_task, &pj);
}

/*
 * A convolution without im2col (in_c % 4 == 0, the path reads windows in place from the padded
 * input): per-pixel sums of q (by pixels), each row's sum from its window's pixels (by rows),
 * the tables of every padded pixel when LUT_T is set (in_c % 16 == 0), then the GEMM.
 */
static void run_direct(const struct fast_run *fr, const struct bmx_conv_shape *s,
		       struct prep_job *j, int32_t *pixel_sums, uint8_t *panels, uint8_t *lut_t)
{
	const struct kern_direct d = { .s = s, .u = j->u };
	const unsigned tasks = j->tasks;
	struct kern_gemm lut;

	j->pixel_sums = pixel_sums;
	j->pixels = s->batch * (s->in_h + s->pad_top + s->pad_bottom) *
		    (s->in_w + s->pad_left + s->pad_right);
	j->tasks = tasks > j->pixels ? j->pixels : tasks;
	run_tasks(fr->par, j->tasks, pixel_sums_task, j);
	j->tasks = tasks > j->m ? (j->m ? j->m : 1) : tasks;
	run_tasks(fr->par, j->tasks, direct_sums_task, j);
	if (lut_t)
		build_tables(fr, j->u, s->in_c, j->pixels, s->in_c, s->in_c, lut_t, 0, &lut);
	run_gemm(fr, j->u, 0, j->m, j->sum_q, panels, 1, &d, lut_t ? &lut : NULL);
}

/*
 * Whether this run of the layer takes the table-lookup GEMM over M rows: its sums per channel
 * and lane are int16, exact while |sum k u| <= 2 * (largest code) * K fits.
 */
static bool use_lut(const struct fast_run *fr, uint32_t m)
{
	return fr->layer->kernel[fr->w_bits][fr->a_bits] == FAST_KERNEL_LUT &&
	       engine_fast_lut_serves(fr->ops, fr->w_bits, fr->a_bits) && m >= LUT_MIN_ROWS &&
	       2 * (uint64_t)(fr->hi - fr->lo) * fr->layer->planes.k <= INT16_MAX;
}

void engine_fast_run(const struct fast_run *fr, const struct bmx_conv_shape *s, uint32_t batch,
		     const float *x, void *scratch)
{
	const struct bmx_layer_view *v = fr->view;
	const struct fast_layer *fl = fr->layer;
	const struct fast_scratch lay = fast_scratch_layout(v, fl, batch);
	uint8_t *base = scratch, *rows = base + lay.rows;
	int32_t *sum_q = (int32_t *)(base + lay.sum_q);
	const uint64_t in_sample = (uint64_t)v->in_h * v->in_w * v->in_c;
	const uint32_t kp = fl->planes.kp;
	struct prep_job j = { .fr = fr,
			      .s = s,
			      .x = fr->codes ? NULL : x,
			      .u = fr->codes ? fr->codes : base,
			      .sum_q = sum_q,
			      .n_in = in_sample * batch,
			      .kp = kp };
	struct kern_gemm lut;
	bool lut_on;

	j.tasks = j.n_in >= PREP_SPLIT_MIN ? threads_of(fr->par) : 1;
	if (!s) {
		j.rows = fr->codes ? fr->codes : rows;
		j.m = batch;
		j.tasks = j.tasks < batch ? j.tasks : batch;
		run_tasks(fr->par, j.tasks, linear_rows_task, &j);
		lut_on = use_lut(fr, batch);
		if (lut_on)
			build_tables(fr, j.rows, kp, batch, fl->planes.k, lut_k16(fl),
				     base + lay.lut, (size_t)lut_k16(fl) * 4, &lut);
		run_gemm(fr, j.rows, kp, batch, sum_q, base + lay.panels, 1, NULL,
			 lut_on ? &lut : NULL);
		return;
	}
	if (fl->kind == FAST_DEPTHWISE) {
		const unsigned threads = threads_of(fr->par);
		struct dw_job d = {
			.ops = fr->ops,
			.d = { .w = &fl->dw,
			       .s = s,
			       .w_bits = fr->w_bits,
			       .off = fr->off,
			       .u = j.u,
			       .ep = fr->ep },
			.rows = batch * s->out_h * s->out_w,
		};

		if (fr->ops->direct)
			quantize_padded(fr, s, &j);
		else if (j.x)
			run_tasks(fr->par, j.tasks, quantize_task, &j);
		d.tasks = d.rows < threads ? (d.rows ? d.rows : 1) : threads;
		run_tasks(fr->par, d.tasks, dw_task, &d);
		return;
	}
	j.m = batch * s->out_h * s->out_w;
	lut_on = use_lut(fr, j.m);
	if (input_is_rows(s, kp)) {
		if (j.x)
			run_tasks(fr->par, j.tasks, quantize_task, &j); /* the GEMM's A itself */
	} else {
		/*
		 * A strided 1x1 convolution's rows are single pixels: copying them costs less
		 * than summing every input pixel for the direct path (1.9 against 2.2 us, the
		 * bundled model's 14x14x48 one). The table-lookup kernel reads windows in place
		 * in steps of 16 channels, else it takes im2col rows too.
		 */
		quantize_padded(fr, s, &j);
		if (fr->ops->direct && s->in_c % KERN_KSTEP == 0 && s->kernel_h * s->kernel_w > 1 &&
		    (!lut_on || s->in_c % 16 == 0)) {
			run_direct(fr, s, &j, (int32_t *)(void *)rows, base + lay.panels,
				   lut_on ? base + lay.lut : NULL);
			return;
		}
		j.rows = rows;
	}
	if (j.tasks > j.m)
		j.tasks = j.m ? j.m : 1;
	run_tasks(fr->par, j.tasks, rows_task, &j);
	if (lut_on)
		build_tables(fr, j.rows ? j.rows : j.u, kp, j.m, fl->planes.k, lut_k16(fl),
			     base + lay.lut, (size_t)lut_k16(fl) * 4, &lut);
	run_gemm(fr, j.rows ? j.rows : j.u, kp, j.m, sum_q, base + lay.panels, 1, NULL,
		 lut_on ? &lut : NULL);
}
