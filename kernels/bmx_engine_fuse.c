/* SPDX-License-Identifier: MIT */
/*
 * bmx_engine_fuse.c — what a fast engine fuses into a layer's epilogue, decided once at
 * creation: the RELU right after a CONV2D/LINEAR that is its only reader (the layer writes the
 * rectified values into the RELU's slot), and the requantization of its output as the input of
 * the next quantized layer when that layer is its only reader (the epilogue also writes the
 * next layer's codes where it reads them, kern_requant, so that layer skips its quantizer).
 * The float values are written either way: prefix reuse and bmx_engine_value() read them.
 */
#include <errno.h>
#include <stdlib.h>

#include "bmx_engine_internal.h"

void engine_shape_of(const struct bmx_model *m, const struct bmx_node *n, uint32_t batch,
		     struct bmx_conv_shape *s)
{
	const struct bmx_node *in = &m->nodes[n->inputs[0]];

	*s = (struct bmx_conv_shape){
		.batch = batch,
		.in_h = in->out_h,
		.in_w = in->out_w,
		.in_c = in->out_c,
		.out_h = n->out_h,
		.out_w = n->out_w,
		.out_c = n->out_c,
		.kernel_h = n->kernel_h,
		.kernel_w = n->kernel_w,
		.stride_h = n->stride_h,
		.stride_w = n->stride_w,
		.pad_top = n->pad_top,
		.pad_left = n->pad_left,
		.pad_bottom = n->pad_bottom,
		.pad_right = n->pad_right,
		.groups = n->groups ? n->groups : 1,
	};
}

static bool is_fast_layer(const struct bmx_engine *e, const struct bmx_node *n)
{
	return (n->op == BMX_OP_CONV2D || n->op == BMX_OP_LINEAR) && n->layer >= 0 &&
	       e->fast[n->layer].kind != FAST_NONE;
}

/*
 * The layer node whose input the layer at position I of the order may quantize (its value, or
 * its fused RELU's, having that node as its only reader, the next quantized layer to run), or
 * NO_NODE.
 */
static uint32_t requant_target(const struct bmx_engine *e, const uint32_t *consumers, uint32_t i)
{
	const struct bmx_model *m = e->model;
	const uint32_t id = m->order[i];
	const uint32_t out = e->fused[id] == FUSED_RELU_OUT ? m->order[i + 1] : id;

	if (!e->ops->requant || e->fast[m->nodes[id].layer].kind != FAST_GEMM ||
	    consumers[out] != 1 || out == m->info->output_node)
		return NO_NODE;
	for (uint32_t j = i + 1; j < m->node_count; j++) {
		const struct bmx_node *c = &m->nodes[m->order[j]];

		if (c->op == BMX_OP_CONV2D || c->op == BMX_OP_LINEAR)
			return is_fast_layer(e, c) && c->inputs[0] == (int32_t)out ? m->order[j]
										   : NO_NODE;
	}
	return NO_NODE;
}

/* Where layer node ID reads its quantized input (the same at any batch). */
static void input_layout(const struct bmx_engine *e, uint32_t id, struct kern_requant *rq)
{
	const struct bmx_model *m = e->model;
	const struct bmx_node *n = &m->nodes[id];
	struct bmx_conv_shape s;

	if (n->op == BMX_OP_CONV2D)
		engine_shape_of(m, n, 1, &s);
	engine_fast_input_layout(&e->fast[n->layer], e->ops, &m->nodes[n->inputs[0]],
				 n->op == BMX_OP_CONV2D ? &s : NULL, rq);
}

int engine_plan_fusion(struct bmx_engine *e)
{
	const struct bmx_model *m = e->model;
	uint32_t *consumers = calloc(m->node_count, sizeof(uint32_t));

	e->fused = calloc(m->node_count, 1);
	e->requant_to = malloc(m->node_count * sizeof(uint32_t));
	if (!consumers || !e->fused || !e->requant_to) {
		free(consumers);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < m->node_count; i++) {
		e->requant_to[i] = NO_NODE;
		for (uint32_t j = 0; j < m->nodes[i].n_inputs; j++)
			consumers[m->nodes[i].inputs[j]]++;
	}
	for (uint32_t i = 0; e->ops && i + 1 < m->node_count; i++) {
		const uint32_t id = m->order[i], next = m->order[i + 1];
		const struct bmx_node *n = &m->nodes[id], *r = &m->nodes[next];

		if (is_fast_layer(e, n) && r->op == BMX_OP_RELU && r->inputs[0] == (int32_t)id &&
		    consumers[id] == 1 && id != m->info->output_node) {
			e->fused[id] = FUSED_RELU_OUT;
			e->fused[next] = FUSED_SKIP;
		}
	}
	for (uint32_t i = 0; e->ops && i + 1 < m->node_count; i++) {
		const uint32_t id = m->order[i];
		struct kern_requant rq;

		if (!is_fast_layer(e, &m->nodes[id]))
			continue;
		e->requant_to[id] = requant_target(e, consumers, i);
		if (e->requant_to[id] == NO_NODE)
			continue;
		input_layout(e, e->requant_to[id], &rq);
		e->requant_sample = rq.sample > e->requant_sample ? rq.sample : e->requant_sample;
	}
	free(consumers);
	return 0;
}

uint64_t engine_requant_bytes(const struct bmx_engine *e, uint32_t batch)
{
	/* 64 bytes past the last sample: the direct kernels' slack */
	return e->requant_sample ? e->requant_sample * batch + 64 : 0;
}

void engine_requant_of(const struct bmx_engine *e, uint32_t id, unsigned a_bits, uint8_t *u,
		       struct kern_requant *rq)
{
	const struct bmx_layer_view *v = &e->model->views[e->model->nodes[id].layer];

	input_layout(e, id, rq);
	rq->u = u;
	rq->inv = 1.0f / v->a_step[v->bit_index[a_bits]];
	bmx_ref_act_range(a_bits, v->raw->act_signed, &rq->lo, &rq->hi);
	rq->off = -rq->lo;
}
