/* SPDX-License-Identifier: MIT */
/*
 * bmx_gen.c — write .bmx models with seeded random weights (tests, benchmarks, the placeholder
 * model), and describe any .bmx file after the loader has validated it.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bmx_model.h"
#include "bmx_writer.h"
#include "bmx_arch.h"

static const char *op_names[] = { "?",	  "input",   "conv2d",	"linear",
				  "add",  "maxpool", "avgpool", "global_avgpool",
				  "relu", "relu6",   "flatten", "softmax" };

static void usage(FILE *f)
{
	fputs("Usage: bmx-gen --arch tiny|fmnist|resnet18|mlp4096 [--seed N] [--name NAME] -o FILE\n"
	      "       bmx-gen --info FILE [--time]\n"
	      "Write a model with random weights, or validate and describe FILE\n"
	      "(--time: also time load + validation, best of 20).\n",
	      f);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int info(const char *path, int time_it)
{
	struct bmx_error err;
	struct bmx_model *m;
	double best = 1e9;

	if (bmx_model_load_file(path, &m, &err) < 0) {
		fprintf(stderr, "bmx-gen: %s: %s\n", path, err.msg);
		return 1;
	}
	printf("%s: model \"%s\", %zu bytes, input %ux%ux%u, %u outputs, %u nodes, %u layers, "
	       "%llu MACs/sample\n",
	       path, m->info->name, m->size, m->info->input_h, m->info->input_w, m->info->input_c,
	       m->info->output_size, m->node_count, m->layer_count,
	       (unsigned long long)m->total_macs);
	for (uint32_t i = 0; i < m->layer_count; i++) {
		const struct bmx_layer_view *v = &m->views[i];

		printf("  layer %2u %-18s %-6s %3ux%-3ux%4u -> %3ux%-3ux%4u  bits", i, v->raw->name,
		       op_names[v->node->op], v->in_h, v->in_w, v->in_c, v->out_h, v->out_w,
		       v->out_c);
		for (int b = 0; b < v->nbits; b++)
			printf(" %u", v->bits[b]);
		printf("  MACs %llu  tbn_prev %d  sensitivity", (unsigned long long)v->raw->macs,
		       v->raw->tbn_prev);
		for (int b = 0; b < v->nbits; b++)
			printf(" %.3g", (double)v->sensitivity[b]);
		printf("\n");
	}
	bmx_model_free(m);
	for (int i = 0; time_it && i < 20; i++) {
		double t0 = now_s();

		if (bmx_model_load_file(path, &m, &err) < 0)
			return 1;
		if (now_s() - t0 < best)
			best = now_s() - t0;
		bmx_model_free(m);
	}
	if (time_it)
		printf("load + validate: %.3f ms (best of 20)\n", best * 1e3);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "arch", required_argument, NULL, 'a' },
		{ "seed", required_argument, NULL, 's' },
		{ "name", required_argument, NULL, 'n' },
		{ "output", required_argument, NULL, 'o' },
		{ "info", required_argument, NULL, 'i' },
		{ "time", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *arch = NULL, *name = NULL, *out = NULL, *info_path = NULL;
	unsigned long long seed = 1;
	int c, time_it = 0, r;
	void *buf;
	size_t size;
	FILE *f;

	while ((c = getopt_long(argc, argv, "a:s:n:o:i:th", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			arch = optarg;
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			name = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'i':
			info_path = optarg;
			break;
		case 't':
			time_it = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (info_path)
		return info(info_path, time_it);
	if (!arch || !out || optind != argc) {
		usage(stderr);
		return 2;
	}
	r = bmx_build_arch(arch, seed, name ? name : arch, &buf, &size);
	if (r < 0) {
		fprintf(stderr, "bmx-gen: cannot build \"%s\": %s\n", arch,
			r == -EINVAL ? "unknown architecture (tiny, fmnist, resnet18, mlp4096)"
				     : strerror(-r));
		return 1;
	}
	char tmp[4096];

	snprintf(tmp, sizeof(tmp), "%s.tmp", out);
	f = fopen(tmp, "wb");
	if (!f || fwrite(buf, 1, size, f) != size || fclose(f) != 0 || rename(tmp, out) < 0) {
		fprintf(stderr, "bmx-gen: writing %s: %s\n", out, strerror(errno));
		free(buf);
		return 1;
	}
	free(buf);
	return info(out, 0);
}
