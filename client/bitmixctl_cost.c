/* SPDX-License-Identifier: MIT */
/*
 * bitmixctl_cost.c — `bitmixctl cost MODEL`: the model's per-layer cost table, one line per
 * (layer, bit-width) with its time per sample at batch 1 and at the large batch and whether each
 * is measured or still estimated, as text or --json. The printing is shared by both planes: the
 * socket fills the table here (bitmix_get_cost), D-Bus in bitmixctl_dbus_cost.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitmixctl.h"

static int fail(const struct bitmix *bm, const char *what)
{
	fprintf(stderr, "bitmixctl: %s: %s\n", what, bitmix_strerror(bm));
	return 1;
}

void ctl_cost_status_line(const struct bitmix_cost_info *c)
{
	if (c->complete)
		printf("      cost table: complete, %u rows measured at batch 1 and %u (%s kernels, "
		       "%s; %s%.2f s after load)\n",
		       c->rows, c->large_batch, c->kernels, c->cpu,
		       strcmp(c->source, "cache") == 0 ? "from the cache, " : "", c->complete_s);
	else
		printf("      cost table: not complete: %u/%u rows measured at batch 1, %u/%u at batch "
		       "%u, the rest estimated (%s kernels, %s)\n",
		       c->measured[0], c->rows, c->measured[1], c->rows, c->large_batch, c->kernels,
		       c->cpu);
}

static const char *state_of(const struct bitmix_cost_layer *l, int bi, int b)
{
	return l->measured[bi] & (1u << b) ? "measured" : "estimated";
}

static void print_text(const char *model, const struct bitmix_cost_info *c,
		       const struct bitmix_cost_layer *layers)
{
	printf("model %s: cost table on %s, %s kernels (%s), %s", model, c->cpu, c->kernels,
	       c->source, c->complete ? "complete" : "not complete");
	if (c->complete)
		printf(" %.2f s after load", c->complete_s);
	printf("\n  %u of %u rows measured at batch 1, %u at batch %u; the allocator costs at the "
	       "traffic's mean batch, %.1f now\n",
	       c->measured[0], c->rows, c->measured[1], c->large_batch, c->batch);
	printf("  %-20s %4s %12s %-9s %9s%3u %-9s\n", "layer", "bits", "ns, batch 1", "", "batch",
	       c->large_batch, "");
	for (unsigned l = 0; l < c->layer_count; l++) {
		const struct bitmix_cost_layer *y = &layers[l];

		for (int b = 2; b <= 8; b++) {
			if (!(y->allowed & (1u << b)))
				continue;
			printf("  %-20s %4d %12.0f %-9s %12.0f %-9s%s\n", y->name, b, y->ns[0][b],
			       state_of(y, 0, b), y->ns[1][b], state_of(y, 1, b),
			       y->pruned & (1u << b) ? " no real saving" : "");
		}
	}
}

static void print_json(const char *model, const struct bitmix_cost_info *c,
		       const struct bitmix_cost_layer *layers)
{
	printf("{\"model\":");
	ctl_json_string(stdout, model);
	printf(",\"cpu\":");
	ctl_json_string(stdout, c->cpu);
	printf(",\"kernels\":");
	ctl_json_string(stdout, c->kernels);
	printf(",\"source\":");
	ctl_json_string(stdout, c->source);
	printf(",\"batches\":[1,%u],\"rows\":%u,\"measured_rows\":[%u,%u],\"complete\":%s,"
	       "\"complete_s\":",
	       c->large_batch, c->rows, c->measured[0], c->measured[1],
	       c->complete ? "true" : "false");
	ctl_json_number(stdout, c->complete_s);
	printf(",\"batch\":");
	ctl_json_number(stdout, c->batch);
	printf(",\"layers\":[");
	for (unsigned l = 0; l < c->layer_count; l++) {
		const struct bitmix_cost_layer *y = &layers[l];
		int first = 1;

		printf("%s{\"name\":", l ? "," : "");
		ctl_json_string(stdout, y->name);
		printf(",\"bits\":[");
		for (int b = 2; b <= 8; b++) {
			if (!(y->allowed & (1u << b)))
				continue;
			printf("%s{\"bits\":%d,\"ns\":[", first ? "" : ",", b);
			ctl_json_number(stdout, y->ns[0][b]);
			printf(",");
			ctl_json_number(stdout, y->ns[1][b]);
			printf("],\"measured\":[%s,%s],\"pruned\":%s}",
			       y->measured[0] & (1u << b) ? "true" : "false",
			       y->measured[1] & (1u << b) ? "true" : "false",
			       y->pruned & (1u << b) ? "true" : "false");
			first = 0;
		}
		printf("]}");
	}
	printf("]}\n");
}

void ctl_cost_print(const char *model, const struct bitmix_cost_info *c,
		    const struct bitmix_cost_layer *layers, bool json)
{
	if (json)
		print_json(model, c, layers);
	else
		print_text(model, c, layers);
}

int ctl_cost(struct bitmix *bm, int argc, char **argv, bool json)
{
	struct bitmix_cost_layer *layers = calloc(CTL_COST_MAX_LAYERS, sizeof(*layers));
	struct bitmix_cost_info info;
	int r = 0;

	if (argc != 1) {
		fputs("usage: bitmixctl [--json] cost MODEL\n", stderr);
		free(layers);
		return 2;
	}
	if (!layers) {
		fputs("bitmixctl: out of memory\n", stderr);
		return 1;
	}
	if (bitmix_get_cost(bm, argv[0], &info, layers, CTL_COST_MAX_LAYERS) < 0)
		r = fail(bm, "cost");
	else
		ctl_cost_print(argv[0], &info, layers, json);
	free(layers);
	return r;
}
