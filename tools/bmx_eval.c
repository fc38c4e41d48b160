/* SPDX-License-Identifier: MIT */
/*
 * bmx_eval.c — measure a .bmx model on labelled images with the C engine: top-1 accuracy at
 * given per-layer bit-widths, at seeded random per-layer configurations (with their minimum,
 * mean, maximum and worst configuration), and raw logits for the trainer's cross-check. This is
 * what produces the accuracy table of models/README.md (tools/model-table.sh).
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bmx_engine.h"
#include "bits_spec.h"
#include "image_io.h"

#define BATCH 32u
#define MAX_THREADS 16
#define MAX_SPECS 64

struct eval {
	struct bmx_engine *engine;
	const struct bmx_model *model;
	float *inputs; /* count * input_size */
	const uint8_t *labels;
	uint32_t count;
	unsigned threads;
	float *logits; /* count * output_size, or NULL */
};

struct job {
	const struct eval *ev;
	const struct bmx_layer_bits *bits;
	uint32_t first, end; /* images [first, end) */
	uint32_t correct;
	int r;
};

static void *run_job(void *arg)
{
	struct job *j = arg;
	const struct eval *ev = j->ev;
	uint64_t in_n = bmx_model_input_size(ev->model), out_n = bmx_model_output_size(ev->model);
	size_t size = bmx_engine_scratch_size(ev->engine, BATCH);
	void *scratch = aligned_alloc(64, (size + 63) / 64 * 64);
	float *out = malloc(BATCH * out_n * sizeof(float));

	j->r = (!scratch || !out) ? -ENOMEM : 0;
	for (uint32_t i = j->first; j->r == 0 && i < j->end; i += BATCH) {
		uint32_t n = j->end - i < BATCH ? j->end - i : BATCH;

		j->r = bmx_engine_run(ev->engine, j->bits, n, ev->inputs + i * in_n, out, scratch);
		for (uint32_t s = 0; j->r == 0 && s < n; s++) {
			const float *row = out + s * out_n;
			uint32_t best = 0;

			for (uint32_t k = 1; k < out_n; k++)
				if (row[k] > row[best])
					best = k;
			j->correct += best == ev->labels[i + s];
			if (ev->logits)
				memcpy(ev->logits + (uint64_t)(i + s) * out_n, row,
				       out_n * sizeof(float));
		}
	}
	free(scratch);
	free(out);
	return NULL;
}

/* Top-1 accuracy in percent at BITS over all images, split across the threads; -1 on error. */
static double accuracy(const struct eval *ev, const struct bmx_layer_bits *bits)
{
	struct job jobs[MAX_THREADS];
	pthread_t tid[MAX_THREADS];
	uint32_t correct = 0, per = (ev->count + ev->threads - 1) / ev->threads;
	int failed = 0;

	for (unsigned t = 0; t < ev->threads; t++) {
		uint32_t first = t * per < ev->count ? t * per : ev->count;

		jobs[t] = (struct job){ ev,    bits,
					first, first + per < ev->count ? first + per : ev->count,
					0,     0 };
		if (pthread_create(&tid[t], NULL, run_job, &jobs[t]) != 0)
			run_job(&jobs[t]), tid[t] = 0;
	}
	for (unsigned t = 0; t < ev->threads; t++) {
		if (tid[t])
			pthread_join(tid[t], NULL);
		correct += jobs[t].correct;
		failed |= jobs[t].r != 0;
	}
	return failed ? -1.0 : 100.0 * correct / ev->count;
}

static void print_bits(FILE *f, const struct bmx_model *m, const struct bmx_layer_bits *bits)
{
	for (uint32_t i = 0; i < m->layer_count; i++)
		fprintf(f, "%s%u", i ? "," : "", bits[i].w_bits);
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/*
 * N random configurations: every layer with more than one bit-width draws one uniformly. Prints
 * one line per configuration, then min / mean / max, the worst configuration, and how each
 * compares with the uniform configuration at its lowest bit-width.
 */
static int random_configs(const struct eval *ev, unsigned n, uint64_t seed)
{
	const struct bmx_model *m = ev->model;
	struct bmx_layer_bits bits[BMX_MAX_LAYERS], worst[BMX_MAX_LAYERS];
	double uni[9] = { 0 }, sum = 0, lo = 101, hi = -1, margin = 1e9;
	unsigned below = 0;

	for (unsigned b = 2; b <= 8; b++) {
		char spec[4];

		snprintf(spec, sizeof(spec), "%u", b);
		if (bits_spec_parse("bmx-eval", m, spec, bits) < 0 ||
		    (uni[b] = accuracy(ev, bits)) < 0)
			return -EINVAL;
	}
	for (unsigned c = 0; c < n; c++) {
		unsigned low = 8;
		double acc;

		for (uint32_t i = 0; i < m->layer_count; i++) {
			const struct bmx_layer_view *lv = &m->views[i];
			uint8_t b = lv->bits[rnd(&seed) % lv->nbits];

			bits[i] = (struct bmx_layer_bits){ b, b };
			if (lv->nbits > 1 && b < low)
				low = b;
		}
		if ((acc = accuracy(ev, bits)) < 0)
			return -EINVAL;
		printf("random %3u  ", c);
		print_bits(stdout, m, bits);
		printf("  %.2f%%  (uniform %u: %.2f%%, %+.2f)\n", acc, low, uni[low],
		       acc - uni[low]);
		fflush(stdout);
		sum += acc;
		if (acc < lo)
			lo = acc, memcpy(worst, bits, sizeof(bits));
		if (acc > hi)
			hi = acc;
		if (acc - uni[low] < margin)
			margin = acc - uni[low];
		below += acc < uni[low] - 0.3;
	}
	printf("random configurations: %u, min %.2f%%, mean %.2f%%, max %.2f%%, worst ", n, lo,
	       sum / n, hi);
	print_bits(stdout, m, worst);
	printf("\nagainst the uniform configuration at their lowest bit-width: worst margin %+.2f, "
	       "%u of %u more than 0.3 below\n",
	       margin, below, n);
	return 0;
}

static int load_images(const char *images, const char *labels, uint32_t limit, struct eval *ev,
		       struct label_set *ls)
{
	struct image_set is;
	char err[256];
	uint64_t in_n = bmx_model_input_size(ev->model);

	if (image_set_read(images, &is, err, sizeof(err)) < 0 ||
	    label_set_read(labels, ls, err, sizeof(err)) < 0) {
		fprintf(stderr, "bmx-eval: %s\n", err);
		return -EINVAL;
	}
	ev->count = is.count < ls->count ? is.count : ls->count;
	if (limit && limit < ev->count)
		ev->count = limit;
	if ((uint64_t)is.h * is.w * is.c != in_n) {
		fprintf(stderr, "bmx-eval: %s: %ux%ux%u images, the model takes %llu values\n",
			images, is.h, is.w, is.c, (unsigned long long)in_n);
		image_set_free(&is);
		return -EINVAL;
	}
	ev->inputs = malloc((uint64_t)ev->count * in_n * sizeof(float));
	for (uint64_t k = 0; ev->inputs && k < (uint64_t)ev->count * in_n; k++)
		ev->inputs[k] = (float)is.pixels[k] / 255.0f; /* as bitmixctl feeds the daemon */
	image_set_free(&is);
	ev->labels = ls->labels;
	return ev->inputs ? 0 : -ENOMEM;
}

static void usage(FILE *f)
{
	fputs("Usage: bmx-eval MODEL IMAGES LABELS [--bits SPEC]... [--random N [--seed S]]\n"
	      "                [--limit N] [--threads T] [--logits FILE] [--kernels auto|ref|avx2|avx512]\n"
	      "Top-1 accuracy of MODEL with the C engine at each SPEC (one bit-width 2..8 for every\n"
	      "layer, or one per layer: 8,4,2,...), and at N seeded random per-layer configurations.\n"
	      "--logits FILE writes the float32 logits of every image at each SPEC, in order.\n",
	      f);
}

struct options {
	const char *specs[MAX_SPECS];
	unsigned n_specs, random, threads;
	unsigned long long seed;
	uint32_t limit;
	const char *logits;
	enum bmx_kernels_path path;
};

static int run(const struct options *o, struct eval *ev)
{
	const struct bmx_model *m = ev->model;
	uint64_t out_n = bmx_model_output_size(m);
	struct bmx_layer_bits bits[BMX_MAX_LAYERS];
	FILE *lf = NULL;
	int r = 0;

	if (o->logits && !(lf = fopen(o->logits, "wb"))) {
		fprintf(stderr, "bmx-eval: %s: %s\n", o->logits, strerror(errno));
		return -errno;
	}
	if (lf && !(ev->logits = malloc((uint64_t)ev->count * out_n * sizeof(float))))
		r = -ENOMEM;
	for (unsigned s = 0; r == 0 && s < o->n_specs; s++) {
		double acc;

		if ((r = bits_spec_parse("bmx-eval", m, o->specs[s], bits)) < 0)
			break;
		if ((acc = accuracy(ev, bits)) < 0) {
			r = -EINVAL;
			break;
		}
		printf("bits %-24s ", o->specs[s]);
		print_bits(stdout, m, bits);
		printf("  %.2f%% of %u images\n", acc, ev->count);
		if (lf && fwrite(ev->logits, sizeof(float) * out_n, ev->count, lf) != ev->count)
			r = -EIO;
	}
	free(ev->logits);
	ev->logits = NULL;
	if (lf && fclose(lf) != 0 && r == 0)
		r = -EIO;
	if (r == 0 && o->random)
		r = random_configs(ev, o->random, o->seed);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bits", required_argument, NULL, 'b' },
		{ "random", required_argument, NULL, 'r' },
		{ "seed", required_argument, NULL, 's' },
		{ "limit", required_argument, NULL, 'l' },
		{ "threads", required_argument, NULL, 't' },
		{ "logits", required_argument, NULL, 'L' },
		{ "kernels", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct options o = { .threads = 2, .seed = 1, .path = BMX_KERNELS_AUTO };
	struct eval ev = { 0 };
	struct label_set ls = { 0 };
	struct bmx_model *m = NULL;
	struct bmx_error err;
	int c, r;

	while ((c = getopt_long(argc, argv, "b:r:s:l:t:L:k:h", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (o.n_specs == MAX_SPECS) {
				fprintf(stderr, "bmx-eval: at most %d --bits\n", MAX_SPECS);
				return 2;
			}
			o.specs[o.n_specs++] = optarg;
			break;
		case 'r':
			o.random = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 's':
			o.seed = strtoull(optarg, NULL, 0);
			break;
		case 'l':
			o.limit = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 't':
			o.threads = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'L':
			o.logits = optarg;
			break;
		case 'k':
			if (bmx_kernels_parse(optarg, &o.path) < 0) {
				fprintf(stderr,
					"bmx-eval: --kernels %s: expected auto, ref, avx2 or avx512\n",
					optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind + 3 != argc || o.threads < 1 || o.threads > MAX_THREADS) {
		usage(stderr);
		return 2;
	}
	if (bmx_model_load_file(argv[optind], &m, &err) < 0) {
		fprintf(stderr, "bmx-eval: %s: %s\n", argv[optind], err.msg);
		return 1;
	}
	ev.model = m;
	ev.threads = o.threads;
	r = bmx_engine_new_path(m, o.path, &ev.engine);
	if (r == 0)
		r = load_images(argv[optind + 1], argv[optind + 2], o.limit, &ev, &ls);
	if (r == 0) {
		printf("# %s, kernels %s\n", argv[optind],
		       bmx_kernels_name(bmx_engine_path(ev.engine)));
		r = run(&o, &ev);
	}
	free(ev.inputs);
	label_set_free(&ls);
	bmx_engine_free(ev.engine);
	bmx_model_free(m);
	return r == 0 ? 0 : 1;
}
