/* SPDX-License-Identifier: MIT */
/*
 * bmx_pack.c — turn a trained model into a .bmx: reads a line-based manifest (the graph, one
 * node per line) and a raw little-endian blob of the layers' arrays, both written by the
 * trainer's exporter (tools/train/export.py), and lays them out with kernels/bmx_writer.c, so
 * that the C writer stays the one implementation of the file format. The result is validated
 * by the loader before it is renamed into place.
 *
 * Manifest, one item per line ('#' starts a comment):
 *   bmx-pack 1
 *   model NAME H W C BITS_MASK
 *   OP key=value ...          OP: conv2d linear add maxpool avgpool global_avgpool relu relu6
 *                             flatten softmax; keys: in=A[,B] out_c k stride pad groups name
 *                             mask tbn_prev (a layer name, or -) signed default_w default_a
 *   output NODE
 * Node 0 is the input; the Nth node line is node N. The blob holds, per layer in order,
 * weights (int8, OHWI), w_scale, a_step, tbn, sensitivity (float32), each exactly its size.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bmx_model.h"
#include "bmx_pack.h"
#include "bmx_writer.h"

#define MAX_LAYER_NAMES 1024

struct pack {
	const char *path; /* manifest, for messages */
	unsigned line;
	FILE *blob;
	const char *blob_path;
	struct bmx_writer *w;
	char *layer_names[MAX_LAYER_NAMES];
	uint16_t layer_masks[MAX_LAYER_NAMES];
	int n_layers;
	int output; /* node, or -1: the last */
	int line_seen_header;
	int n_nodes; /* including the input */
};

static const char *const op_names[] = { NULL,	"input",   "conv2d",  "linear",
					"add",	"maxpool", "avgpool", "global_avgpool",
					"relu", "relu6",   "flatten", "softmax" };

static int fail(const struct pack *p, const char *what)
{
	fprintf(stderr, "bmx-pack: %s:%u: %s\n", p->path, p->line, what);
	return -EINVAL;
}

static int op_of(const char *name)
{
	for (int i = BMX_OP_CONV2D; i < BMX_OP_MAX_; i++)
		if (strcmp(name, op_names[i]) == 0)
			return i;
	return -1;
}

static int layer_by_name(const struct pack *p, const char *name)
{
	for (int i = 0; i < p->n_layers; i++)
		if (strcmp(p->layer_names[i], name) == 0)
			return i;
	return -1;
}

static int parse_uint(const char *v, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(v, &end, 0);
	return (errno || end == v || *end || *out > max) ? -EINVAL : 0;
}

/* One key=value of a node line into SPEC; names (name, tbn_prev) are resolved by the caller. */
static int node_key(struct pack *p, struct bmx_node_spec *s, const char *key, const char *val)
{
	unsigned long u = 0;
	int r = 0;

	if (strcmp(key, "in") == 0) {
		char *end;
		long a = strtol(val, &end, 10), b = -1;

		if (*end == ',')
			b = strtol(end + 1, &end, 10);
		if (*end || a < 0 || a >= p->n_nodes || b >= p->n_nodes)
			return fail(
				p,
				"in: expected one or two earlier node numbers, as in=3 or in=6,3");
		s->inputs[0] = (int32_t)a;
		s->inputs[1] = (int32_t)b;
		return 0;
	}
	if (strcmp(key, "name") == 0 || strcmp(key, "tbn_prev") == 0)
		return 0;
	if (strcmp(key, "out_c") == 0 && !(r = parse_uint(val, 65536, &u)))
		s->out_c = (uint32_t)u;
	else if (strcmp(key, "k") == 0 && !(r = parse_uint(val, 64, &u)))
		s->kernel_h = s->kernel_w = (uint16_t)u;
	else if (strcmp(key, "stride") == 0 && !(r = parse_uint(val, 64, &u)))
		s->stride_h = s->stride_w = (uint16_t)u;
	else if (strcmp(key, "pad") == 0 && !(r = parse_uint(val, 63, &u)))
		s->pad_top = s->pad_left = s->pad_bottom = s->pad_right = (uint16_t)u;
	else if (strcmp(key, "groups") == 0 && !(r = parse_uint(val, 65536, &u)))
		s->groups = (uint32_t)u;
	else if (strcmp(key, "mask") == 0 && !(r = parse_uint(val, 0x1fc, &u)))
		s->bits_mask = (uint16_t)u;
	else if (strcmp(key, "signed") == 0 && !(r = parse_uint(val, 1, &u)))
		s->act_signed = (uint8_t)u;
	else if (strcmp(key, "default_w") == 0 && !(r = parse_uint(val, 8, &u)))
		s->default_w_bits = (uint8_t)u;
	else if (strcmp(key, "default_a") == 0 && !(r = parse_uint(val, 8, &u)))
		s->default_a_bits = (uint8_t)u;
	else if (!r)
		return fail(p,
			    "unknown key (expected in, out_c, k, stride, pad, groups, name, mask, "
			    "tbn_prev, signed, default_w, default_a)");
	return r ? fail(p, "value out of range or not a number") : 0;
}

/* Read COUNT elements of SIZE bytes from the blob into a new buffer. */
static void *read_array(struct pack *p, size_t count, size_t size, const char *what)
{
	void *buf = malloc(count > 0 ? count * size : 1);

	if (buf && fread(buf, size, count, p->blob) != count) {
		fprintf(stderr, "bmx-pack: %s: ends inside layer %d's %s (%zu bytes expected)\n",
			p->blob_path, p->n_layers, what, count * size);
		free(buf);
		return NULL;
	}
	return buf;
}

/* The arrays of the layer being added, from the blob (shapes from the writer's inference). */
static int add_layer_node(struct pack *p, struct bmx_node_spec *s)
{
	uint32_t h, w, c;
	uint64_t k, nb = (uint64_t)__builtin_popcount(s->bits_mask), rows = 1;
	void *arr[5] = { NULL };
	int r = -EINVAL;

	if (!nb)
		return fail(p, "a conv2d or linear node needs mask=BITS_MASK");
	if (bmx_writer_shape(p->w, s->inputs[0], &h, &w, &c) < 0)
		return fail(p, "input node has no shape");
	if (s->op == BMX_OP_CONV2D)
		k = (uint64_t)s->kernel_h * s->kernel_w * (c / (s->groups ? s->groups : 1));
	else
		k = (uint64_t)h * w * c;
	if (s->tbn_prev >= 0)
		rows = (uint64_t)__builtin_popcount(p->layer_masks[s->tbn_prev]);
	if (!(arr[0] = read_array(p, s->out_c * k, 1, "weights")) ||
	    !(arr[1] = read_array(p, s->out_c, 4, "w_scale")) ||
	    !(arr[2] = read_array(p, nb, 4, "a_step")) ||
	    !(arr[3] = read_array(p, rows * nb * 2 * s->out_c, 4, "tbn")) ||
	    !(arr[4] = read_array(p, nb, 4, "sensitivity")))
		goto out;
	s->weights = arr[0];
	s->w_scale = arr[1];
	s->a_step = arr[2];
	s->tbn = arr[3];
	s->sensitivity = arr[4];
	r = bmx_writer_add(p->w, s);
	if (r < 0)
		fail(p, "the writer refused this layer (shapes or bits do not fit)");
out:
	for (int i = 0; i < 5; i++)
		free(arr[i]);
	return r;
}

static int node_line(struct pack *p, char *line)
{
	struct bmx_node_spec s = { .inputs = { -1, -1 }, .tbn_prev = -1 };
	char *save = NULL, *tok = strtok_r(line, " \t", &save);
	const char *name = NULL, *prev = NULL;
	int op = op_of(tok), r;

	if (op < 0)
		return fail(p, "unknown op (expected conv2d, linear, add, maxpool, avgpool, "
			       "global_avgpool, relu, relu6, flatten, softmax)");
	s.op = (uint16_t)op;
	while ((tok = strtok_r(NULL, " \t", &save))) {
		char *eq = strchr(tok, '=');

		if (!eq)
			return fail(p, "expected key=value");
		*eq = '\0';
		if (strcmp(tok, "name") == 0)
			name = eq + 1;
		else if (strcmp(tok, "tbn_prev") == 0)
			prev = eq + 1;
		if ((r = node_key(p, &s, tok, eq + 1)) < 0)
			return r;
	}
	if (op == BMX_OP_CONV2D || op == BMX_OP_LINEAR) {
		if (!name || p->n_layers == MAX_LAYER_NAMES)
			return fail(p, "a conv2d or linear node needs name=NAME");
		if (prev && strcmp(prev, "-") != 0 && (s.tbn_prev = layer_by_name(p, prev)) < 0)
			return fail(p, "tbn_prev names no earlier layer");
		s.name = name;
		r = add_layer_node(p, &s);
		p->layer_masks[p->n_layers] = s.bits_mask;
		if (r >= 0 && !(p->layer_names[p->n_layers++] = strdup(name)))
			r = -ENOMEM;
	} else if ((r = bmx_writer_add(p->w, &s)) < 0) {
		fail(p, "the writer refused this node (inputs or shapes do not fit)");
	}
	if (r >= 0)
		p->n_nodes++;
	return r < 0 ? r : 0;
}

/* The header lines (bmx-pack, model) and the output line; everything else is a node. */
static int pack_line(struct pack *p, char *line)
{
	char name[64];
	unsigned h, w, c, mask, ver;
	int node;

	line[strcspn(line, "#\r\n")] = '\0';
	if (strspn(line, " \t") == strlen(line))
		return 0;
	if (p->line_seen_header == 0) {
		if (sscanf(line, "bmx-pack %u", &ver) != 1 || ver != 1)
			return fail(p, "expected the first line \"bmx-pack 1\"");
		p->line_seen_header = 1;
		return 0;
	}
	if (!p->w) {
		if (sscanf(line, "model %47s %u %u %u %i", name, &h, &w, &c, &mask) != 5)
			return fail(p, "expected \"model NAME H W C BITS_MASK\"");
		p->w = bmx_writer_new(name, h, w, c, (uint16_t)mask);
		p->n_nodes = 1;
		return p->w ? 0 : -ENOMEM;
	}
	if (sscanf(line, "output %d", &node) == 1) {
		if (node < 0 || node >= p->n_nodes)
			return fail(p, "output: expected a node number");
		p->output = node;
		return 0;
	}
	return node_line(p, line);
}

static int pack(struct pack *p, const char *manifest, const char *out, const char *adaptive)
{
	char line[1024], tmp[4096];
	FILE *f = fopen(manifest, "r");
	struct bmx_model *m = NULL;
	struct bmx_error err;
	int r = 0;

	if (!f) {
		fprintf(stderr, "bmx-pack: %s: %s\n", manifest, strerror(errno));
		return -errno;
	}
	while (r >= 0 && fgets(line, sizeof(line), f)) {
		p->line++;
		r = pack_line(p, line);
	}
	fclose(f);
	if (r >= 0 && !p->w)
		r = fail(p, "no \"model\" line");
	if (r >= 0 && fgetc(p->blob) != EOF) {
		fprintf(stderr, "bmx-pack: %s: bytes left after the last layer's arrays\n",
			p->blob_path);
		r = -EINVAL;
	}
	if (r >= 0 && p->output >= 0)
		r = bmx_writer_set_output(p->w, p->output);
	if (r >= 0 && adaptive)
		r = pack_adaptive(p->w, (uint32_t)p->n_layers, adaptive);
	snprintf(tmp, sizeof(tmp), "%s.tmp", out);
	if (r >= 0 && (r = bmx_writer_write_file(p->w, tmp)) < 0)
		fprintf(stderr, "bmx-pack: writing %s: %s\n", tmp, strerror(-r));
	if (r >= 0 && (r = bmx_model_load_file(tmp, &m, &err)) < 0)
		fprintf(stderr, "bmx-pack: the written model does not load: %s\n", err.msg);
	bmx_model_free(m);
	if (r >= 0 && rename(tmp, out) < 0) {
		r = -errno;
		fprintf(stderr, "bmx-pack: %s: %s\n", out, strerror(errno));
	}
	if (r < 0)
		unlink(tmp);
	return r;
}

int main(int argc, char **argv)
{
	struct pack p = { .output = -1 };
	int r;

	if ((argc != 5 && (argc != 7 || strcmp(argv[5], "--adaptive") != 0)) ||
	    strcmp(argv[3], "-o") != 0) {
		fputs("Usage: bmx-pack MANIFEST BLOB -o OUT.bmx [--adaptive SPEC]\n"
		      "Lay out a trained model (tools/train/export.py writes MANIFEST and BLOB); SPEC\n"
		      "adds the cascade and policy sections (tools/train/adaptive.py writes it).\n",
		      argc == 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
		return argc == 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
	}
	p.path = argv[1];
	p.blob_path = argv[2];
	p.blob = fopen(argv[2], "rb");
	if (!p.blob) {
		fprintf(stderr, "bmx-pack: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	r = pack(&p, argv[1], argv[4], argc == 7 ? argv[6] : NULL);
	fclose(p.blob);
	bmx_writer_free(p.w);
	for (int i = 0; i < p.n_layers; i++)
		free(p.layer_names[i]);
	return r < 0 ? 1 : 0;
}
