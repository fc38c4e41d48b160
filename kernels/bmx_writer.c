/* SPDX-License-Identifier: MIT */
/*
 * bmx_writer.c — build a .bmx v1 file in memory: nodes and layers are collected with their
 * inferred shapes, then laid out as header, section table, MODEL, NODES, LAYERS and DATA, every
 * section and every DATA array on a 64-byte boundary, and the CRC-32 computed last.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bmx_writer.h"
#include "ops_ref.h"

struct wlayer {
	struct bmx_layer raw; /* arrays' offsets are filled in at finish */
	void *arrays[5];      /* weights, w_scale, a_step, tbn, sensitivity */
	uint64_t sizes[5];
};

struct bmx_writer {
	struct bmx_model_info info;
	struct bmx_node *nodes;
	uint32_t n_nodes, cap_nodes;
	struct wlayer *layers;
	uint32_t n_layers, cap_layers;
	int output;
	/* The optional sections, laid out as they go into the file (CASCADE, POLICY), or NULL. */
	uint8_t *extra[2];
	uint64_t extra_size[2];
};

struct bmx_writer *bmx_writer_new(const char *name, uint32_t in_h, uint32_t in_w, uint32_t in_c,
				  uint16_t bits_mask)
{
	struct bmx_writer *w = calloc(1, sizeof(*w));
	struct bmx_node_spec input = { .op = BMX_OP_INPUT, .inputs = { -1, -1 } };

	if (!w)
		return NULL;
	snprintf(w->info.name, sizeof(w->info.name), "%s", name);
	w->info.input_h = in_h;
	w->info.input_w = in_w;
	w->info.input_c = in_c;
	w->info.bits_mask = bits_mask;
	w->output = -1;
	if (bmx_writer_add(w, &input) != 0) {
		bmx_writer_free(w);
		return NULL;
	}
	return w;
}

void bmx_writer_free(struct bmx_writer *w)
{
	if (!w)
		return;
	for (uint32_t i = 0; i < w->n_layers; i++)
		for (int k = 0; k < 5; k++)
			free(w->layers[i].arrays[k]);
	free(w->layers);
	free(w->nodes);
	free(w->extra[0]);
	free(w->extra[1]);
	free(w);
}

static int grow(void **p, uint32_t *cap, uint32_t n, size_t elem)
{
	void *q;

	if (n < *cap)
		return 0;
	q = realloc(*p, (size_t)(*cap ? *cap * 2 : 16) * elem);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = *cap ? *cap * 2 : 16;
	return 0;
}

static int copy_array(struct wlayer *l, int k, const void *src, uint64_t size)
{
	l->sizes[k] = size;
	l->arrays[k] = calloc(1, size ? size : 1);
	if (!l->arrays[k])
		return -ENOMEM;
	if (src)
		memcpy(l->arrays[k], src, size);
	return 0;
}

/* The layer of a CONV2D/LINEAR node: its bits, TBN wiring and copied arrays. */
static int add_layer(struct bmx_writer *w, struct bmx_node *n, const struct bmx_node_spec *s,
		     uint64_t reduction)
{
	uint16_t mask = s->bits_mask ? s->bits_mask : w->info.bits_mask;
	uint64_t oc = n->out_c, nb = (uint64_t)__builtin_popcount(mask), rows = 1;
	uint8_t top = (uint8_t)(31 - __builtin_clz(mask));
	struct wlayer *l;
	int r;

	if (s->tbn_prev >= (int32_t)w->n_layers || s->tbn_prev < -1 || !mask)
		return -EINVAL;
	if (s->tbn_prev >= 0)
		rows = (uint64_t)__builtin_popcount(w->layers[s->tbn_prev].raw.bits_mask);
	if ((r = grow((void **)&w->layers, &w->cap_layers, w->n_layers, sizeof(*w->layers))) < 0)
		return r;
	l = &w->layers[w->n_layers];
	memset(l, 0, sizeof(*l));
	snprintf(l->raw.name, sizeof(l->raw.name), "%s", s->name ? s->name : "layer");
	l->raw.node = w->n_nodes;
	l->raw.tbn_prev = s->tbn_prev;
	l->raw.bits_mask = mask;
	l->raw.default_w_bits = s->default_w_bits ? s->default_w_bits : top;
	l->raw.default_a_bits = s->default_a_bits ? s->default_a_bits : top;
	l->raw.act_signed = s->act_signed;
	l->raw.macs = (uint64_t)n->out_h * n->out_w * oc * reduction;
	if ((r = copy_array(l, 0, s->weights, oc * reduction)) < 0 ||
	    (r = copy_array(l, 1, s->w_scale, oc * 4)) < 0 ||
	    (r = copy_array(l, 2, s->a_step, nb * 4)) < 0 ||
	    (r = copy_array(l, 3, s->tbn, rows * nb * 2 * oc * 4)) < 0 ||
	    (r = copy_array(l, 4, s->sensitivity, nb * 4)) < 0) {
		for (int k = 0; k < 5; k++)
			free(l->arrays[k]);
		return r;
	}
	n->layer = (int32_t)w->n_layers++;
	return 0;
}

int bmx_writer_add(struct bmx_writer *w, const struct bmx_node_spec *s)
{
	struct bmx_node n = { .op = s->op, .inputs = { -1, -1 }, .layer = -1 };
	const struct bmx_node *in = NULL, *in2 = NULL;
	uint64_t reduction = 0;
	int r;

	n.n_inputs = s->op == BMX_OP_INPUT ? 0 : s->op == BMX_OP_ADD ? 2 : 1;
	for (int k = 0; k < n.n_inputs; k++) {
		if (s->inputs[k] < 0 || (uint32_t)s->inputs[k] >= w->n_nodes)
			return -EINVAL;
		n.inputs[k] = s->inputs[k];
	}
	if (n.n_inputs)
		in = &w->nodes[s->inputs[0]];
	if (n.n_inputs == 2)
		in2 = &w->nodes[s->inputs[1]];
	if (s->op == BMX_OP_CONV2D || s->op == BMX_OP_MAXPOOL || s->op == BMX_OP_AVGPOOL) {
		n.kernel_h = s->kernel_h, n.kernel_w = s->kernel_w;
		n.stride_h = s->stride_h ? s->stride_h : 1,
		n.stride_w = s->stride_w ? s->stride_w : 1;
		n.pad_top = s->pad_top, n.pad_left = s->pad_left;
		n.pad_bottom = s->pad_bottom, n.pad_right = s->pad_right;
		n.out_h =
			bmx_ref_out_dim(in->out_h, n.kernel_h, n.stride_h, n.pad_top, n.pad_bottom);
		n.out_w =
			bmx_ref_out_dim(in->out_w, n.kernel_w, n.stride_w, n.pad_left, n.pad_right);
		n.out_c = in->out_c;
		if (!n.out_h || !n.out_w)
			return -EINVAL;
	}
	switch (s->op) {
	case BMX_OP_INPUT:
		n.out_h = w->info.input_h, n.out_w = w->info.input_w, n.out_c = w->info.input_c;
		break;
	case BMX_OP_CONV2D:
		n.groups = s->groups ? s->groups : 1;
		n.out_c = s->out_c;
		if (in->out_c % n.groups || n.out_c % n.groups)
			return -EINVAL;
		reduction = (uint64_t)n.kernel_h * n.kernel_w * (in->out_c / n.groups);
		break;
	case BMX_OP_LINEAR:
		n.groups = 1;
		reduction = (uint64_t)in->out_h * in->out_w * in->out_c;
		n.out_h = n.out_w = 1, n.out_c = s->out_c;
		break;
	case BMX_OP_ADD:
		if (in->out_h != in2->out_h || in->out_w != in2->out_w || in->out_c != in2->out_c)
			return -EINVAL;
		n.out_h = in->out_h, n.out_w = in->out_w, n.out_c = in->out_c;
		break;
	case BMX_OP_MAXPOOL:
	case BMX_OP_AVGPOOL:
		break;
	case BMX_OP_GLOBAL_AVGPOOL:
		n.out_h = n.out_w = 1, n.out_c = in->out_c;
		break;
	case BMX_OP_FLATTEN:
		n.out_h = n.out_w = 1, n.out_c = in->out_h * in->out_w * in->out_c;
		break;
	case BMX_OP_RELU:
	case BMX_OP_RELU6:
	case BMX_OP_SOFTMAX:
		n.out_h = in->out_h, n.out_w = in->out_w, n.out_c = in->out_c;
		break;
	default:
		return -EINVAL;
	}
	if ((r = grow((void **)&w->nodes, &w->cap_nodes, w->n_nodes, sizeof(*w->nodes))) < 0)
		return r;
	if ((s->op == BMX_OP_CONV2D || s->op == BMX_OP_LINEAR) &&
	    (r = add_layer(w, &n, s, reduction)) < 0)
		return r;
	w->nodes[w->n_nodes] = n;
	return (int)w->n_nodes++;
}

int bmx_writer_layer_of(const struct bmx_writer *w, int node)
{
	if (node < 0 || (uint32_t)node >= w->n_nodes || w->nodes[node].layer < 0)
		return -EINVAL;
	return w->nodes[node].layer;
}

int bmx_writer_shape(const struct bmx_writer *w, int node, uint32_t *h, uint32_t *wd, uint32_t *c)
{
	if (node < 0 || (uint32_t)node >= w->n_nodes)
		return -EINVAL;
	*h = w->nodes[node].out_h, *wd = w->nodes[node].out_w, *c = w->nodes[node].out_c;
	return 0;
}

int bmx_writer_reduction(const struct bmx_writer *w, int node)
{
	int l = bmx_writer_layer_of(w, node);

	if (l < 0)
		return l;
	return (int)(w->layers[l].sizes[0] / w->nodes[node].out_c);
}

int bmx_writer_set_output(struct bmx_writer *w, int node)
{
	if (node < 0 || (uint32_t)node >= w->n_nodes)
		return -EINVAL;
	w->output = node;
	return 0;
}

static uint64_t align64(uint64_t v)
{
	return (v + BMX_ALIGN - 1) & ~(uint64_t)(BMX_ALIGN - 1);
}

void bmx_file_fix_checksum(void *file, size_t size)
{
	struct bmx_file_header *h = file;

	h->checksum = bmx_file_checksum(file, size);
}

/* A copy of the optional section of TYPE (slot I) with its header first, BODY after it. */
static int set_extra(struct bmx_writer *w, int i, const void *head, size_t head_size,
		     const void *body, size_t body_size)
{
	uint8_t *p = calloc(1, head_size + body_size);

	if (!p)
		return -ENOMEM;
	memcpy(p, head, head_size);
	memcpy(p + head_size, body, body_size);
	free(w->extra[i]);
	w->extra[i] = p;
	w->extra_size[i] = head_size + body_size;
	return 0;
}

int bmx_writer_set_cascade(struct bmx_writer *w, const struct bmx_cascade_spec *s)
{
	struct bmx_cascade_info ci = {
		.n_configs = s->n_configs,
		.layer_count = w->n_layers,
		.confidence = s->confidence,
		.accuracy_target = s->accuracy_target,
		.validation_accuracy = s->validation_accuracy,
	};

	if (s->n_configs < 2 || s->n_configs > BMX_MAX_ADAPTIVE_CONFIGS)
		return -EINVAL;
	memcpy(ci.thresholds, s->thresholds, sizeof(float) * (s->n_configs - 1));
	return set_extra(w, 0, &ci, sizeof(ci), s->bits, (size_t)s->n_configs * w->n_layers);
}

int bmx_writer_set_policy(struct bmx_writer *w, const struct bmx_policy_spec *s)
{
	struct bmx_policy_info pi = {
		.n_configs = s->n_configs,
		.layer_count = w->n_layers,
		.feature_node = s->feature_node,
		.n_features = s->n_features,
		.threshold = s->threshold,
		.accuracy_target = s->accuracy_target,
		.validation_accuracy = s->validation_accuracy,
	};
	size_t bits = ((size_t)s->n_configs * w->n_layers + 3) & ~(size_t)3;
	size_t nw = (size_t)(s->n_configs - 1) * s->n_features, nb = s->n_configs - 1;
	uint8_t *body;
	int r;

	if (s->n_configs < 2 || s->n_configs > BMX_MAX_ADAPTIVE_CONFIGS || s->n_features > 4096)
		return -EINVAL;
	body = calloc(1, bits + 4 * (nw + nb));
	if (!body)
		return -ENOMEM;
	memcpy(body, s->bits, (size_t)s->n_configs * w->n_layers);
	memcpy(body + bits, s->weights, 4 * nw);
	memcpy(body + bits + 4 * nw, s->bias, 4 * nb);
	r = set_extra(w, 1, &pi, sizeof(pi), body, bits + 4 * (nw + nb));
	free(body);
	return r;
}

int bmx_writer_finish(struct bmx_writer *w, void **out, size_t *size)
{
	const uint32_t n_extra = (w->extra[0] != NULL) + (w->extra[1] != NULL);
	uint64_t model_off = 64 + (4 + n_extra) * sizeof(struct bmx_section), nodes_off, layers_off,
		 data_off, extra_off, data_size = 0, total;
	uint32_t output = w->output >= 0 ? (uint32_t)w->output : w->n_nodes - 1;
	struct bmx_file_header *h;
	struct bmx_section *tab;
	uint8_t *f;

	model_off = align64(model_off);
	nodes_off = align64(model_off + sizeof(struct bmx_model_info));
	layers_off = align64(nodes_off + (uint64_t)w->n_nodes * sizeof(struct bmx_node));
	data_off = align64(layers_off + (uint64_t)w->n_layers * sizeof(struct bmx_layer));
	for (uint32_t i = 0; i < w->n_layers; i++)
		for (int k = 0; k < 5; k++)
			data_size = align64(data_size) + w->layers[i].sizes[k];
	extra_off = data_off + align64(data_size);
	total = extra_off;
	for (int i = 0; i < 2; i++)
		if (w->extra[i])
			total += align64(w->extra_size[i]);
	f = aligned_alloc(BMX_ALIGN, total);
	if (!f)
		return -ENOMEM;
	memset(f, 0, total);
	h = (void *)f;
	memcpy(h->magic, BMX_MAGIC, BMX_MAGIC_LEN);
	h->version_major = BMX_VERSION_MAJOR;
	h->version_minor = BMX_VERSION_MINOR;
	h->header_size = sizeof(*h);
	h->file_size = total;
	h->section_table_offset = 64;
	h->section_count = 4 + n_extra;
	tab = (void *)(f + 64);
	tab[0] = (struct bmx_section){ BMX_SECTION_MODEL, 0, model_off,
				       sizeof(struct bmx_model_info), 0 };
	tab[1] = (struct bmx_section){ BMX_SECTION_NODES, 0, nodes_off,
				       (uint64_t)w->n_nodes * sizeof(struct bmx_node), 0 };
	tab[2] = (struct bmx_section){ BMX_SECTION_LAYERS, 0, layers_off,
				       (uint64_t)w->n_layers * sizeof(struct bmx_layer), 0 };
	tab[3] = (struct bmx_section){ BMX_SECTION_DATA, 0, data_off, align64(data_size), 0 };
	for (int i = 0, t = 4; i < 2; i++) {
		if (!w->extra[i])
			continue;
		tab[t++] = (struct bmx_section){ i == 0 ? BMX_SECTION_CASCADE : BMX_SECTION_POLICY,
						 BMX_SECTION_FLAG_OPTIONAL, extra_off,
						 w->extra_size[i], 0 };
		memcpy(f + extra_off, w->extra[i], w->extra_size[i]);
		extra_off += align64(w->extra_size[i]);
	}
	w->info.node_count = w->n_nodes;
	w->info.layer_count = w->n_layers;
	w->info.input_node = 0;
	w->info.output_node = output;
	w->info.output_size =
		w->nodes[output].out_h * w->nodes[output].out_w * w->nodes[output].out_c;
	memcpy(f + model_off, &w->info, sizeof(w->info));
	memcpy(f + nodes_off, w->nodes, (size_t)w->n_nodes * sizeof(struct bmx_node));
	data_size = 0;
	for (uint32_t i = 0; i < w->n_layers; i++) {
		struct bmx_layer raw = w->layers[i].raw;
		struct bmx_array *arrays[5] = { &raw.weights, &raw.w_scale, &raw.a_step, &raw.tbn,
						&raw.sensitivity };

		for (int k = 0; k < 5; k++) {
			data_size = align64(data_size);
			*arrays[k] = (struct bmx_array){ data_size, w->layers[i].sizes[k] };
			memcpy(f + data_off + data_size, w->layers[i].arrays[k],
			       w->layers[i].sizes[k]);
			data_size += w->layers[i].sizes[k];
		}
		memcpy(f + layers_off + (uint64_t)i * sizeof(raw), &raw, sizeof(raw));
	}
	bmx_file_fix_checksum(f, total);
	*out = f;
	*size = total;
	return 0;
}

int bmx_writer_write_file(struct bmx_writer *w, const char *path)
{
	char tmp[4096];
	void *buf;
	size_t size;
	FILE *f;
	int r;

	r = bmx_writer_finish(w, &buf, &size);
	if (r < 0)
		return r;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "wb");
	if (!f) {
		r = -errno;
		free(buf);
		return r;
	}
	r = fwrite(buf, 1, size, f) == size ? 0 : -EIO;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	free(buf);
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}
