/* SPDX-License-Identifier: MIT */
/*
 * bmx_engine.c — the graph runner of bmx_engine.h on the reference kernels (ops_ref.h). At
 * creation it folds every layer's transitional-BN scales with its weight scales, pre-decodes
 * weights per (layer, weight bits) within a memory budget and plans the scratch memory; a run
 * then walks the model's execution order, quantizing at the input of each CONV2D/LINEAR.
 *
 * Memory: the engine is immutable after bmx_engine_new() and never writes the model; every
 * mutable byte of a run lives in the caller's scratch, which must be 64-byte aligned. Scratch is
 * [node values, float][activation codes, int16][accumulators, int32][decoded weights, int16],
 * each region and each node value starting on a 64-byte boundary, then the fast path's layer
 * scratch. Node values share slots by liveness: a slot is reused once the last consumer of its
 * value has run. On a fast path (engine_fast.h) the weights are repacked into bit-planes at
 * creation, and a CONV2D/LINEAR whose only consumer is the RELU right after it in the order
 * writes the rectified values into that RELU's slot (the ReLU fused into its epilogue).
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bmx_engine_internal.h"
#include "ops_ref.h"

/*
 * Pre-decoded weights (int16, one copy per supported weight bit-width) are kept for layers in
 * model order until this many bytes are used; the remaining layers (the big ones of resnet18)
 * are decoded into scratch at every run, which costs one pass over the codes per layer.
 */
#ifndef ENGINE_PREDECODE_BUDGET /* tests set it to 0 to exercise decoding at run time */
#define ENGINE_PREDECODE_BUDGET (64u << 20)
#endif

static int fold_layer(const struct bmx_layer_view *v, struct engine_layer *el)
{
	const uint32_t oc = v->out_c;

	el->m = malloc(sizeof(float) * v->tbn_rows * v->nbits * oc);
	if (!el->m)
		return -ENOMEM;
	for (uint32_t p = 0; p < v->tbn_rows; p++)
		for (uint32_t i = 0; i < v->nbits; i++) {
			const float pow2 = ldexpf(1.0f, 7 - (int)v->bits[i]); /* exact */
			const float *g = v->tbn + ((size_t)p * v->nbits + i) * 2 * oc;
			float *m = el->m + ((size_t)p * v->nbits + i) * oc;

			for (uint32_t o = 0; o < oc; o++)
				m[o] = (v->w_scale[o] * pow2) * g[o];
		}
	return 0;
}

/* Decode layer V's weights for every supported bit-width if BUDGET allows; else leave NULL. */
static int predecode_layer(const struct bmx_layer_view *v, struct engine_layer *el,
			   uint64_t *budget, uint64_t *decode_elems)
{
	const uint64_t n = (uint64_t)v->out_c * v->reduction;
	const uint64_t bytes = n * sizeof(int16_t) * v->nbits;

	if (bytes > *budget) {
		if (n > *decode_elems)
			*decode_elems = n;
		return 0;
	}
	for (uint32_t i = 0; i < v->nbits; i++) {
		el->decoded[i] = malloc(n * sizeof(int16_t));
		if (!el->decoded[i])
			return -ENOMEM;
		bmx_ref_decode_weights(v->weights, n, v->bits[i], el->decoded[i]);
	}
	*budget -= bytes;
	return 0;
}

/* A free slot for NEED floats: the smallest that fits, else the largest grown, else a new one. */
static uint32_t take_slot(struct bmx_engine *e, bool *slot_free, uint64_t need)
{
	uint32_t fit = UINT32_MAX, big = UINT32_MAX;

	for (uint32_t s = 0; s < e->n_slots; s++) {
		if (!slot_free[s])
			continue;
		if (e->slot_offset[s] >= need &&
		    (fit == UINT32_MAX || e->slot_offset[s] < e->slot_offset[fit]))
			fit = s;
		if (big == UINT32_MAX || e->slot_offset[s] > e->slot_offset[big])
			big = s;
	}
	if (fit == UINT32_MAX)
		fit = big != UINT32_MAX ? big : e->n_slots++;
	if (e->slot_offset[fit] < need)
		e->slot_offset[fit] = need;
	slot_free[fit] = false;
	return fit;
}

/*
 * Assign every node a value slot by liveness. slot_offset[] first collects slot sizes, then is
 * turned into prefix offsets. The output node's value stays live to the end.
 */
static int plan_values(struct bmx_engine *e)
{
	const struct bmx_model *m = e->model;
	uint32_t *last_use = e->last_use = calloc(m->node_count, sizeof(uint32_t));
	bool *slot_free = calloc(m->node_count, sizeof(bool));
	int r = -ENOMEM;

	e->node_slot = calloc(m->node_count, sizeof(uint32_t));
	e->slot_offset = calloc(m->node_count, sizeof(uint64_t));
	if (!last_use || !slot_free || !e->node_slot || !e->slot_offset)
		goto out;

	for (uint32_t i = 0; i < m->node_count; i++) {
		const struct bmx_node *n = &m->nodes[m->order[i]];

		last_use[m->order[i]] = i;
		for (uint32_t j = 0; j < n->n_inputs; j++)
			last_use[n->inputs[j]] = i;
	}
	last_use[m->info->output_node] = UINT32_MAX;

	for (uint32_t i = 0; i < m->node_count; i++) {
		const uint32_t id = m->order[i];
		const struct bmx_node *n = &m->nodes[id];

		e->node_slot[id] =
			take_slot(e, slot_free, align_up(node_elems(n), FLOATS_PER_LINE));
		for (uint32_t j = 0; j < n->n_inputs; j++)
			if (last_use[n->inputs[j]] == i)
				slot_free[e->node_slot[n->inputs[j]]] = true;
		if (last_use[id] == i)
			slot_free[e->node_slot[id]] = true;
	}

	for (uint32_t s = 0; s < e->n_slots; s++) {
		uint64_t size = e->slot_offset[s];

		e->slot_offset[s] = e->values_per_sample;
		e->values_per_sample += size;
	}
	r = 0;
out:
	free(slot_free);
	return r;
}

static const struct kern_ops *ops_of(enum bmx_kernels_path path)
{
#if defined(__x86_64__)
	if (path == BMX_KERNELS_AVX512)
		return &kern_ops_avx512;
	if (path == BMX_KERNELS_AVX2)
		return &kern_ops_avx2;
	if (path == BMX_KERNELS_AVXVNNI)
		return &kern_ops_avxvnni;
#endif
	(void)path;
	return NULL;
}

int bmx_engine_new(const struct bmx_model *model, struct bmx_engine **out)
{
	return bmx_engine_new_path(model, BMX_KERNELS_AUTO, out);
}

int bmx_engine_new_path(const struct bmx_model *model, enum bmx_kernels_path path,
			struct bmx_engine **out)
{
	struct bmx_engine *e;
	uint64_t budget = ENGINE_PREDECODE_BUDGET;
	int r;

	*out = NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->model = model;
	e->path = bmx_kernels_resolve(path);
	e->ops = ops_of(e->path);
	if (!e->ops)
		e->path = BMX_KERNELS_REF;
	e->layers = calloc(model->layer_count ? model->layer_count : 1, sizeof(*e->layers));
	e->fast = calloc(model->layer_count ? model->layer_count : 1, sizeof(*e->fast));
	if (!e->layers || !e->fast) {
		r = -ENOMEM;
		goto fail;
	}
	for (uint32_t l = 0; l < model->layer_count; l++) {
		const struct bmx_layer_view *v = &model->views[l];
		uint64_t in = (uint64_t)v->in_h * v->in_w * v->in_c;
		uint64_t outn = (uint64_t)v->out_h * v->out_w * v->out_c;

		r = fold_layer(v, &e->layers[l]);
		if (r < 0)
			goto fail;
		if (e->ops) {
			r = engine_fast_prepare(v, e->ops, &e->fast[l]);
			if (r < 0)
				goto fail;
		}
		if (e->fast[l].kind == FAST_NONE) {
			r = predecode_layer(v, &e->layers[l], &budget, &e->decode_elems);
			if (r < 0)
				goto fail;
		}
		if (in > e->codes_per_sample)
			e->codes_per_sample = in;
		if (outn > e->acc_per_sample)
			e->acc_per_sample = outn;
	}
	r = plan_values(e);
	if (r == 0)
		r = engine_plan_fusion(e);
	if (r < 0)
		goto fail;
	*out = e;
	return 0;
fail:
	bmx_engine_free(e);
	return r;
}

void bmx_engine_free(struct bmx_engine *e)
{
	if (!e)
		return;
	for (uint32_t l = 0; e->layers && l < e->model->layer_count; l++) {
		free(e->layers[l].m);
		for (uint32_t i = 0; i < BMX_NUM_BITS; i++)
			free(e->layers[l].decoded[i]);
		if (e->fast)
			engine_fast_free(&e->fast[l]);
	}
	free(e->layers);
	free(e->fast);
	free(e->fused);
	free(e->requant_to);
	free(e->node_slot);
	free(e->last_use);
	free(e->slot_offset);
	free(e);
}

const struct bmx_model *bmx_engine_model(const struct bmx_engine *e)
{
	return e->model;
}

enum bmx_kernels_path bmx_engine_path(const struct bmx_engine *e)
{
	return e->path;
}

/* Byte offsets of the scratch regions for BATCH samples; returns the total. */
struct scratch_layout {
	uint64_t codes, acc, decode, requant, fast, total;
};

static struct scratch_layout scratch_layout(const struct bmx_engine *e, uint32_t batch)
{
	struct scratch_layout s;

	s.codes = e->values_per_sample * batch * sizeof(float);
	s.acc = s.codes + align_up(e->codes_per_sample * batch * sizeof(int16_t), 64);
	s.decode = s.acc + align_up(e->acc_per_sample * batch * sizeof(int32_t), 64);
	s.requant = s.decode + align_up(e->decode_elems * sizeof(int16_t), 64);
	/* two buffers: a layer may read its codes from one, write the next layer's to the other */
	s.fast = s.requant + 2 * align_up(engine_requant_bytes(e, batch), 64);
	s.total = s.fast;
	for (uint32_t l = 0; e->ops && l < e->model->layer_count; l++) {
		uint64_t need = engine_fast_scratch(&e->model->views[l], &e->fast[l], batch);

		if (s.fast + need > s.total)
			s.total = s.fast + need;
	}
	return s;
}

size_t bmx_engine_scratch_size(const struct bmx_engine *e, uint32_t batch)
{
	uint64_t total = scratch_layout(e, batch).total;

	return total > SIZE_MAX ? SIZE_MAX : (size_t)total;
}

void bmx_engine_default_bits(const struct bmx_engine *e, struct bmx_layer_bits *bits)
{
	for (uint32_t l = 0; l < e->model->layer_count; l++) {
		bits[l].w_bits = e->model->views[l].raw->default_w_bits;
		bits[l].a_bits = e->model->views[l].raw->default_a_bits;
	}
}

static bool bits_supported(const struct bmx_layer_view *v, uint8_t b)
{
	return b >= BMX_MIN_BITS && b <= BMX_MAX_BITS && v->bit_index[b] >= 0;
}

int bmx_engine_check_bits(const struct bmx_engine *e, const struct bmx_layer_bits *bits,
			  uint32_t *bad_layer)
{
	for (uint32_t l = 0; l < e->model->layer_count; l++) {
		const struct bmx_layer_view *v = &e->model->views[l];

		if (!bits_supported(v, bits[l].w_bits) || !bits_supported(v, bits[l].a_bits)) {
			if (bad_layer)
				*bad_layer = l;
			return -EINVAL;
		}
	}
	return 0;
}

/* Everything one run needs; lives on the caller's stack. */
struct run_ctx {
	const struct bmx_engine *e;
	const struct bmx_layer_bits *bits;
	uint32_t batch;
	float *values;
	int16_t *codes;
	int32_t *acc;
	int16_t *decode;
	uint8_t *requant[2]; /* the codes fused requantizations write, in turns */
	void *fast;
	const struct bmx_parallel *par;
	uint32_t pos; /* position of the running node in the order */
	/* the layer node whose input codes are in requant[*codes_in], or NO_NODE */
	uint32_t *codes_for, *codes_in;
};

static float *value_of(const struct run_ctx *c, uint32_t node)
{
	return c->values + c->e->slot_offset[c->e->node_slot[node]] * c->batch;
}

static void conv_shape_of(const struct run_ctx *c, const struct bmx_node *n,
			  struct bmx_conv_shape *s)
{
	engine_shape_of(c->e->model, n, c->batch, s);
}

/* The reference kernels: quantize, decode if needed, accumulate, TBN epilogue. */
static void run_layer_ref(const struct run_ctx *c, const struct bmx_node *n,
			  const struct fast_run *fr, float step, float *y)
{
	const struct bmx_layer_view *v = fr->view;
	const uint32_t l = (uint32_t)n->layer;
	const unsigned w = fr->w_bits;
	const uint64_t in_n = (uint64_t)v->in_h * v->in_w * v->in_c * c->batch;
	const int16_t *weights = c->e->layers[l].decoded[v->bit_index[w]];

	bmx_ref_quantize(value_of(c, (uint32_t)n->inputs[0]), in_n, step, fr->lo, fr->hi, c->codes);
	if (!weights) {
		bmx_ref_decode_weights(v->weights, (size_t)v->out_c * v->reduction, w, c->decode);
		weights = c->decode;
	}
	if (n->op == BMX_OP_CONV2D) {
		struct bmx_conv_shape s;

		conv_shape_of(c, n, &s);
		bmx_ref_conv2d_acc(&s, c->codes, weights, c->acc);
	} else {
		bmx_ref_linear_acc(c->batch, v->reduction, v->out_c, c->codes, weights, c->acc);
	}
	bmx_ref_tbn_epilogue(c->acc, (size_t)c->batch * v->out_h * v->out_w, v->out_c, step,
			     fr->ep.m, fr->ep.beta, y);
}

/*
 * Quantize, accumulate and apply the TBN epilogue (and a fused ReLU, and the requantization of
 * the output for the next layer) of CONV2D or LINEAR node ID.
 */
static void run_layer(const struct run_ctx *c, uint32_t id, float *y, int relu)
{
	const struct bmx_node *n = &c->e->model->nodes[id];
	struct kern_requant rq;
	const struct bmx_model *m = c->e->model;
	const uint32_t l = (uint32_t)n->layer;
	const struct bmx_layer_view *v = &m->views[l];
	const unsigned w = c->bits[l].w_bits, a = c->bits[l].a_bits;
	const uint32_t wi = (uint32_t)v->bit_index[w];
	const float step = v->a_step[v->bit_index[a]];
	struct fast_run fr = {
		.ops = c->e->ops,
		.view = v,
		.layer = &c->e->fast[l],
		.w_bits = w,
		.a_bits = a,
		.inv = 1.0f / step,
		.par = c->par,
		.ep = { .step = step, .relu = relu, .y = y, .ldy = v->out_c },
	};
	uint32_t p = 0;

	if (v->raw->tbn_prev >= 0) {
		const uint32_t prev = (uint32_t)v->raw->tbn_prev;

		p = (uint32_t)m->views[prev].bit_index[c->bits[prev].w_bits];
	}
	fr.ep.m = c->e->layers[l].m + ((size_t)p * v->nbits + wi) * v->out_c;
	fr.ep.beta = v->tbn + (((size_t)p * v->nbits + wi) * 2 + 1) * v->out_c;
	bmx_ref_act_range(a, v->raw->act_signed, &fr.lo, &fr.hi);
	fr.off = -fr.lo;
	if (*c->codes_for == id)
		fr.codes = c->requant[*c->codes_in];
	*c->codes_for = NO_NODE;
	if (c->e->requant_to && c->e->requant_to[id] != NO_NODE) {
		const uint32_t next = c->e->requant_to[id];

		*c->codes_in = fr.codes ? 1 - *c->codes_in : 0; /* not the one this layer reads */
		engine_requant_of(c->e, next, c->bits[m->nodes[next].layer].a_bits,
				  c->requant[*c->codes_in], &rq);
		fr.ep.rq = &rq;
		*c->codes_for = next;
	}
	if (!c->e->ops || fr.layer->kind == FAST_NONE) {
		run_layer_ref(c, n, &fr, step, y);
	} else if (n->op == BMX_OP_CONV2D) {
		struct bmx_conv_shape s;

		conv_shape_of(c, n, &s);
		engine_fast_run(&fr, &s, c->batch, value_of(c, (uint32_t)n->inputs[0]), c->fast);
	} else {
		engine_fast_run(&fr, NULL, c->batch, value_of(c, (uint32_t)n->inputs[0]), c->fast);
	}
}

struct copy_job {
	float *dst;
	const float *src;
	size_t n;
	unsigned tasks;
};

static void copy_task(void *arg, unsigned t)
{
	const struct copy_job *j = arg;
	const size_t line = FLOATS_PER_LINE;
	const size_t a = j->n * t / j->tasks / line * line;
	const size_t b = t + 1 == j->tasks ? j->n : j->n * (t + 1) / j->tasks / line * line;

	memcpy(j->dst + a, j->src + a, (b - a) * sizeof(float));
}

/*
 * Copy N floats, split over PAR's threads when there are 64 k or more (the helpers would wait
 * otherwise: a 64 x 1024 batch in and out is half a megabyte).
 */
static void copy_floats(const struct bmx_parallel *par, float *dst, const float *src, size_t n)
{
	struct copy_job j = { dst, src, n, par && par->for_each ? par->threads : 1 };

	if (j.tasks < 2 || n < 65536) {
		memcpy(dst, src, n * sizeof(float));
		return;
	}
	par->for_each(par->ctx, j.tasks, copy_task, &j);
}

/* The model output of a finished run out of SCRATCH, the copy split over PAR (or NULL). */
static void read_output(const struct bmx_engine *e, uint32_t batch, const void *scratch,
			float *output, const struct bmx_parallel *par)
{
	copy_floats(par, output, bmx_engine_value(e, batch, scratch, e->model->info->output_node),
		    (size_t)batch * bmx_model_output_size(e->model));
}

void bmx_engine_read_output(const struct bmx_engine *e, uint32_t batch, const void *scratch,
			    float *output)
{
	read_output(e, batch, scratch, output, NULL);
}

static void run_node(const struct run_ctx *c, uint32_t id, const float *input)
{
	const struct bmx_node *n = &c->e->model->nodes[id];
	const size_t count = node_elems(n) * c->batch;
	float *y = value_of(c, id);
	const float *x = n->n_inputs > 0 ? value_of(c, (uint32_t)n->inputs[0]) : input;
	struct bmx_conv_shape s;

	switch (n->op) {
	case BMX_OP_INPUT:
	case BMX_OP_FLATTEN:
		copy_floats(c->par, y, x, count);
		break;
	case BMX_OP_CONV2D:
	case BMX_OP_LINEAR:
		if (c->e->fused[id] == FUSED_RELU_OUT)
			run_layer(c, id, value_of(c, c->e->model->order[c->pos + 1]), 1);
		else
			run_layer(c, id, y, 0);
		break;
	case BMX_OP_ADD:
		if (c->e->ops && c->e->ops->add)
			c->e->ops->add(x, value_of(c, (uint32_t)n->inputs[1]), count, y);
		else
			bmx_ref_add(x, value_of(c, (uint32_t)n->inputs[1]), count, y);
		break;
	case BMX_OP_MAXPOOL:
	case BMX_OP_AVGPOOL:
		conv_shape_of(c, n, &s);
		if (n->op == BMX_OP_MAXPOOL && c->e->ops && c->e->ops->maxpool)
			c->e->ops->maxpool(&s, x, y);
		else
			(n->op == BMX_OP_MAXPOOL ? bmx_ref_maxpool : bmx_ref_avgpool)(&s, x, y);
		break;
	case BMX_OP_GLOBAL_AVGPOOL: {
		const struct bmx_node *in = &c->e->model->nodes[n->inputs[0]];

		if (c->e->ops && c->e->ops->global_avgpool)
			c->e->ops->global_avgpool(c->batch, in->out_h, in->out_w, in->out_c, x, y);
		else
			bmx_ref_global_avgpool(c->batch, in->out_h, in->out_w, in->out_c, x, y);
		break;
	}
	case BMX_OP_RELU:
		if (c->e->fused[id] == FUSED_SKIP)
			break;
		if (c->e->ops && c->e->ops->relu)
			c->e->ops->relu(x, count, y);
		else
			bmx_ref_relu(x, count, y);
		break;
	case BMX_OP_RELU6:
		bmx_ref_relu6(x, count, y);
		break;
	case BMX_OP_SOFTMAX:
		bmx_ref_softmax(c->batch, (uint32_t)node_elems(n), x, y);
		break;
	}
}

int bmx_engine_run(const struct bmx_engine *e, const struct bmx_layer_bits *bits, uint32_t batch,
		   const float *input, float *output, void *scratch)
{
	return bmx_engine_run_parallel(e, bits, batch, input, output, scratch, NULL);
}

static struct run_ctx run_ctx_of(const struct bmx_engine *e, const struct bmx_layer_bits *bits,
				 uint32_t batch, void *scratch, const struct bmx_parallel *par)
{
	const struct scratch_layout s = scratch_layout(e, batch);
	uint8_t *base = scratch;

	return (struct run_ctx){
		.e = e,
		.bits = bits,
		.batch = batch,
		.values = (float *)base,
		.codes = (int16_t *)(base + s.codes),
		.acc = (int32_t *)(base + s.acc),
		.decode = (int16_t *)(base + s.decode),
		.requant = { base + s.requant, base + s.requant + (s.fast - s.requant) / 2 },
		.fast = base + s.fast,
		.par = par,
	};
}

int bmx_engine_run_parallel(const struct bmx_engine *e, const struct bmx_layer_bits *bits,
			    uint32_t batch, const float *input, float *output, void *scratch,
			    const struct bmx_parallel *par)
{
	int r = bmx_engine_run_range(e, bits, batch, input, scratch, 0, e->model->node_count, par);

	if (r == 0)
		read_output(e, batch, scratch, output, par);
	return r;
}

int bmx_engine_run_range(const struct bmx_engine *e, const struct bmx_layer_bits *bits,
			 uint32_t batch, const float *input, void *scratch, uint32_t from,
			 uint32_t to, const struct bmx_parallel *par)
{
	const struct bmx_model *m = e->model;
	struct run_ctx c = run_ctx_of(e, bits, batch, scratch, par);
	uint32_t codes_for = NO_NODE, codes_in = 0; /* a resumed run quantizes its input itself */
	int r;

	if (from > to || to > m->node_count)
		return -EINVAL;
	r = bmx_engine_check_bits(e, bits, NULL);
	if (r < 0)
		return r;
	c.codes_for = &codes_for;
	c.codes_in = &codes_in;
	for (c.pos = from; c.pos < to; c.pos++)
		run_node(&c, m->order[c.pos], input);
	return 0;
}

static uint64_t clock_ns(int clock)
{
	struct timespec ts;

	clock_gettime((clockid_t)clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int bmx_engine_run_timed(const struct bmx_engine *e, const struct bmx_layer_bits *bits,
			 uint32_t batch, const float *input, void *scratch, int clock, uint64_t *ns)
{
	const struct bmx_model *m = e->model;
	struct run_ctx c = run_ctx_of(e, bits, batch, scratch, NULL);
	uint32_t codes_for = NO_NODE, codes_in = 0;
	uint64_t t = clock_ns(clock), t1;
	int r = bmx_engine_check_bits(e, bits, NULL);

	if (r < 0)
		return r;
	c.codes_for = &codes_for;
	c.codes_in = &codes_in;
	for (c.pos = 0; c.pos < m->node_count; c.pos++) {
		run_node(&c, m->order[c.pos], input);
		t1 = clock_ns(clock);
		ns[c.pos] = t1 - t;
		t = t1;
	}
	return 0;
}
