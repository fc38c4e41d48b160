/* SPDX-License-Identifier: MIT */
/*
 * bmx_loader_adaptive.c — validation of the optional CASCADE and POLICY sections (format minor
 * 1, docs/model-format.md). They are optional for a reader that does not know them, but a reader
 * that does refuses a malformed one: an adaptive driver must be able to trust every bit-width,
 * node index and float in them as it trusts the layers. Runs after the graph and the layers are
 * checked, so shapes and the execution order are known.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bmx_loader_internal.h"

static bool zero_bytes(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static bool all_finite(const float *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(f[i]))
			return false;
	return true;
}

/*
 * N configurations of layer_count bit-widths at BITS (file offset AT): every bit-width supported
 * by its layer, no layer lower in a configuration than in the one before.
 */
static int check_configs(struct bmx_check *c, const char *sec, uint64_t at, const uint8_t *bits,
			 uint32_t n)
{
	const struct bmx_model *m = c->model;

	for (uint32_t k = 0; k < n; k++)
		for (uint32_t l = 0; l < m->layer_count; l++) {
			const uint8_t b = bits[(size_t)k * m->layer_count + l];
			const uint64_t off = at + (uint64_t)k * m->layer_count + l;

			if (b < BMX_MIN_BITS || b > BMX_MAX_BITS || m->views[l].bit_index[b] < 0)
				return bmx_bad(
					c, sec, off,
					"configuration %u gives layer %u (%s) %u bits, which it does not support",
					k, l, m->layers[l].name, b);
			if (k > 0 && b < bits[(size_t)(k - 1) * m->layer_count + l])
				return bmx_bad(
					c, sec, off,
					"configuration %u lowers layer %u (%s) below configuration %u",
					k, l, m->layers[l].name, k - 1);
		}
	return 0;
}

static int check_common(struct bmx_check *c, const char *sec, uint64_t at, uint32_t n_configs,
			uint32_t layer_count)
{
	if (n_configs < 2 || n_configs > BMX_MAX_ADAPTIVE_CONFIGS)
		return bmx_bad(c, sec, at, "n_configs %u, expected 2..%d", n_configs,
			       BMX_MAX_ADAPTIVE_CONFIGS);
	if (layer_count != c->model->layer_count)
		return bmx_bad(c, sec, at + 4, "layer_count %u, the model has %u", layer_count,
			       c->model->layer_count);
	return 0;
}

static int check_cascade(struct bmx_check *c, const struct bmx_section *s)
{
	const struct bmx_cascade_info *ci = (const void *)(c->base + s->offset);
	const uint64_t at = s->offset;
	int r;

	if (s->size < sizeof(*ci))
		return bmx_bad(c, "CASCADE", at, "size %llu, shorter than its 64-byte header",
			       (unsigned long long)s->size);
	if ((r = check_common(c, "CASCADE", at, ci->n_configs, ci->layer_count)) < 0)
		return r;
	if (s->size != sizeof(*ci) + (uint64_t)ci->n_configs * ci->layer_count)
		return bmx_bad(c, "CASCADE", at,
			       "size %llu, expected 64 + %u configurations x %u layers",
			       (unsigned long long)s->size, ci->n_configs, ci->layer_count);
	if (ci->confidence != BMX_CONFIDENCE_MAX_PROB && ci->confidence != BMX_CONFIDENCE_MARGIN)
		return bmx_bad(c, "CASCADE", at + offsetof(struct bmx_cascade_info, confidence),
			       "confidence %u, expected 1 (max probability) or 2 (margin)",
			       ci->confidence);
	if (!all_finite(&ci->accuracy_target, 2) ||
	    !all_finite(ci->thresholds, BMX_MAX_ADAPTIVE_CONFIGS - 1))
		return bmx_bad(c, "CASCADE",
			       at + offsetof(struct bmx_cascade_info, accuracy_target),
			       "a target, accuracy or threshold is not finite");
	for (uint32_t k = ci->n_configs - 1; k < BMX_MAX_ADAPTIVE_CONFIGS - 1; k++)
		if (ci->thresholds[k] != 0.0f)
			return bmx_bad(
				c, "CASCADE", at + offsetof(struct bmx_cascade_info, thresholds),
				"threshold %u is set but there is no configuration %u to escalate to",
				k, k + 1);
	if (!zero_bytes(ci->reserved, sizeof(ci->reserved)))
		return bmx_bad(c, "CASCADE", at + offsetof(struct bmx_cascade_info, reserved),
			       "reserved bytes are not zero");
	if ((r = check_configs(c, "CASCADE", at + sizeof(*ci), (const uint8_t *)(ci + 1),
			       ci->n_configs)) < 0)
		return r;
	c->model->cascade = ci;
	c->model->cascade_bits = (const uint8_t *)(ci + 1);
	return 0;
}

/* Every configuration has the same bits for the layers that run before the features exist. */
static int check_policy_prefix(struct bmx_check *c, const struct bmx_policy_info *pi,
			       const uint8_t *bits, uint64_t at)
{
	const struct bmx_model *m = c->model;
	const uint32_t end = m->position[pi->feature_node];

	for (uint32_t i = 0; i <= end; i++) {
		const struct bmx_node *n = &m->nodes[m->order[i]];

		if (n->layer < 0)
			continue;
		for (uint32_t k = 1; k < pi->n_configs; k++)
			if (bits[(size_t)k * m->layer_count + (uint32_t)n->layer] !=
			    bits[(uint32_t)n->layer])
				return bmx_bad(
					c, "POLICY",
					at + (uint64_t)k * m->layer_count + (uint32_t)n->layer,
					"configuration %u changes layer %s, which runs before the features (node %u)",
					k, m->layers[n->layer].name, pi->feature_node);
	}
	return 0;
}

static int check_policy(struct bmx_check *c, const struct bmx_section *s)
{
	const struct bmx_policy_info *pi = (const void *)(c->base + s->offset);
	const struct bmx_model *m = c->model;
	const uint64_t at = s->offset;
	uint64_t bits_end, need;
	int r;

	if (s->size < sizeof(*pi))
		return bmx_bad(c, "POLICY", at, "size %llu, shorter than its 64-byte header",
			       (unsigned long long)s->size);
	if ((r = check_common(c, "POLICY", at, pi->n_configs, pi->layer_count)) < 0)
		return r;
	if (pi->feature_node >= m->node_count)
		return bmx_bad(c, "POLICY", at + offsetof(struct bmx_policy_info, feature_node),
			       "feature_node %u, the model has %u nodes", pi->feature_node,
			       m->node_count);
	if (m->nodes[pi->feature_node].layer >= 0) /* fused kernels keep only the ReLU'd value */
		return bmx_bad(
			c, "POLICY", at + offsetof(struct bmx_policy_info, feature_node),
			"feature_node %u is a conv2d/linear; name the activation or pool after it",
			pi->feature_node);
	if (pi->n_features != m->nodes[pi->feature_node].out_c || pi->n_features > 4096)
		return bmx_bad(c, "POLICY", at + offsetof(struct bmx_policy_info, n_features),
			       "n_features %u, node %u has %u channels (at most 4096)",
			       pi->n_features, pi->feature_node, m->nodes[pi->feature_node].out_c);
	bits_end = (sizeof(*pi) + (uint64_t)pi->n_configs * pi->layer_count + 3) & ~(uint64_t)3;
	need = bits_end + 4ull * (pi->n_configs - 1) * (pi->n_features + 1);
	if (s->size != need)
		return bmx_bad(c, "POLICY", at,
			       "size %llu, expected %llu for %u configurations and %u features",
			       (unsigned long long)s->size, (unsigned long long)need, pi->n_configs,
			       pi->n_features);
	if (!all_finite(&pi->threshold, 3))
		return bmx_bad(c, "POLICY", at + offsetof(struct bmx_policy_info, threshold),
			       "threshold, target or accuracy is not finite");
	if (!zero_bytes(pi->reserved, sizeof(pi->reserved)) ||
	    !zero_bytes(c->base + at + sizeof(*pi) + (uint64_t)pi->n_configs * pi->layer_count,
			bits_end - sizeof(*pi) - (uint64_t)pi->n_configs * pi->layer_count))
		return bmx_bad(c, "POLICY", at + offsetof(struct bmx_policy_info, reserved),
			       "reserved or padding bytes are not zero");
	if ((r = check_configs(c, "POLICY", at + sizeof(*pi), (const uint8_t *)(pi + 1),
			       pi->n_configs)) < 0 ||
	    (r = check_policy_prefix(c, pi, (const uint8_t *)(pi + 1), at + sizeof(*pi))) < 0)
		return r;
	if (!all_finite((const float *)(c->base + at + bits_end),
			(size_t)(pi->n_configs - 1) * (pi->n_features + 1)))
		return bmx_bad(c, "POLICY", at + bits_end,
			       "a predictor weight or bias is not finite");
	c->model->policy = pi;
	c->model->policy_bits = (const uint8_t *)(pi + 1);
	c->model->policy_weights = (const float *)(c->base + at + bits_end);
	c->model->policy_bias =
		c->model->policy_weights + (size_t)(pi->n_configs - 1) * pi->n_features;
	return 0;
}

int bmx_check_adaptive(struct bmx_check *c)
{
	struct bmx_model *m = c->model;
	int r;

	m->position = malloc(sizeof(*m->position) * m->node_count);
	if (!m->position)
		return -ENOMEM;
	for (uint32_t i = 0; i < m->node_count; i++)
		m->position[m->order[i]] = i;
	if (c->sections[BMX_SECTION_CASCADE] &&
	    (r = check_cascade(c, c->sections[BMX_SECTION_CASCADE])) < 0)
		return r;
	if (c->sections[BMX_SECTION_POLICY] &&
	    (r = check_policy(c, c->sections[BMX_SECTION_POLICY])) < 0)
		return r;
	return 0;
}
