/* SPDX-License-Identifier: MIT */
/*
 * bitmixctl_bits.c — bitmixctl's notation for per-layer bits, shared by the socket and D-Bus
 * paths of `bitmixctl bits`: "N" or "wWaA" for every layer that allows it, a list with one
 * entry per layer ("8,4,w2a4,..."), or overrides on top of the current bits ("3=4,5=w2a4").
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitmixctl.h"

void ctl_bits_range(uint16_t mask, char *buf, size_t size)
{
	int lo, hi;

	if (!mask) {
		snprintf(buf, size, "none");
		return;
	}
	lo = __builtin_ctz(mask);
	hi = 31 - __builtin_clz(mask);
	if ((unsigned)mask == ((2u << hi) - (1u << lo)))
		snprintf(buf, size, lo == hi ? "%d" : "%d-%d", lo, hi);
	else {
		size_t n = 0;

		buf[0] = 0;
		for (int b = lo; b <= hi && n < size; b++)
			if (mask & (1u << b))
				n += (size_t)snprintf(buf + n, size - n, "%s%d", n ? "," : "", b);
	}
}

/* "4" -> w4a4, "w4a6" -> w4a6. Returns 0 or -EINVAL. */
static int parse_bits(const char *s, struct bitmix_layer_bits *b)
{
	unsigned w, a;
	int n = 0;

	if (sscanf(s, "w%ua%u%n", &w, &a, &n) == 2 && s[n] == 0)
		*b = (struct bitmix_layer_bits){ (uint8_t)w, (uint8_t)a };
	else if (sscanf(s, "%u%n", &w, &n) == 1 && s[n] == 0)
		*b = (struct bitmix_layer_bits){ (uint8_t)w, (uint8_t)w };
	else
		return -EINVAL;
	return w >= 2 && w <= 8 && b->a_bits >= 2 && b->a_bits <= 8 ? 0 : -EINVAL;
}

static bool allowed(uint16_t mask, struct bitmix_layer_bits b)
{
	return (mask & (1u << b.w_bits)) && (mask & (1u << b.a_bits));
}

/* One bit-width for every layer that allows it. */
static int apply_uniform(const uint16_t *masks, uint32_t n, const char *spec,
			 struct bitmix_layer_bits *bits)
{
	struct bitmix_layer_bits b;
	uint32_t kept = 0;

	if (parse_bits(spec, &b) < 0) {
		fprintf(stderr, "bitmixctl: \"%s\" is not N or wWaA with W, A in 2..8\n", spec);
		return 1;
	}
	for (uint32_t i = 0; i < n; i++) {
		if (allowed(masks[i], b))
			bits[i] = b;
		else
			kept++;
	}
	if (kept)
		printf("%u layer(s) do not allow %s and keep their bits\n", kept, spec);
	return 0;
}

int ctl_apply_spec(const uint16_t *masks, uint32_t n, const char *spec,
		   struct bitmix_layer_bits *bits)
{
	struct bitmix_layer_bits b;
	char *copy, *save = NULL, *tok;
	char range[32];
	uint32_t i = 0;
	int r = 0;

	if (!strchr(spec, ',') && !strchr(spec, '='))
		return apply_uniform(masks, n, spec, bits);
	copy = strdup(spec);
	if (!copy)
		return 1;
	for (tok = strtok_r(copy, ",", &save); tok && r == 0; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		uint32_t layer = i++;

		if (eq) {
			*eq = 0;
			layer = (uint32_t)strtoul(tok, NULL, 10);
			tok = eq + 1;
		}
		if (layer >= n || parse_bits(tok, &b) < 0) {
			fprintf(stderr,
				"bitmixctl: bad entry \"%s\" for layer %u (the model has %u layers)\n",
				tok, layer, n);
			r = 1;
		} else if (!allowed(masks[layer], b)) {
			ctl_bits_range(masks[layer], range, sizeof(range));
			fprintf(stderr, "bitmixctl: layer %u allows bits %s, not %s\n", layer,
				range, tok);
			r = 1;
		} else {
			bits[layer] = b;
		}
	}
	if (r == 0 && !strchr(spec, '=') && i != n) {
		fprintf(stderr, "bitmixctl: %u entries given, the model has %u layers\n", i, n);
		r = 1;
	}
	free(copy);
	return r;
}

void ctl_bits_print(const char *model, uint64_t generation, const struct bitmix_layer_bits *bits,
		    const uint16_t *masks, const char *const *names, uint32_t n, bool json)
{
	char range[32];

	if (json) {
		printf("{\"model\":");
		ctl_json_string(stdout, model);
		printf(",\"generation\":%llu,\"layers\":[", (unsigned long long)generation);
		for (uint32_t l = 0; l < n; l++) {
			printf("%s{\"name\":", l ? "," : "");
			ctl_json_string(stdout, names[l] ? names[l] : "");
			printf(",");
			ctl_json_layer_bits(&bits[l], masks[l]);
			printf("}");
		}
		printf("]}\n");
		return;
	}
	printf("%s: generation %llu\n", model, (unsigned long long)generation);
	for (uint32_t l = 0; l < n; l++) {
		ctl_bits_range(masks[l], range, sizeof(range));
		printf("  layer %2u: w%u a%u  (allowed %s)  %s\n", l, bits[l].w_bits,
		       bits[l].a_bits, range, names[l] ? names[l] : "");
	}
}

int ctl_bits_show(struct bitmix *bm, struct bitmix_model *m, const char *model, bool json)
{
	struct bitmix_layer_bits bits[1024];
	const char *names[1024] = { 0 };
	uint16_t masks[1024];
	struct bitmix_cost_layer *layers;
	struct bitmix_cost_info info;
	uint32_t n = bitmix_model_get_info(m)->layer_count;
	uint64_t generation;

	if (n > 1024)
		n = 1024;
	/* The layers' names come with the cost table (COST), the socket's one list of them. */
	layers = calloc(n ? n : 1, sizeof(*layers));
	if (!layers)
		return 1;
	if (bitmix_get_cost(bm, model, &info, layers, n) == 0)
		for (uint32_t l = 0; l < n; l++)
			names[l] = layers[l].name;
	bitmix_get_bits(m, bits, &generation);
	for (uint32_t l = 0; l < n; l++)
		masks[l] = bitmix_model_layer_bits_mask(m, l);
	ctl_bits_print(model, generation, bits, masks, names, n, json);
	free(layers);
	return 0;
}
