/* SPDX-License-Identifier: MIT */
/*
 * bmx_adaptive.c — the cascade and the learned policy of bmx_adaptive.h.
 *
 * Scratch: [engine scratch for the batch][saved live values][one batch of outputs][features]
 * [sample indices], each region 64-byte aligned. A batch runs its first configuration (cascade)
 * or its shared prefix (policy) once; samples that need another configuration are gathered from
 * the saved values into a smaller batch, run from the first position that differs, and their
 * outputs scattered back. Nothing here allocates; the engine's determinism carries over.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "bmx_adaptive.h"

static uint64_t align64(uint64_t v)
{
	return (v + 63) & ~(uint64_t)63;
}

int bmx_adaptive_supported(const struct bmx_model *m, enum bmx_adaptive_mode mode)
{
	return mode == BMX_ADAPTIVE_OFF || (mode == BMX_ADAPTIVE_CASCADE && m->cascade) ||
	       (mode == BMX_ADAPTIVE_POLICY && m->policy);
}

struct layout {
	uint64_t saved, out, features, idx, total;
};

static struct layout layout_of(const struct bmx_engine *e, uint32_t batch)
{
	const struct bmx_model *m = bmx_engine_model(e);
	uint64_t live = 0;
	struct layout s;

	for (uint32_t p = 0; p <= m->node_count; p++) {
		uint64_t n = bmx_engine_live_size(e, p);

		if (n > live)
			live = n;
	}
	s.saved = align64(bmx_engine_scratch_size(e, batch));
	s.out = s.saved + align64(live * batch * sizeof(float));
	s.features = s.out + align64(bmx_model_output_size(m) * batch * sizeof(float));
	s.idx = s.features + align64((m->policy ? m->policy->n_features : 1) * sizeof(float));
	s.total = s.idx + align64(batch * sizeof(uint32_t));
	return s;
}

size_t bmx_adaptive_scratch_size(const struct bmx_engine *e, uint32_t batch)
{
	return (size_t)layout_of(e, batch).total;
}

/* The highest bits of LAYER that are at most B, else its lowest. */
static uint8_t supported_at_most(const struct bmx_layer_view *v, unsigned b)
{
	for (int i = v->nbits - 1; i >= 0; i--)
		if (v->bits[i] <= b)
			return v->bits[i];
	return v->bits[0];
}

/* B clamped to [floor, ceiling] (the ceiling wins a conflict: the governor already honours floors). */
static uint8_t clamp_bits(const struct bmx_layer_view *v, unsigned b, unsigned floor,
			  unsigned ceiling)
{
	if (b < floor)
		b = floor;
	if (b > ceiling)
		b = ceiling;
	return supported_at_most(v, b);
}

void bmx_adaptive_config(const struct bmx_engine *e, const struct bmx_adaptive_request *req,
			 uint32_t k, struct bmx_layer_bits *bits)
{
	const struct bmx_model *m = bmx_engine_model(e);
	const uint8_t *cfg = req->mode == BMX_ADAPTIVE_POLICY ? m->policy_bits : m->cascade_bits;

	for (uint32_t l = 0; l < m->layer_count; l++) {
		const struct bmx_layer_view *v = &m->views[l];
		const unsigned top = v->bits[v->nbits - 1];
		const unsigned cw = req->ceiling ? req->ceiling[l].w_bits : top;
		const unsigned ca = req->ceiling ? req->ceiling[l].a_bits : top;
		const unsigned b = req->mode == BMX_ADAPTIVE_OFF
					   ? BMX_MAX_BITS
					   : cfg[(size_t)k * m->layer_count + l];

		bits[l].w_bits = clamp_bits(v, b, req->floor, cw);
		bits[l].a_bits = clamp_bits(v, b, req->floor, ca);
	}
}

uint64_t bmx_bitops(const struct bmx_model *m, const struct bmx_layer_bits *bits, uint32_t from)
{
	uint64_t sum = 0;

	for (uint32_t l = 0; l < m->layer_count; l++)
		if (m->position[m->layers[l].node] >= from)
			sum += m->layers[l].macs * bits[l].w_bits * bits[l].a_bits;
	return sum;
}

float bmx_confidence(uint32_t kind, const float *row, uint32_t n)
{
	uint32_t best = 0;
	float second = -INFINITY;
	double sum = 0.0;

	for (uint32_t i = 1; i < n; i++)
		if (row[i] > row[best])
			best = i;
	if (kind == BMX_CONFIDENCE_MARGIN) {
		for (uint32_t i = 0; i < n; i++)
			if (i != best && row[i] > second)
				second = row[i];
		return n > 1 ? row[best] - second : INFINITY;
	}
	for (uint32_t i = 0; i < n; i++)
		sum += exp((double)row[i] - (double)row[best]);
	return (float)(1.0 / sum);
}

void bmx_pool_features(const float *value, uint32_t hw, uint32_t c, float *features)
{
	for (uint32_t ch = 0; ch < c; ch++) {
		double sum = 0.0;

		for (uint32_t p = 0; p < hw; p++)
			sum += value[(size_t)p * c + ch];
		features[ch] = (float)(sum / hw);
	}
}

uint32_t bmx_policy_choose(const struct bmx_model *m, const float *f, float threshold)
{
	const struct bmx_policy_info *pi = m->policy;

	for (uint32_t k = 0; k + 1 < pi->n_configs; k++) {
		const float *w = m->policy_weights + (size_t)k * pi->n_features;
		double score = m->policy_bias[k];

		for (uint32_t i = 0; i < pi->n_features; i++)
			score += (double)w[i] * (double)f[i];
		if (score >= (double)threshold)
			return k;
	}
	return pi->n_configs - 1;
}

/* Everything one call needs. */
struct adaptive_run {
	const struct bmx_engine *e;
	const struct bmx_model *m;
	const struct bmx_parallel *par;
	uint8_t *scratch;
	struct layout s;
	uint32_t batch, out_n;
	float *output;
	struct bmx_adaptive_result *results;
};

/*
 * Run samples IDX[0..N) of the saved batch from position POS at BITS and scatter their outputs;
 * each gets CONFIG. An ESCALATION adds a run and the BitOps of the layers it recomputed; else
 * (the policy) this is the sample's one run, prefix included.
 */
static int run_subset(struct adaptive_run *a, uint32_t pos, const struct bmx_layer_bits *bits,
		      const uint32_t *idx, uint32_t n, uint32_t config, bool escalation)
{
	float *out = (float *)(a->scratch + a->s.out);
	const uint64_t spent = bmx_bitops(a->m, bits, escalation ? pos : 0);
	int r;

	bmx_engine_restore_live(a->e, pos, (const float *)(a->scratch + a->s.saved), a->batch, idx,
				n, a->scratch);
	r = bmx_engine_run_range(a->e, bits, n, NULL, a->scratch, pos, a->m->node_count, a->par);
	if (r < 0)
		return r;
	bmx_engine_read_output(a->e, n, a->scratch, out);
	for (uint32_t j = 0; j < n; j++) {
		memcpy(a->output + (size_t)idx[j] * a->out_n, out + (size_t)j * a->out_n,
		       a->out_n * sizeof(float));
		struct bmx_adaptive_result *res = &a->results[idx[j]];

		res->config = (uint8_t)config;
		res->runs = escalation ? res->runs + 1 : 1;
		res->bitops = escalation ? res->bitops + spent : spent;
	}
	return 0;
}

static bool same_bits(uint32_t n, const struct bmx_layer_bits *a, const struct bmx_layer_bits *b)
{
	return memcmp(a, b, n * sizeof(*a)) == 0;
}

static int run_cascade(struct adaptive_run *a, const struct bmx_adaptive_request *req,
		       const float *input)
{
	const struct bmx_cascade_info *ci = a->m->cascade;
	const uint32_t L = a->m->layer_count, K = ci->n_configs;
	struct bmx_layer_bits cfg[BMX_MAX_ADAPTIVE_CONFIGS][BMX_MAX_LAYERS];
	uint32_t *idx = (uint32_t *)(a->scratch + a->s.idx), pos = a->m->node_count, cur = 0, n = 0;
	int r;

	for (uint32_t k = 0; k < K; k++) {
		bmx_adaptive_config(a->e, req, k, cfg[k]);
		if (k > 0) {
			uint32_t p = bmx_engine_first_difference(a->e, cfg[k - 1], cfg[k]);

			pos = p < pos ? p : pos;
		}
	}
	if (req->no_reuse || pos < 1)
		pos = 1; /* position 0 is the input: its value is what gets saved */
	/* Configurations the clamp made equal are one: the run counts as the last of them. */
	while (cur + 1 < K && same_bits(L, cfg[cur], cfg[cur + 1]))
		cur++;
	r = bmx_engine_run_range(a->e, cfg[cur], a->batch, input, a->scratch, 0, pos, a->par);
	if (r < 0)
		return r;
	if (pos < a->m->node_count)
		bmx_engine_save_live(a->e, pos, a->batch, a->scratch,
				     (float *)(a->scratch + a->s.saved));
	r = bmx_engine_run_range(a->e, cfg[cur], a->batch, input, a->scratch, pos, a->m->node_count,
				 a->par);
	if (r < 0)
		return r;
	bmx_engine_read_output(a->e, a->batch, a->scratch, a->output);
	for (uint32_t s = 0; s < a->batch; s++)
		a->results[s] = (struct bmx_adaptive_result){ (uint8_t)cur, 1,
							      bmx_bitops(a->m, cfg[cur], 0) };
	for (uint32_t s = 0; s < a->batch; s++)
		idx[n++] = s;
	while (cur + 1 < K && n > 0) {
		const float t = req->thresholds ? req->thresholds[cur] : ci->thresholds[cur];
		uint32_t next = cur + 1, kept = 0;

		for (uint32_t j = 0; j < n; j++)
			if (bmx_confidence(ci->confidence, a->output + (size_t)idx[j] * a->out_n,
					   a->out_n) < t)
				idx[kept++] = idx[j];
		n = kept;
		while (next + 1 < K && same_bits(L, cfg[next], cfg[next + 1]))
			next++;
		if (n > 0 && (r = run_subset(a, pos, cfg[next], idx, n, next, true)) < 0)
			return r;
		cur = next;
	}
	return 0;
}

static int run_policy(struct adaptive_run *a, const struct bmx_adaptive_request *req,
		      const float *input)
{
	const struct bmx_policy_info *pi = a->m->policy;
	const struct bmx_node *fn = &a->m->nodes[pi->feature_node];
	const uint32_t pos = a->m->position[pi->feature_node] + 1, K = pi->n_configs;
	const float t = req->thresholds ? req->thresholds[0] : pi->threshold;
	struct bmx_layer_bits cfg[BMX_MAX_ADAPTIVE_CONFIGS][BMX_MAX_LAYERS];
	uint32_t *idx = (uint32_t *)(a->scratch + a->s.idx);
	float *features = (float *)(a->scratch + a->s.features);
	const float *value;
	bool uniform = true;
	int r;

	for (uint32_t k = 0; k < K; k++)
		bmx_adaptive_config(a->e, req, k, cfg[k]);
	r = bmx_engine_run_range(a->e, cfg[0], a->batch, input, a->scratch, 0, pos, a->par);
	if (r < 0)
		return r;
	value = bmx_engine_value(a->e, a->batch, a->scratch, pi->feature_node);
	for (uint32_t s = 0; s < a->batch; s++) {
		const uint64_t elems = (uint64_t)fn->out_h * fn->out_w * fn->out_c;
		uint32_t k;

		bmx_pool_features(value + s * elems, fn->out_h * fn->out_w, fn->out_c, features);
		k = bmx_policy_choose(a->m, features, t);
		a->results[s] =
			(struct bmx_adaptive_result){ (uint8_t)k, 1, bmx_bitops(a->m, cfg[k], 0) };
		uniform &= a->results[s].config == a->results[0].config;
	}
	if (uniform) { /* one configuration for the batch: go on in place */
		r = bmx_engine_run_range(a->e, cfg[a->results[0].config], a->batch, input,
					 a->scratch, pos, a->m->node_count, a->par);
		if (r == 0)
			bmx_engine_read_output(a->e, a->batch, a->scratch, a->output);
		return r;
	}
	bmx_engine_save_live(a->e, pos, a->batch, a->scratch, (float *)(a->scratch + a->s.saved));
	for (uint32_t k = 0; k < K; k++) {
		uint32_t n = 0;

		for (uint32_t s = 0; s < a->batch; s++)
			if (a->results[s].config == k)
				idx[n++] = s;
		if (n > 0 && (r = run_subset(a, pos, cfg[k], idx, n, k, false)) < 0)
			return r;
	}
	return 0;
}

int bmx_adaptive_run(const struct bmx_engine *e, const struct bmx_adaptive_request *req,
		     uint32_t batch, const float *input, float *output, void *scratch,
		     const struct bmx_parallel *par, struct bmx_adaptive_result *results)
{
	const struct bmx_model *m = bmx_engine_model(e);
	struct bmx_adaptive_result own[64];
	struct adaptive_run a = {
		.e = e,
		.m = m,
		.par = par,
		.scratch = scratch,
		.s = layout_of(e, batch),
		.batch = batch,
		.out_n = (uint32_t)bmx_model_output_size(m),
		.output = output,
		.results = results,
	};
	int r;

	if (!bmx_adaptive_supported(m, req->mode))
		return -EOPNOTSUPP;
	if (req->ceiling && bmx_engine_check_bits(e, req->ceiling, NULL) < 0)
		return -EINVAL;
	if (!results) { /* the caller does not want them: go in slices a local array can hold */
		for (uint32_t i = 0; i < batch; i += 64) {
			uint32_t n = batch - i < 64 ? batch - i : 64;

			r = bmx_adaptive_run(e, req, n, input + (size_t)i * bmx_model_input_size(m),
					     output + (size_t)i * a.out_n, scratch, par, own);
			if (r < 0)
				return r;
		}
		return 0;
	}
	if (req->mode == BMX_ADAPTIVE_OFF) {
		struct bmx_layer_bits bits[BMX_MAX_LAYERS];

		bmx_adaptive_config(e, req, 0, bits);
		for (uint32_t s = 0; s < batch; s++)
			results[s] = (struct bmx_adaptive_result){ 0, 1, bmx_bitops(m, bits, 0) };
		return bmx_engine_run_parallel(e, bits, batch, input, output, scratch, par);
	}
	return req->mode == BMX_ADAPTIVE_CASCADE ? run_cascade(&a, req, input)
						 : run_policy(&a, req, input);
}
