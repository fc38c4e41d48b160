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
 * each region and each node value starting on a 64-byte boundary. Node values share slots by
 * liveness: a slot is reused once the last consumer of its value has run.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bmx_engine.h"
#include "ops_ref.h"

/*
 * Pre-decoded weights (int16, one copy per supported weight bit-width) are kept for layers in
 * model order until this many bytes are used; the remaining layers (the big ones of resnet18)
 * are decoded into scratch at every run, which costs one pass over the codes per layer.
 */
#ifndef ENGINE_PREDECODE_BUDGET /* tests set it to 0 to exercise decoding at run time */
#define ENGINE_PREDECODE_BUDGET (64u << 20)
#endif

#define FLOATS_PER_LINE 16u /* 64 bytes */

struct engine_layer {
	float *m;                          /* [tbn_rows][nbits][out_c]: (s_w * 2^(7-w)) * g */
	int16_t *decoded[BMX_NUM_BITS];    /* [bit index][out_c * reduction], or NULL */
};

struct bmx_engine {
	const struct bmx_model *model;
	struct engine_layer *layers;       /* layer_count */
	uint32_t *node_slot;               /* node -> value slot */
	uint64_t *slot_offset;             /* slot -> offset in floats per sample, 16-aligned */
	uint32_t n_slots;
	uint64_t values_per_sample;        /* floats of all slots, per sample */
	uint64_t codes_per_sample;         /* largest quantized-layer input */
	uint64_t acc_per_sample;           /* largest quantized-layer output */
	uint64_t decode_elems;             /* largest layer that is not pre-decoded, or 0 */
};

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

static uint64_t node_elems(const struct bmx_node *n)
{
	return (uint64_t)n->out_h * n->out_w * n->out_c;
}

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
		if (e->slot_offset[s] >= need && (fit == UINT32_MAX || e->slot_offset[s] < e->slot_offset[fit]))
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
	uint32_t *last_use = calloc(m->node_count, sizeof(uint32_t));
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

		e->node_slot[id] = take_slot(e, slot_free, align_up(node_elems(n), FLOATS_PER_LINE));
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
	free(last_use);
	free(slot_free);
	return r;
}

int bmx_engine_new(const struct bmx_model *model, struct bmx_engine **out)
{
	struct bmx_engine *e;
	uint64_t budget = ENGINE_PREDECODE_BUDGET;
	int r;

	*out = NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->model = model;
	e->layers = calloc(model->layer_count ? model->layer_count : 1, sizeof(*e->layers));
	if (!e->layers) {
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
		r = predecode_layer(v, &e->layers[l], &budget, &e->decode_elems);
		if (r < 0)
			goto fail;
		if (in > e->codes_per_sample)
			e->codes_per_sample = in;
		if (outn > e->acc_per_sample)
			e->acc_per_sample = outn;
	}
	r = plan_values(e);
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
	}
	free(e->layers);
	free(e->node_slot);
	free(e->slot_offset);
	free(e);
}

const struct bmx_model *bmx_engine_model(const struct bmx_engine *e)
{
	return e->model;
}

/* Byte offsets of the scratch regions for BATCH samples; returns the total. */
struct scratch_layout {
	uint64_t codes, acc, decode, total;
};

static struct scratch_layout scratch_layout(const struct bmx_engine *e, uint32_t batch)
{
	struct scratch_layout s;

	s.codes = e->values_per_sample * batch * sizeof(float);
	s.acc = s.codes + align_up(e->codes_per_sample * batch * sizeof(int16_t), 64);
	s.decode = s.acc + align_up(e->acc_per_sample * batch * sizeof(int32_t), 64);
	s.total = s.decode + align_up(e->decode_elems * sizeof(int16_t), 64);
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
};

static float *value_of(const struct run_ctx *c, uint32_t node)
{
	return c->values + c->e->slot_offset[c->e->node_slot[node]] * c->batch;
}

static void conv_shape_of(const struct run_ctx *c, const struct bmx_node *n, struct bmx_conv_shape *s)
{
	const struct bmx_node *in = &c->e->model->nodes[n->inputs[0]];

	*s = (struct bmx_conv_shape){
		.batch = c->batch,
		.in_h = in->out_h, .in_w = in->out_w, .in_c = in->out_c,
		.out_h = n->out_h, .out_w = n->out_w, .out_c = n->out_c,
		.kernel_h = n->kernel_h, .kernel_w = n->kernel_w,
		.stride_h = n->stride_h, .stride_w = n->stride_w,
		.pad_top = n->pad_top, .pad_left = n->pad_left,
		.pad_bottom = n->pad_bottom, .pad_right = n->pad_right,
		.groups = n->groups ? n->groups : 1,
	};
}

/* Quantize, accumulate and apply the TBN epilogue of a CONV2D or LINEAR node. */
static void run_layer(const struct run_ctx *c, const struct bmx_node *n, float *y)
{
	const struct bmx_model *m = c->e->model;
	const uint32_t l = (uint32_t)n->layer;
	const struct bmx_layer_view *v = &m->views[l];
	const struct engine_layer *el = &c->e->layers[l];
	const unsigned w = c->bits[l].w_bits, a = c->bits[l].a_bits;
	const uint32_t wi = (uint32_t)v->bit_index[w];
	const float step = v->a_step[v->bit_index[a]];
	const uint64_t in_n = (uint64_t)v->in_h * v->in_w * v->in_c * c->batch;
	const int16_t *weights = el->decoded[wi];
	uint32_t p = 0;
	int32_t lo, hi;

	bmx_ref_act_range(a, v->raw->act_signed, &lo, &hi);
	bmx_ref_quantize(value_of(c, (uint32_t)n->inputs[0]), in_n, step, lo, hi, c->codes);
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
	if (v->raw->tbn_prev >= 0) {
		const uint32_t prev = (uint32_t)v->raw->tbn_prev;

		p = (uint32_t)m->views[prev].bit_index[c->bits[prev].w_bits];
	}
	bmx_ref_tbn_epilogue(c->acc, (size_t)c->batch * v->out_h * v->out_w, v->out_c, step,
			     el->m + ((size_t)p * v->nbits + wi) * v->out_c,
			     v->tbn + (((size_t)p * v->nbits + wi) * 2 + 1) * v->out_c, y);
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
		memcpy(y, x, count * sizeof(float));
		break;
	case BMX_OP_CONV2D:
	case BMX_OP_LINEAR:
		run_layer(c, n, y);
		break;
	case BMX_OP_ADD:
		bmx_ref_add(x, value_of(c, (uint32_t)n->inputs[1]), count, y);
		break;
	case BMX_OP_MAXPOOL:
	case BMX_OP_AVGPOOL:
		conv_shape_of(c, n, &s);
		(n->op == BMX_OP_MAXPOOL ? bmx_ref_maxpool : bmx_ref_avgpool)(&s, x, y);
		break;
	case BMX_OP_GLOBAL_AVGPOOL: {
		const struct bmx_node *in = &c->e->model->nodes[n->inputs[0]];

		bmx_ref_global_avgpool(c->batch, in->out_h, in->out_w, in->out_c, x, y);
		break;
	}
	case BMX_OP_RELU:
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

int bmx_engine_run(const struct bmx_engine *e, const struct bmx_layer_bits *bits,
		   uint32_t batch, const float *input, float *output, void *scratch)
{
	const struct bmx_model *m = e->model;
	const struct scratch_layout s = scratch_layout(e, batch);
	uint8_t *base = scratch;
	struct run_ctx c = {
		.e = e,
		.bits = bits,
		.batch = batch,
		.values = (float *)base,
		.codes = (int16_t *)(base + s.codes),
		.acc = (int32_t *)(base + s.acc),
		.decode = (int16_t *)(base + s.decode),
	};
	int r;

	r = bmx_engine_check_bits(e, bits, NULL);
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < m->node_count; i++)
		run_node(&c, m->order[i], input);
	memcpy(output, value_of(&c, m->info->output_node),
	       (size_t)batch * bmx_model_output_size(m) * sizeof(float));
	return 0;
}
