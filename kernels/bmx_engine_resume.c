/* SPDX-License-Identifier: MIT */
/*
 * bmx_engine_resume.c — prefix reuse (bmx_engine.h): where two operating points first compute
 * differently, which values of a run are alive across a position of the execution order, and
 * saving them out of the liveness-shared scratch and restoring any subset of samples as a new
 * batch, so that a run resumed there computes exactly what a whole run computes.
 */
#include <stdbool.h>
#include <string.h>

#include "bmx_engine_internal.h"

const float *bmx_engine_value(const struct bmx_engine *e, uint32_t batch, const void *scratch,
			      uint32_t node)
{
	if (node >= e->model->node_count || e->fused[node] == FUSED_RELU_OUT)
		return NULL;
	return (const float *)scratch + e->slot_offset[e->node_slot[node]] * batch;
}

uint32_t bmx_engine_first_difference(const struct bmx_engine *e, const struct bmx_layer_bits *a,
				     const struct bmx_layer_bits *b)
{
	const struct bmx_model *m = e->model;

	for (uint32_t i = 0; i < m->node_count; i++) {
		const int32_t l = m->nodes[m->order[i]].layer;
		int32_t prev;

		if (l < 0)
			continue;
		if (a[l].w_bits != b[l].w_bits || a[l].a_bits != b[l].a_bits)
			return i;
		prev = m->views[l].raw->tbn_prev; /* the TBN row follows another layer's bits */
		if (prev >= 0 && a[prev].w_bits != b[prev].w_bits)
			return i;
	}
	return m->node_count;
}

/*
 * Whether node ID's value was written before position POS and is read at or after it. A ReLU
 * fused into the layer before it is written one position early; the fused layer's own value is
 * never written (nothing but that ReLU reads it).
 */
static bool live_across(const struct bmx_engine *e, uint32_t id, uint32_t pos)
{
	uint32_t written = e->model->position[id];

	if (e->fused[id] == FUSED_RELU_OUT)
		return false;
	if (e->fused[id] == FUSED_SKIP)
		written--;
	return written < pos && e->last_use[id] >= pos;
}

uint64_t bmx_engine_live_size(const struct bmx_engine *e, uint32_t pos)
{
	uint64_t n = 0;

	for (uint32_t id = 0; id < e->model->node_count; id++)
		if (live_across(e, id, pos))
			n += node_elems(&e->model->nodes[id]);
	return n;
}

void bmx_engine_save_live(const struct bmx_engine *e, uint32_t pos, uint32_t batch,
			  const void *scratch, float *saved)
{
	for (uint32_t id = 0; id < e->model->node_count; id++) {
		const uint64_t n = node_elems(&e->model->nodes[id]) * batch;

		if (!live_across(e, id, pos))
			continue;
		memcpy(saved, bmx_engine_value(e, batch, scratch, id), n * sizeof(float));
		saved += n;
	}
}

void bmx_engine_restore_live(const struct bmx_engine *e, uint32_t pos, const float *saved,
			     uint32_t saved_batch, const uint32_t *samples, uint32_t n,
			     void *scratch)
{
	for (uint32_t id = 0; id < e->model->node_count; id++) {
		const uint64_t elems = node_elems(&e->model->nodes[id]);
		float *dst;

		if (!live_across(e, id, pos))
			continue;
		dst = (float *)scratch + e->slot_offset[e->node_slot[id]] * n;
		for (uint32_t j = 0; j < n; j++)
			memcpy(dst + j * elems, saved + samples[j] * elems, elems * sizeof(float));
		saved += elems * saved_batch;
	}
}
