/* SPDX-License-Identifier: MIT */
/*
 * bitmixctl_limits.c — `bitmixctl holds [MODEL]` and `bitmixctl limits MODEL [MIN MAX
 * [LAYER=BITS...]]`: the one printer of each, which both transports feed, and their socket side
 * (HOLDS and LIMITS, docs/protocol.md). The D-Bus side is bitmixctl_dbus_limits.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitmixctl.h"

void ctl_hold_print(const char *model, const struct bitmix_hold_info *h, bool json, bool *first)
{
	const char *kind = h->kind == BITMIX_HOLD_MIN_BITS ? "min-bits" : "max-latency-ns";

	if (!json) {
		printf("%s: hold %u %s %llu by %s\n", model, h->id, kind,
		       (unsigned long long)h->value, h->owner);
		return;
	}
	printf("%s{\"model\":", *first ? "" : ",");
	ctl_json_string(stdout, model);
	printf(",\"id\":%u,\"kind\":", h->id);
	ctl_json_string(stdout, kind);
	printf(",\"value\":%llu,\"owner\":", (unsigned long long)h->value);
	ctl_json_string(stdout, h->owner);
	printf("}");
	*first = false;
}

void ctl_limits_print(const char *model, const struct bitmix_limits *l, bool json)
{
	if (!json) {
		printf("%s: bits %u..%u, pinned:", model, l->min_bits, l->max_bits);
		for (unsigned i = 0; i < l->n_pinned; i++)
			printf(" %s=%u", l->pinned[i].layer, l->pinned[i].bits);
		printf("%s\n", l->n_pinned ? "" : " none");
		return;
	}
	printf("{\"model\":");
	ctl_json_string(stdout, model);
	printf(",\"min_bits\":%u,\"max_bits\":%u,\"pinned\":[", l->min_bits, l->max_bits);
	for (unsigned i = 0; i < l->n_pinned; i++) {
		printf("%s{\"layer\":", i ? "," : "");
		ctl_json_string(stdout, l->pinned[i].layer);
		printf(",\"bits\":%u}", l->pinned[i].bits);
	}
	printf("]}\n");
}

/* "N": 2..8. */
static bool parse_bits(const char *s, uint8_t *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == 0 || *end || v < 2 || v > 8)
		return false;
	*out = (uint8_t)v;
	return true;
}

int ctl_limits_parse(int argc, char **argv, struct bitmix_limits *l)
{
	memset(l, 0, sizeof(*l));
	if (argc < 2 || !parse_bits(argv[0], &l->min_bits) || !parse_bits(argv[1], &l->max_bits))
		return -EINVAL;
	for (int i = 2; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		size_t n = eq ? (size_t)(eq - argv[i]) : 0;

		if (!eq || n == 0 || n >= sizeof(l->pinned[0].layer) ||
		    l->n_pinned == sizeof(l->pinned) / sizeof(l->pinned[0]) ||
		    !parse_bits(eq + 1, &l->pinned[l->n_pinned].bits))
			return -EINVAL;
		memcpy(l->pinned[l->n_pinned].layer, argv[i], n);
		l->n_pinned++;
	}
	return 0;
}

int ctl_holds(struct bitmix *bm, int argc, char **argv, bool json)
{
	struct bitmix_model_info infos[64];
	struct bitmix_hold_info holds[64];
	bool first = true;
	int n, shown = 0;

	if (argc > 1) {
		fputs("usage: bitmixctl holds [MODEL]\n", stderr);
		return 2;
	}
	n = bitmix_list_models(bm, infos, 64);
	if (n < 0) {
		fprintf(stderr, "bitmixctl: models: %s\n", bitmix_strerror(bm));
		return 1;
	}
	if (json)
		printf("{\"holds\":[");
	for (int i = 0; i < n && i < 64; i++) {
		int k;

		if (argc == 1 && strcmp(argv[0], infos[i].name) != 0)
			continue;
		shown++;
		k = bitmix_get_holds(bm, infos[i].name, holds, 64);
		if (k < 0) {
			fprintf(stderr, "bitmixctl: holds: %s\n", bitmix_strerror(bm));
			return 1;
		}
		for (int h = 0; h < k && h < 64; h++)
			ctl_hold_print(infos[i].name, &holds[h], json, &first);
	}
	if (json)
		printf("]}\n");
	if (argc == 1 && !shown) {
		fprintf(stderr, "bitmixctl: no model called \"%s\"\n", argv[0]);
		return 1;
	}
	return 0;
}

int ctl_limits(struct bitmix *bm, int argc, char **argv, bool json)
{
	struct bitmix_limits l;

	if (argc < 1 || argc == 2 || (argc > 1 && ctl_limits_parse(argc - 1, argv + 1, &l) < 0)) {
		fputs("usage: bitmixctl limits MODEL [MIN MAX [LAYER=BITS...]]\n", stderr);
		return 2;
	}
	if (argc > 1 && bitmix_set_limits(bm, argv[0], &l) < 0) {
		fprintf(stderr, "bitmixctl: limits: %s\n", bitmix_strerror(bm));
		return 1;
	}
	if (bitmix_get_limits(bm, argv[0], &l) < 0) {
		fprintf(stderr, "bitmixctl: limits: %s\n", bitmix_strerror(bm));
		return 1;
	}
	ctl_limits_print(argv[0], &l, json);
	return 0;
}
