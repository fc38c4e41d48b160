/* SPDX-License-Identifier: MIT */
/*
 * bmx_loader_graph.c — the loader's checks of the graph and the layers: every node's fields,
 * an execution order (Kahn's algorithm; a cycle is reported by a node on it), every node's
 * shape inferred in that order and compared with the file's, then every layer's bit-widths,
 * arrays (aligned, inside DATA, the exact size, not overlapping) and values.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bmx_loader_internal.h"
#include "ops_ref.h"

struct shape {
	uint32_t h, w, c;
};

static uint64_t node_at(const struct bmx_check *c, uint32_t i)
{
	return c->sections[BMX_SECTION_NODES]->offset + (uint64_t)i * sizeof(struct bmx_node);
}

static const char *op_name(uint16_t op)
{
	static const char *names[] = { "?",    "INPUT",	  "CONV2D",  "LINEAR",
				       "ADD",  "MAXPOOL", "AVGPOOL", "GLOBAL_AVGPOOL",
				       "RELU", "RELU6",	  "FLATTEN", "SOFTMAX" };

	return op < BMX_OP_MAX_ ? names[op] : "?";
}

static bool has_window(uint16_t op)
{
	return op == BMX_OP_CONV2D || op == BMX_OP_MAXPOOL || op == BMX_OP_AVGPOOL;
}

static int check_node_fields(struct bmx_check *c, const struct bmx_node *nodes, uint32_t i,
			     uint32_t *layer_owner)
{
	const struct bmx_node *n = &nodes[i];
	uint32_t count = c->info->node_count;
	uint64_t at = node_at(c, i);
	uint16_t want_inputs;

	if (n->op < BMX_OP_INPUT || n->op >= BMX_OP_MAX_)
		return bmx_bad(c, "NODES", at, "node[%u].op %u is not a known op", i, n->op);
	want_inputs = n->op == BMX_OP_INPUT ? 0 : n->op == BMX_OP_ADD ? 2 : 1;
	if (n->n_inputs != want_inputs)
		return bmx_bad(c, "NODES", at + offsetof(struct bmx_node, n_inputs),
			       "node[%u] (%s).n_inputs %u, expected %u", i, op_name(n->op),
			       n->n_inputs, want_inputs);
	for (int k = 0; k < 2; k++) {
		int32_t in = n->inputs[k];
		uint64_t fat = at + offsetof(struct bmx_node, inputs) + 4 * (uint64_t)k;

		if (k >= want_inputs && in != -1)
			return bmx_bad(c, "NODES", fat,
				       "node[%u].inputs[%d] is %d, unused slots must be -1", i, k,
				       in);
		if (k < want_inputs && (in < 0 || (uint32_t)in >= count))
			return bmx_bad(c, "NODES", fat, "node[%u].inputs[%d] = %d, expected 0..%u",
				       i, k, in, count - 1);
		if (k < want_inputs && (uint32_t)in == i)
			return bmx_bad(c, "NODES", fat,
				       "node[%u].inputs[%d] is the node itself (cycle)", i, k);
	}
	if (n->op == BMX_OP_INPUT && i != c->info->input_node)
		return bmx_bad(c, "NODES", at,
			       "node[%u] is an INPUT node but MODEL.input_node is %u", i,
			       c->info->input_node);
	if (i == c->info->input_node && n->op != BMX_OP_INPUT)
		return bmx_bad(c, "NODES", at, "MODEL.input_node %u is a %s node, not INPUT", i,
			       op_name(n->op));
	if (n->op == BMX_OP_CONV2D || n->op == BMX_OP_LINEAR) {
		if (n->layer < 0 || (uint32_t)n->layer >= c->info->layer_count)
			return bmx_bad(c, "NODES", at + offsetof(struct bmx_node, layer),
				       "node[%u] (%s).layer %d, expected 0..%d", i, op_name(n->op),
				       n->layer, (int)c->info->layer_count - 1);
		if (layer_owner[n->layer] != UINT32_MAX)
			return bmx_bad(c, "NODES", at + offsetof(struct bmx_node, layer),
				       "node[%u].layer %d is already used by node[%u]", i, n->layer,
				       layer_owner[n->layer]);
		layer_owner[n->layer] = i;
	} else if (n->layer != -1) {
		return bmx_bad(c, "NODES", at + offsetof(struct bmx_node, layer),
			       "node[%u] (%s).layer %d, expected -1 for an op without weights", i,
			       op_name(n->op), n->layer);
	}
	for (size_t k = 0; k < sizeof(n->reserved); k++)
		if (n->reserved[k])
			return bmx_bad(c, "NODES", at + offsetof(struct bmx_node, reserved),
				       "node[%u] reserved bytes are not zero", i);
	return 0;
}

/* Kahn's algorithm over the input edges; a leftover node leads to a cycle. */
static int order_nodes(struct bmx_check *c, const struct bmx_node *nodes, uint32_t *order)
{
	uint32_t count = c->info->node_count, head = 0, tail = 0;
	uint32_t *pending = calloc(count, sizeof(*pending)); /* inputs not yet ordered */
	int r = 0;

	if (!pending)
		return -ENOMEM;
	for (uint32_t i = 0; i < count; i++) {
		pending[i] = nodes[i].n_inputs;
		if (!pending[i])
			order[tail++] = i;
	}
	while (head < tail) {
		uint32_t done = order[head++];

		/* O(n^2) over <= 4096 nodes, with no allocation of a consumer list. */
		for (uint32_t j = 0; j < count; j++)
			for (int k = 0; k < nodes[j].n_inputs; k++)
				if ((uint32_t)nodes[j].inputs[k] == done && --pending[j] == 0)
					order[tail++] = j;
	}
	if (tail < count) {
		uint32_t at = 0;

		while (!pending[at])
			at++;
		/* Walking back along still-pending inputs count times must end up on the cycle. */
		for (uint32_t step = 0; step < count; step++) {
			const struct bmx_node *n = &nodes[at];

			at = (uint32_t)(pending[n->inputs[0]] ? n->inputs[0] : n->inputs[1]);
		}
		r = bmx_bad(c, "NODES", node_at(c, at),
			    "node[%u] (%s) is on a cycle: the graph is not acyclic", at,
			    op_name(nodes[at].op));
	}
	free(pending);
	return r;
}

static int window_shape(struct bmx_check *c, const struct bmx_node *n, uint32_t i, struct shape in,
			struct shape *out)
{
	uint64_t at = node_at(c, i);

	if (n->kernel_h < 1 || n->kernel_w < 1 || n->kernel_h > BMX_MAX_KERNEL ||
	    n->kernel_w > BMX_MAX_KERNEL || n->stride_h < 1 || n->stride_w < 1 ||
	    n->stride_h > BMX_MAX_STRIDE || n->stride_w > BMX_MAX_STRIDE)
		return bmx_bad(
			c, "NODES", at + offsetof(struct bmx_node, kernel_h),
			"node[%u] (%s) kernel %ux%u stride %ux%u, expected kernel 1..%d, stride 1..%d",
			i, op_name(n->op), n->kernel_h, n->kernel_w, n->stride_h, n->stride_w,
			BMX_MAX_KERNEL, BMX_MAX_STRIDE);
	if (n->pad_top >= n->kernel_h || n->pad_bottom >= n->kernel_h ||
	    n->pad_left >= n->kernel_w || n->pad_right >= n->kernel_w)
		return bmx_bad(c, "NODES", at + offsetof(struct bmx_node, pad_top),
			       "node[%u] (%s) padding must be smaller than the kernel", i,
			       op_name(n->op));
	out->h = bmx_ref_out_dim(in.h, n->kernel_h, n->stride_h, n->pad_top, n->pad_bottom);
	out->w = bmx_ref_out_dim(in.w, n->kernel_w, n->stride_w, n->pad_left, n->pad_right);
	if (!out->h || !out->w)
		return bmx_bad(c, "NODES", at + offsetof(struct bmx_node, kernel_h),
			       "node[%u] (%s) kernel %ux%u does not fit its %ux%u padded input", i,
			       op_name(n->op), n->kernel_h, n->kernel_w, in.h, in.w);
	out->c = in.c;
	return 0;
}

/* The output shape of node I from its inputs' shapes; fills the layer view of weighted nodes. */
static int infer_shape(struct bmx_check *c, const struct bmx_node *nodes, uint32_t i,
		       struct shape *shapes)
{
	const struct bmx_node *n = &nodes[i];
	struct shape in = n->n_inputs ? shapes[n->inputs[0]] : (struct shape){ 0, 0, 0 };
	struct shape *out = &shapes[i];
	uint64_t at = node_at(c, i), k;
	int r;

	if (!has_window(n->op) && (n->kernel_h || n->kernel_w || n->stride_h || n->stride_w ||
				   n->pad_top || n->pad_left || n->pad_bottom || n->pad_right))
		return bmx_bad(c, "NODES", at + offsetof(struct bmx_node, kernel_h),
			       "node[%u] (%s) has kernel, stride or padding set", i,
			       op_name(n->op));
	if (n->op != BMX_OP_CONV2D && n->op != BMX_OP_LINEAR && n->groups)
		return bmx_bad(c, "NODES", at + offsetof(struct bmx_node, groups),
			       "node[%u] (%s).groups %u, expected 0", i, op_name(n->op), n->groups);
	switch (n->op) {
	case BMX_OP_INPUT:
		*out = (struct shape){ c->info->input_h, c->info->input_w, c->info->input_c };
		break;
	case BMX_OP_CONV2D:
		if ((r = window_shape(c, n, i, in, out)) < 0)
			return r;
		if (n->out_c < 1 || n->out_c > BMX_MAX_DIM || n->groups < 1 || in.c % n->groups ||
		    n->out_c % n->groups)
			return bmx_bad(
				c, "NODES", at + offsetof(struct bmx_node, groups),
				"node[%u] (CONV2D) groups %u must divide in_c %u and out_c %u", i,
				n->groups, in.c, n->out_c);
		out->c = n->out_c;
		k = (uint64_t)n->kernel_h * n->kernel_w * (in.c / n->groups);
		goto weighted;
	case BMX_OP_LINEAR:
		if (n->groups != 1 || n->out_c < 1 || n->out_c > BMX_MAX_DIM)
			return bmx_bad(
				c, "NODES", at + offsetof(struct bmx_node, groups),
				"node[%u] (LINEAR) groups %u, out_c %u: expected groups 1, out_c 1..%d",
				i, n->groups, n->out_c, BMX_MAX_DIM);
		*out = (struct shape){ 1, 1, n->out_c };
		k = (uint64_t)in.h * in.w * in.c;
		in = (struct shape){ 1, 1, (uint32_t)(k > UINT32_MAX ? UINT32_MAX : k) };
		goto weighted;
	case BMX_OP_ADD: {
		struct shape b = shapes[n->inputs[1]];

		if (in.h != b.h || in.w != b.w || in.c != b.c)
			return bmx_bad(
				c, "NODES", at + offsetof(struct bmx_node, inputs),
				"node[%u] (ADD) adds %ux%ux%u to %ux%ux%u: shapes must agree", i,
				in.h, in.w, in.c, b.h, b.w, b.c);
		*out = in;
		break;
	}
	case BMX_OP_MAXPOOL:
	case BMX_OP_AVGPOOL:
		if ((r = window_shape(c, n, i, in, out)) < 0)
			return r;
		break;
	case BMX_OP_GLOBAL_AVGPOOL:
		*out = (struct shape){ 1, 1, in.c };
		break;
	case BMX_OP_FLATTEN:
		*out = (struct shape){ 1, 1, in.h * in.w * in.c }; /* each <= 2^28 total, below */
		break;
	case BMX_OP_SOFTMAX:
		if (in.h != 1 || in.w != 1)
			return bmx_bad(c, "NODES", at,
				       "node[%u] (SOFTMAX) input is %ux%ux%u, expected 1x1xC", i,
				       in.h, in.w, in.c);
		*out = in;
		break;
	default: /* RELU, RELU6 */
		*out = in;
		break;
	}
	return 0;
weighted:
	if (k < 1 || k > BMX_MAX_REDUCTION)
		return bmx_bad(c, "NODES", at,
			       "node[%u] (%s) reduces over %llu inputs per output, at most %d", i,
			       op_name(n->op), (unsigned long long)k, BMX_MAX_REDUCTION);
	struct bmx_layer_view *v = &c->model->views[n->layer];

	v->node = n;
	v->in_h = in.h, v->in_w = in.w, v->in_c = in.c;
	v->out_h = out->h, v->out_w = out->w, v->out_c = out->c;
	v->reduction = (uint32_t)k;
	return 0;
}

int bmx_check_graph(struct bmx_check *c)
{
	const struct bmx_section *s = c->sections[BMX_SECTION_NODES];
	const struct bmx_node *nodes = (const void *)(c->base + s->offset);
	uint32_t count = c->info->node_count, layers = c->info->layer_count;
	struct bmx_model *m = c->model;
	uint32_t *owner = NULL;
	struct shape *shapes = NULL;
	int r = 0;

	if (s->size != (uint64_t)count * sizeof(struct bmx_node))
		return bmx_bad(c, "NODES",
			       c->section_at[BMX_SECTION_NODES] +
				       offsetof(struct bmx_section, size),
			       "size %llu, expected node_count %u x 64",
			       (unsigned long long)s->size, count);
	m->order = calloc(count, sizeof(*m->order));
	m->views = calloc(layers ? layers : 1, sizeof(*m->views));
	owner = malloc((layers ? layers : 1) * sizeof(*owner));
	shapes = calloc(count, sizeof(*shapes));
	if (!m->order || !m->views || !owner || !shapes) {
		r = -ENOMEM;
		goto out;
	}
	memset(owner, 0xff, (layers ? layers : 1) * sizeof(*owner));
	for (uint32_t i = 0; i < count && r == 0; i++)
		r = check_node_fields(c, nodes, i, owner);
	for (uint32_t l = 0; l < layers && r == 0; l++)
		if (owner[l] == UINT32_MAX)
			r = bmx_bad(c, "LAYERS", c->sections[BMX_SECTION_LAYERS]->offset,
				    "layer[%u] is used by no node", l);
	if (r == 0)
		r = order_nodes(c, nodes, m->order);
	for (uint32_t i = 0; i < count && r == 0; i++) {
		uint32_t id = m->order[i];
		const struct bmx_node *n = &nodes[id];
		struct shape *o = &shapes[id];

		r = infer_shape(c, nodes, id, shapes);
		if (r == 0 && (uint64_t)o->h * o->w * o->c > BMX_MAX_ELEMS)
			r = bmx_bad(c, "NODES", node_at(c, id),
				    "node[%u] output %ux%ux%u is absurdly large", id, o->h, o->w,
				    o->c);
		if (r == 0 && (n->out_h != o->h || n->out_w != o->w || n->out_c != o->c))
			r = bmx_bad(
				c, "NODES", node_at(c, id) + offsetof(struct bmx_node, out_h),
				"node[%u] (%s) declares output %ux%ux%u, its inputs give %ux%ux%u",
				id, op_name(n->op), n->out_h, n->out_w, n->out_c, o->h, o->w, o->c);
	}
	if (r == 0) {
		struct shape o = shapes[c->info->output_node];

		if ((uint64_t)o.h * o.w * o.c != c->info->output_size)
			r = bmx_bad(c, "MODEL",
				    c->sections[BMX_SECTION_MODEL]->offset +
					    offsetof(struct bmx_model_info, output_size),
				    "output_size %u, but output node[%u] produces %ux%ux%u",
				    c->info->output_size, c->info->output_node, o.h, o.w, o.c);
	}
	m->nodes = nodes;
	m->node_count = count;
out:
	free(owner);
	free(shapes);
	return r;
}
