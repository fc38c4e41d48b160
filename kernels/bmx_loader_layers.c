/* SPDX-License-Identifier: MIT */
/*
 * bmx_loader_layers.c — the loader's checks of the LAYERS section: bit-widths, the TBN wiring,
 * MACs, every DATA array (aligned, inside DATA, exactly the size its shape needs, overlapping
 * no other array) and every value the engine divides by or multiplies with.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bmx_loader_internal.h"

struct array_span {
	uint64_t start, end;
	uint32_t layer;
	const char *field;
};

static int cmp_array_span(const void *a, const void *b)
{
	const struct array_span *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static uint64_t layer_at(const struct bmx_check *c, uint32_t i)
{
	return c->sections[BMX_SECTION_LAYERS]->offset + (uint64_t)i * sizeof(struct bmx_layer);
}

/* Check one array of layer I and return a pointer to it in *out. */
static int check_array(struct bmx_check *c, uint32_t i, const struct bmx_array *a,
		       const char *field, size_t field_off, uint64_t want, const void **out,
		       struct array_span *span)
{
	const struct bmx_section *data = c->sections[BMX_SECTION_DATA];
	const char *name = c->model->layers[i].name;
	uint64_t at = layer_at(c, i) + field_off, end;

	if (a->offset % BMX_ALIGN)
		return bmx_bad(c, "LAYERS", at,
			       "layer[%u] \"%s\".%s.offset %llu is not a multiple of %d", i, name,
			       field, (unsigned long long)a->offset, BMX_ALIGN);
	if (a->size != want)
		return bmx_bad(c, "LAYERS", at + 8,
			       "layer[%u] \"%s\".%s.size %llu, its shape needs %llu", i, name,
			       field, (unsigned long long)a->size, (unsigned long long)want);
	if (__builtin_add_overflow(a->offset, a->size, &end) || end > data->size)
		return bmx_bad(
			c, "LAYERS", at,
			"layer[%u] \"%s\".%s ends at %llu, past the end of DATA (%llu bytes)", i,
			name, field, (unsigned long long)(a->offset + a->size),
			(unsigned long long)data->size);
	*out = c->base + data->offset + a->offset;
	*span = (struct array_span){ a->offset, end, i, field };
	return 0;
}

static int check_floats(struct bmx_check *c, uint32_t i, const float *v, uint64_t n,
			const char *field, size_t field_off, float min, bool min_exclusive)
{
	for (uint64_t k = 0; k < n; k++)
		if (!isfinite(v[k]) || v[k] < min || (min_exclusive && v[k] == min))
			return bmx_bad(
				c, "DATA", (uint64_t)((const uint8_t *)&v[k] - c->base),
				"layer[%u] \"%s\".%s[%llu] is %g, expected a finite value %s %g "
				"(declared at LAYERS byte 0x%llx)",
				i, c->model->layers[i].name, field, (unsigned long long)k,
				(double)v[k], min_exclusive ? ">" : ">=", (double)min,
				(unsigned long long)(layer_at(c, i) + field_off));
	return 0;
}

static int check_layer_fields(struct bmx_check *c, uint32_t i)
{
	const struct bmx_layer *l = &c->model->layers[i];
	struct bmx_layer_view *v = &c->model->views[i];
	uint64_t at = layer_at(c, i), macs;
	uint16_t mask = l->bits_mask;

	if (!bmx_name_ok(l->name, sizeof(l->name)))
		return bmx_bad(c, "LAYERS", at,
			       "layer[%u].name is empty, unterminated or not [A-Za-z0-9._-]", i);
	if (l->node >= c->info->node_count || c->model->nodes[l->node].layer != (int32_t)i)
		return bmx_bad(
			c, "LAYERS", at + offsetof(struct bmx_layer, node),
			"layer[%u] \"%s\".node %u does not point back at the node that uses it", i,
			l->name, l->node);
	if (!mask || (mask & ~c->info->bits_mask))
		return bmx_bad(
			c, "LAYERS", at + offsetof(struct bmx_layer, bits_mask),
			"layer[%u] \"%s\".bits_mask 0x%x, expected a non-empty subset of the model's 0x%x",
			i, l->name, mask, c->info->bits_mask);
	if (l->default_w_bits > BMX_MAX_BITS || !(mask & (1u << l->default_w_bits)) ||
	    l->default_a_bits > BMX_MAX_BITS || !(mask & (1u << l->default_a_bits)))
		return bmx_bad(
			c, "LAYERS", at + offsetof(struct bmx_layer, default_w_bits),
			"layer[%u] \"%s\" default bits w%u a%u are not in its bits_mask 0x%x", i,
			l->name, l->default_w_bits, l->default_a_bits, mask);
	if (l->act_signed > 1 || l->reserved0[0] || l->reserved0[1] || l->reserved0[2])
		return bmx_bad(
			c, "LAYERS", at + offsetof(struct bmx_layer, act_signed),
			"layer[%u] \"%s\".act_signed %u (expected 0 or 1) or reserved bytes set", i,
			l->name, l->act_signed);
	for (size_t k = 0; k < sizeof(l->reserved); k++)
		if (l->reserved[k])
			return bmx_bad(c, "LAYERS", at + offsetof(struct bmx_layer, reserved),
				       "layer[%u] reserved bytes are not zero", i);
	if (l->tbn_prev != -1 &&
	    (l->tbn_prev < 0 || (uint32_t)l->tbn_prev >= c->info->layer_count ||
	     (uint32_t)l->tbn_prev == i))
		return bmx_bad(c, "LAYERS", at + offsetof(struct bmx_layer, tbn_prev),
			       "layer[%u] \"%s\".tbn_prev %d, expected -1 or another layer's index",
			       i, l->name, l->tbn_prev);
	macs = (uint64_t)v->out_h * v->out_w * v->out_c * v->reduction;
	if (l->macs != macs)
		return bmx_bad(c, "LAYERS", at + offsetof(struct bmx_layer, macs),
			       "layer[%u] \"%s\".macs %llu, its shape gives %llu", i, l->name,
			       (unsigned long long)l->macs, (unsigned long long)macs);
	v->raw = l;
	v->nbits = 0;
	memset(v->bit_index, -1, sizeof(v->bit_index));
	for (unsigned b = BMX_MIN_BITS; b <= BMX_MAX_BITS; b++)
		if (mask & (1u << b)) {
			v->bit_index[b] = (int8_t)v->nbits;
			v->bits[v->nbits++] = (uint8_t)b;
		}
	c->model->total_macs += macs;
	return 0;
}

/* The arrays of layer I; SPANS receives five entries. */
static int check_layer_arrays(struct bmx_check *c, uint32_t i, struct array_span *spans)
{
	const struct bmx_layer *l = &c->model->layers[i];
	struct bmx_layer_view *v = &c->model->views[i];
	uint64_t oc = v->out_c, nb = v->nbits;
	uint32_t rows;
	const void *p;
	int r;

	rows = l->tbn_prev < 0 ? 1 : __builtin_popcount(c->model->layers[l->tbn_prev].bits_mask);
	v->tbn_rows = rows;
#define ARRAY(f, want, k) \
	check_array(c, i, &l->f, #f, offsetof(struct bmx_layer, f), (want), &p, &spans[k])
	if ((r = ARRAY(weights, oc * v->reduction, 0)) < 0)
		return r;
	v->weights = p;
	if ((r = ARRAY(w_scale, oc * 4, 1)) < 0)
		return r;
	v->w_scale = p;
	if ((r = ARRAY(a_step, nb * 4, 2)) < 0)
		return r;
	v->a_step = p;
	if ((r = ARRAY(tbn, (uint64_t)rows * nb * 2 * oc * 4, 3)) < 0)
		return r;
	v->tbn = p;
	if ((r = ARRAY(sensitivity, nb * 4, 4)) < 0)
		return r;
	v->sensitivity = p;
#undef ARRAY
	return 0;
}

/* The values the engine divides by or multiplies with, once every array is known to be sound. */
static int check_layer_values(struct bmx_check *c, uint32_t i)
{
	const struct bmx_layer_view *v = &c->model->views[i];
	uint64_t oc = v->out_c, nb = v->nbits;
	uint32_t rows = v->tbn_rows;
	int r;

	if ((r = check_floats(c, i, v->w_scale, oc, "w_scale", offsetof(struct bmx_layer, w_scale),
			      0, true)) < 0 ||
	    (r = check_floats(c, i, v->a_step, nb, "a_step", offsetof(struct bmx_layer, a_step), 0,
			      true)) < 0 ||
	    (r = check_floats(c, i, v->tbn, (uint64_t)rows * nb * 2 * oc, "tbn",
			      offsetof(struct bmx_layer, tbn), -INFINITY, false)) < 0 ||
	    (r = check_floats(c, i, v->sensitivity, nb, "sensitivity",
			      offsetof(struct bmx_layer, sensitivity), 0, false)) < 0)
		return r;
	return 0;
}

int bmx_check_layers(struct bmx_check *c)
{
	const struct bmx_section *s = c->sections[BMX_SECTION_LAYERS];
	uint32_t n = c->info->layer_count;
	struct array_span *spans;
	int r = 0;

	if (s->size != (uint64_t)n * sizeof(struct bmx_layer))
		return bmx_bad(c, "LAYERS",
			       c->section_at[BMX_SECTION_LAYERS] +
				       offsetof(struct bmx_section, size),
			       "size %llu, expected layer_count %u x %zu",
			       (unsigned long long)s->size, n, sizeof(struct bmx_layer));
	c->model->layers = (const void *)(c->base + s->offset);
	spans = calloc((size_t)n * 5 + 1, sizeof(*spans));
	if (!spans)
		return -ENOMEM;
	/* Fields first for every layer: the TBN row count needs tbn_prev's mask checked. */
	for (uint32_t i = 0; i < n && r == 0; i++)
		r = check_layer_fields(c, i);
	for (uint32_t i = 0; i < n && r == 0; i++)
		r = check_layer_arrays(c, i, &spans[(size_t)i * 5]);
	if (r == 0) {
		qsort(spans, (size_t)n * 5, sizeof(*spans), cmp_array_span);
		for (size_t k = 1; k < (size_t)n * 5 && r == 0; k++)
			if (spans[k].start < spans[k - 1].end)
				r = bmx_bad(
					c, "LAYERS", layer_at(c, spans[k].layer),
					"layer[%u].%s [%llu, %llu) overlaps layer[%u].%s in DATA",
					spans[k].layer, spans[k].field,
					(unsigned long long)spans[k].start,
					(unsigned long long)spans[k].end, spans[k - 1].layer,
					spans[k - 1].field);
	}
	for (uint32_t i = 0; i < n && r == 0; i++)
		r = check_layer_values(c, i);
	free(spans);
	if (r < 0)
		return r;
	c->model->base = c->base;
	c->model->size = c->size;
	c->model->header = c->header;
	c->model->info = c->info;
	c->model->data = c->base + c->sections[BMX_SECTION_DATA]->offset;
	c->model->data_size = c->sections[BMX_SECTION_DATA]->size;
	c->model->layer_count = n;
	return 0;
}
