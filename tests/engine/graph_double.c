/* SPDX-License-Identifier: MIT */
/*
 * graph_double.c — the double-precision whole-graph interpreter of graph_double.h. It reads the
 * model's nodes and the loader's resolved array pointers, but computes bit indices, TBN rows and
 * every op itself from the format's definitions.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph_double.h"
#include "ref_double.h"

/* Position of B among the set bits of MASK, counting from the lowest. */
static uint32_t bit_index(uint16_t mask, unsigned b)
{
	return (uint32_t)__builtin_popcount(mask & ((1u << b) - 1));
}

static size_t elems(const struct bmx_node *n)
{
	return (size_t)n->out_h * n->out_w * n->out_c;
}

static struct dshape window_of(const struct bmx_node *in, const struct bmx_node *n)
{
	return (struct dshape){
		.batch = 1,
		.in_h = in->out_h,
		.in_w = in->out_w,
		.in_c = in->out_c,
		.out_h = n->out_h,
		.out_w = n->out_w,
		.out_c = n->out_c,
		.kh = n->kernel_h,
		.kw = n->kernel_w,
		.sh = n->stride_h,
		.sw = n->stride_w,
		.pt = n->pad_top,
		.pl = n->pad_left,
		.pb = n->pad_bottom,
		.pr = n->pad_right,
		.groups = n->groups ? n->groups : 1,
	};
}

/* Is x / step so near a rounding boundary (inside the clamp range) that float error may flip it? */
static int near_boundary(double x, double step, int32_t lo, int32_t hi)
{
	double t = x / step;

	return t > lo && t < hi && fabs(t - floor(t) - 0.5) < 2e-6 * (fabs(t) + 1);
}

static int run_layer(const struct bmx_model *m, const struct bmx_layer_bits *bits, int fp,
		     const struct bmx_node *n, const double *x, double *y, unsigned *ambiguous)
{
	const struct bmx_layer_view *v = &m->views[n->layer];
	const struct bmx_layer *raw = &m->layers[n->layer];
	const unsigned w = bits[n->layer].w_bits, a = bits[n->layer].a_bits;
	const uint32_t nbits = (uint32_t)__builtin_popcount(raw->bits_mask);
	const size_t n_in = (size_t)v->in_h * v->in_w * v->in_c, red = v->reduction;
	const double step = v->a_step[bit_index(raw->bits_mask, a)];
	struct dshape s = window_of(&m->nodes[n->inputs[0]], n);
	double *xq = malloc(n_in * sizeof(double)), *wt = malloc(red * v->out_c * sizeof(double));
	const float *g, *beta;
	uint32_t p = 0;
	int32_t lo, hi;

	if (!xq || !wt) {
		free(xq);
		free(wt);
		return -ENOMEM;
	}
	dref_act_range(a, raw->act_signed, &lo, &hi);
	for (size_t i = 0; i < n_in; i++) {
		xq[i] = fp ? x[i] : dref_code(x[i], step, lo, hi) * step;
		*ambiguous += !fp && near_boundary(x[i], step, lo, hi);
	}
	for (size_t i = 0; i < red * v->out_c; i++)
		wt[i] = dref_weight_real(v->weights[i], fp ? 8 : w, v->w_scale[i / red]);
	if (n->op == BMX_OP_LINEAR)
		s = (struct dshape){ 1, 1, 1, (uint32_t)n_in, 1, 1, v->out_c, 1, 1, 1, 1, 0, 0,
				     0, 0, 1 };
	dref_conv(&s, xq, wt, y);

	if (raw->tbn_prev >= 0)
		p = bit_index(m->layers[raw->tbn_prev].bits_mask, bits[raw->tbn_prev].w_bits);
	g = v->tbn + ((size_t)p * nbits + bit_index(raw->bits_mask, w)) * 2 * v->out_c;
	beta = g + v->out_c;
	for (size_t i = 0; i < elems(n); i++)
		y[i] = y[i] * g[i % v->out_c] + beta[i % v->out_c];
	free(xq);
	free(wt);
	return 0;
}

static int run_node(const struct bmx_model *m, const struct bmx_layer_bits *bits, int fp,
		    uint32_t id, double **val, const float *input, unsigned *ambiguous)
{
	const struct bmx_node *n = &m->nodes[id];
	const double *x = n->n_inputs ? val[n->inputs[0]] : NULL;
	double *y = val[id];
	size_t count = elems(n);
	struct dshape s;

	switch (n->op) {
	case BMX_OP_INPUT:
		for (size_t i = 0; i < count; i++)
			y[i] = input[i];
		return 0;
	case BMX_OP_CONV2D:
	case BMX_OP_LINEAR:
		return run_layer(m, bits, fp, n, x, y, ambiguous);
	case BMX_OP_ADD:
		for (size_t i = 0; i < count; i++)
			y[i] = x[i] + val[n->inputs[1]][i];
		return 0;
	case BMX_OP_MAXPOOL:
	case BMX_OP_AVGPOOL:
		s = window_of(&m->nodes[n->inputs[0]], n);
		(n->op == BMX_OP_MAXPOOL ? dref_maxpool : dref_avgpool)(&s, x, y);
		return 0;
	case BMX_OP_GLOBAL_AVGPOOL:
		s = window_of(&m->nodes[n->inputs[0]], n);
		dref_global_avgpool(1, s.in_h * s.in_w, s.in_c, x, y);
		return 0;
	case BMX_OP_RELU:
	case BMX_OP_RELU6:
		for (size_t i = 0; i < count; i++)
			y[i] = n->op == BMX_OP_RELU ? fmax(x[i], 0) : fmin(fmax(x[i], 0), 6);
		return 0;
	case BMX_OP_FLATTEN:
		memcpy(y, x, count * sizeof(double));
		return 0;
	case BMX_OP_SOFTMAX:
		dref_softmax((uint32_t)count, x, y);
		return 0;
	}
	return -EINVAL;
}

int graph_double_run(const struct bmx_model *m, const struct bmx_layer_bits *bits, int fp,
		     const float *input, double *out, unsigned *ambiguous)
{
	double **val = calloc(m->node_count, sizeof(double *));
	unsigned unused = 0;
	int r = -ENOMEM;

	if (!ambiguous)
		ambiguous = &unused;
	*ambiguous = 0;
	if (!val)
		return -ENOMEM;
	for (uint32_t i = 0; i < m->node_count; i++) {
		val[i] = malloc((elems(&m->nodes[i]) + 1) * sizeof(double));
		if (!val[i])
			goto out;
	}
	for (uint32_t i = 0; i < m->node_count; i++) {
		r = run_node(m, bits, fp, m->order[i], val, input, ambiguous);
		if (r < 0)
			goto out;
	}
	memcpy(out, val[m->info->output_node], m->info->output_size * sizeof(double));
	r = 0;
out:
	for (uint32_t i = 0; val && i < m->node_count; i++)
		free(val[i]);
	free(val);
	return r;
}
