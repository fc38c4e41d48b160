/* SPDX-License-Identifier: MIT */
/*
 * bmx_pack_adaptive.c — bmx-pack's --adaptive file: the cascade and the policy that
 * tools/train/adaptive.py calibrated, handed to the C writer's CASCADE and POLICY sections.
 *
 *   bmx-adaptive 1
 *   cascade confidence=1|2 target=F accuracy=F thresholds=F[,F...]
 *   config B,B,...            (one per configuration, cheap to rich, one bit-width per layer)
 *   policy feature_node=N threshold=F target=F accuracy=F
 *   config B,B,...
 *   weights F F ...           (one line per configuration but the last, n_features values)
 *   bias F F ...
 * Floats may be C99 hexadecimal (exact; the trainer writes them so). The writer copies all.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bmx_pack.h"

struct adaptive_spec {
	const char *path;
	unsigned line;
	int header;  /* the first line was read */
	int section; /* 0 none, 1 cascade, 2 policy */
	struct bmx_cascade_spec cascade;
	struct bmx_policy_spec policy;
	float thresholds[BMX_MAX_ADAPTIVE_CONFIGS];
	uint8_t bits[2][BMX_MAX_ADAPTIVE_CONFIGS * BMX_MAX_LAYERS];
	float *weights;
	float bias[BMX_MAX_ADAPTIVE_CONFIGS];
	uint32_t n_weight_rows, n_bias;
	int have[2];
};

static int bad(const struct adaptive_spec *s, const char *what)
{
	fprintf(stderr, "bmx-pack: %s:%u: %s\n", s->path, s->line, what);
	return -EINVAL;
}

/* Floats separated by SEP into OUT (at most MAX); returns how many, or -1. */
static int floats(const char *text, const char *sep, float *out, unsigned max)
{
	unsigned n = 0;

	while (*text) {
		char *end;

		if (n == max)
			return -1;
		out[n++] = strtof(text, &end);
		if (end == text)
			return -1;
		text = end + strspn(end, sep);
	}
	return (int)n;
}

static int key_float(const char *line, const char *key, float *out)
{
	const char *p = strstr(line, key);
	char *end;

	if (!p)
		return -1;
	*out = strtof(p + strlen(key), &end);
	return end == p + strlen(key) ? -1 : 0;
}

static int config_line(struct adaptive_spec *s, const char *text, uint32_t layers)
{
	uint32_t *n = s->section == 1 ? &s->cascade.n_configs : &s->policy.n_configs;
	uint8_t *bits = s->bits[s->section - 1] + (size_t)*n * layers;
	uint32_t l = 0;

	if (*n == BMX_MAX_ADAPTIVE_CONFIGS)
		return bad(s, "too many configurations");
	while (*text && l < layers) {
		char *end;
		unsigned long b = strtoul(text, &end, 10);

		if (end == text || b > 8)
			break;
		bits[l++] = (uint8_t)b;
		text = end + (*end == ',');
	}
	if (l != layers || *text)
		return bad(s, "config: expected one bit-width per layer, comma-separated");
	(*n)++;
	return 0;
}

static int spec_line(struct adaptive_spec *s, char *line, uint32_t layers)
{
	unsigned u;
	int n;

	line[strcspn(line, "#\r\n")] = '\0';
	if (strspn(line, " \t") == strlen(line))
		return 0;
	if (!s->header++)
		return sscanf(line, "bmx-adaptive %u", &u) == 1 && u == 1
			       ? 0
			       : bad(s, "expected the first line \"bmx-adaptive 1\"");
	if (strncmp(line, "cascade ", 8) == 0) {
		const char *t = strstr(line, "thresholds=");

		s->section = 1, s->have[0] = 1;
		if (sscanf(strstr(line, "confidence=") ? strstr(line, "confidence=") : "",
			   "confidence=%u", &u) != 1 ||
		    key_float(line, "target=", &s->cascade.accuracy_target) < 0 ||
		    key_float(line, "accuracy=", &s->cascade.validation_accuracy) < 0 || !t ||
		    floats(t + 11, ",", s->thresholds, BMX_MAX_ADAPTIVE_CONFIGS - 1) < 1)
			return bad(
				s,
				"cascade: expected confidence=N target=F accuracy=F thresholds=F[,F..]");
		s->cascade.confidence = u;
		return 0;
	}
	if (strncmp(line, "policy ", 7) == 0) {
		const char *f = strstr(line, "feature_node=");

		s->section = 2, s->have[1] = 1;
		if (!f || sscanf(f, "feature_node=%u", &s->policy.feature_node) != 1 ||
		    key_float(line, "threshold=", &s->policy.threshold) < 0 ||
		    key_float(line, "target=", &s->policy.accuracy_target) < 0 ||
		    key_float(line, "accuracy=", &s->policy.validation_accuracy) < 0)
			return bad(
				s,
				"policy: expected feature_node=N threshold=F target=F accuracy=F");
		return 0;
	}
	if (strncmp(line, "config ", 7) == 0 && s->section)
		return config_line(s, line + 7, layers);
	if (strncmp(line, "weights ", 8) == 0 && s->section == 2) {
		float *w = realloc(s->weights, sizeof(float) * 4096 * (s->n_weight_rows + 1));

		if (!w)
			return -ENOMEM;
		s->weights = w;
		n = floats(line + 8, " \t", w + (size_t)4096 * s->n_weight_rows, 4096);
		if (n < 1 || (s->n_weight_rows && (uint32_t)n != s->policy.n_features))
			return bad(
				s,
				"weights: expected the same number (1..4096) of floats on every line");
		s->policy.n_features = (uint32_t)n;
		s->n_weight_rows++;
		return 0;
	}
	if (strncmp(line, "bias ", 5) == 0 && s->section == 2) {
		n = floats(line + 5, " \t", s->bias, BMX_MAX_ADAPTIVE_CONFIGS);
		if (n < 1)
			return bad(s, "bias: expected floats");
		s->n_bias = (uint32_t)n;
		return 0;
	}
	return bad(s, "expected cascade, policy, config, weights or bias");
}

int pack_adaptive(struct bmx_writer *w, uint32_t layers, const char *path)
{
	struct adaptive_spec s = { .path = path };
	char line[65536];
	float *packed = NULL;
	FILE *f = fopen(path, "r");
	int r = 0;

	if (!f) {
		fprintf(stderr, "bmx-pack: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	while (r >= 0 && fgets(line, sizeof(line), f)) {
		s.line++;
		r = spec_line(&s, line, layers);
	}
	fclose(f);
	if (r >= 0 && s.have[0]) {
		s.cascade.thresholds = s.thresholds;
		s.cascade.bits = s.bits[0];
		r = bmx_writer_set_cascade(w, &s.cascade);
		if (r < 0)
			fprintf(stderr, "bmx-pack: %s: the cascade needs 2..%d configurations\n",
				path, BMX_MAX_ADAPTIVE_CONFIGS);
	}
	if (r >= 0 && s.have[1]) {
		if (s.n_weight_rows + 1 != s.policy.n_configs ||
		    s.n_bias + 1 != s.policy.n_configs) {
			fprintf(stderr,
				"bmx-pack: %s: the policy needs one weights line and one bias per "
				"configuration but the last\n",
				path);
			r = -EINVAL;
		}
		packed =
			r >= 0 ? malloc(sizeof(float) * s.policy.n_features * (s.n_weight_rows + 1))
			       : NULL;
		for (uint32_t k = 0; packed && k < s.n_weight_rows; k++)
			memcpy(packed + (size_t)k * s.policy.n_features,
			       s.weights + (size_t)k * 4096, sizeof(float) * s.policy.n_features);
		s.policy.bits = s.bits[1];
		s.policy.weights = packed;
		s.policy.bias = s.bias;
		if (r >= 0)
			r = packed ? bmx_writer_set_policy(w, &s.policy) : -ENOMEM;
	}
	free(packed);
	free(s.weights);
	return r;
}
