/* SPDX-License-Identifier: MIT */
/*
 * bmx_adapt.c — the C engine's side of per-sample adaptive precision, for the trainer and the
 * report (docs/adaptive.md):
 *
 *   dump  runs labelled images at given configurations and writes their outputs and the
 *         pooled features of one node, so that the trainer calibrates cascade thresholds and fits
 *         the policy on exactly the numbers the engine computes (tools/train/adaptive.py);
 *   eval  runs settings (uniform or per-layer bits, the bit allocator at a BitOps budget, the
 *         cascade, the policy) over the images and prints, per setting, top-1 accuracy, average
 *         BitOps per sample and measured engine time per sample at batch 1 and batch 16 on one
 *         thread (the best of two passes), as one tab-separated line (tools/abn-report.sh).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bit_allocator.h"
#include "bmx_adaptive.h"
#include "bits_spec.h"
#include "image_io.h"

#define MAX_CONFIGS 32
#define BATCH 16u

struct data {
	const struct bmx_model *m;
	struct bmx_engine *e;
	float *inputs; /* count * input size */
	uint8_t *labels;
	uint32_t count;
};

static int load_data(struct data *d, const char *images, const char *labels, uint32_t first,
		     uint32_t count)
{
	const uint64_t in_n = bmx_model_input_size(d->m);
	struct image_set is;
	struct label_set ls;
	char err[256];

	if (image_set_read(images, &is, err, sizeof(err)) < 0 ||
	    label_set_read(labels, &ls, err, sizeof(err)) < 0) {
		fprintf(stderr, "bmx-adapt: %s\n", err);
		return -EINVAL;
	}
	if ((uint64_t)is.h * is.w * is.c != in_n || is.count != ls.count || first >= is.count) {
		fprintf(stderr,
			"bmx-adapt: %s: shape, label count or --first does not fit the model\n",
			images);
		return -EINVAL;
	}
	d->count = count && count < is.count - first ? count : is.count - first;
	d->inputs = malloc((uint64_t)d->count * in_n * sizeof(float));
	d->labels = malloc(d->count);
	for (uint64_t k = 0; d->inputs && k < (uint64_t)d->count * in_n; k++)
		d->inputs[k] =
			(float)is.pixels[(uint64_t)first * in_n + k] / 255.0f; /* as bitmixctl */
	if (d->labels)
		memcpy(d->labels, ls.labels + first, d->count);
	image_set_free(&is);
	label_set_free(&ls);
	return d->inputs && d->labels ? 0 : -ENOMEM;
}

static uint32_t argmax(const float *row, uint32_t n)
{
	uint32_t best = 0;

	for (uint32_t i = 1; i < n; i++)
		if (row[i] > row[best])
			best = i;
	return best;
}

static int write_file(const char *dir, const char *name, const void *p, size_t size)
{
	char path[4096];
	FILE *f;
	int r = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, size, f) != size)
		r = -EIO;
	if (f && fclose(f) != 0)
		r = -EIO;
	if (r < 0)
		fprintf(stderr, "bmx-adapt: writing %s failed\n", path);
	return r;
}

/*
 * meta.json: per configuration its per-layer bits and the BitOps of the layers at positions >= p
 * for every p (what a resumed run costs), and the first position where two configurations
 * differ: the trainer prices a cascade exactly as bmx_adaptive_run() counts it.
 */
static int write_meta(const struct data *d, char **specs, unsigned n, const char *dir)
{
	static struct bmx_layer_bits bits[MAX_CONFIGS][BMX_MAX_LAYERS];
	char path[4096];
	FILE *f;
	int r = 0;

	for (unsigned s = 0; s < n; s++)
		if (bits_spec_parse("bmx-adapt", d->m, specs[s], bits[s]) < 0)
			return -EINVAL;
	snprintf(path, sizeof(path), "%s/meta.json", dir);
	if (!(f = fopen(path, "w")))
		return -errno;
	fprintf(f, "{\"count\": %u, \"outputs\": %llu, \"nodes\": %u,\n \"configs\": [", d->count,
		(unsigned long long)bmx_model_output_size(d->m), d->m->node_count);
	for (unsigned s = 0; s < n; s++) {
		fprintf(f, "%s\n  {\"spec\": \"%s\", \"bits\": [", s ? "," : "", specs[s]);
		for (uint32_t l = 0; l < d->m->layer_count; l++)
			fprintf(f, "%s%u", l ? ", " : "", bits[s][l].w_bits);
		fprintf(f, "], \"bitops_from\": [");
		for (uint32_t p = 0; p <= d->m->node_count; p++)
			fprintf(f, "%s%llu", p ? ", " : "",
				(unsigned long long)bmx_bitops(d->m, bits[s], p));
		fprintf(f, "], \"first_difference\": [");
		for (unsigned t = 0; t < n; t++)
			fprintf(f, "%s%u", t ? ", " : "",
				bmx_engine_first_difference(d->e, bits[s], bits[t]));
		fprintf(f, "]}");
	}
	fprintf(f, "]}\n");
	if (fclose(f) != 0)
		r = -EIO;
	return r;
}

/*
 * dump: labels.u8 [count], outputs.f32 [configs][count][output size], and, with a feature node,
 * features.f32 [count][channels] pooled after running the first configuration up to it.
 */
static int dump(struct data *d, char **specs, unsigned n_specs, int feature_node, const char *dir)
{
	const uint32_t out_n = (uint32_t)bmx_model_output_size(d->m);
	const uint64_t in_n = bmx_model_input_size(d->m);
	struct bmx_layer_bits bits[BMX_MAX_LAYERS];
	void *scratch =
		aligned_alloc(64, (bmx_engine_scratch_size(d->e, BATCH) + 63) & ~(size_t)63);
	float *out = malloc((size_t)n_specs * d->count * out_n * sizeof(float)), *feat = NULL;
	const struct bmx_node *fn = feature_node >= 0 ? &d->m->nodes[feature_node] : NULL;
	int r = scratch && out ? 0 : -ENOMEM;

	for (unsigned s = 0; r == 0 && s < n_specs; s++) {
		if ((r = bits_spec_parse("bmx-adapt", d->m, specs[s], bits)) < 0)
			break;
		for (uint32_t i = 0; r == 0 && i < d->count; i += BATCH) {
			uint32_t n = d->count - i < BATCH ? d->count - i : BATCH;

			r = bmx_engine_run(d->e, bits, n, d->inputs + i * in_n,
					   out + ((size_t)s * d->count + i) * out_n, scratch);
		}
	}
	if (r == 0 && fn) {
		const uint64_t elems = (uint64_t)fn->out_h * fn->out_w * fn->out_c;

		feat = malloc((size_t)d->count * fn->out_c * sizeof(float));
		r = feat ? bits_spec_parse("bmx-adapt", d->m, specs[0], bits) : -ENOMEM;
		for (uint32_t i = 0; r == 0 && i < d->count; i += BATCH) {
			uint32_t n = d->count - i < BATCH ? d->count - i : BATCH;
			const float *v;

			r = bmx_engine_run_range(d->e, bits, n, d->inputs + i * in_n, scratch, 0,
						 d->m->position[feature_node] + 1, NULL);
			v = bmx_engine_value(d->e, n, scratch, (uint32_t)feature_node);
			if (!v)
				r = -EINVAL;
			for (uint32_t j = 0; r == 0 && j < n; j++)
				bmx_pool_features(v + j * elems, fn->out_h * fn->out_w, fn->out_c,
						  feat + (size_t)(i + j) * fn->out_c);
		}
	}
	if (r == 0)
		r = write_file(dir, "labels.u8", d->labels, d->count);
	if (r == 0)
		r = write_file(dir, "outputs.f32", out,
			       (size_t)n_specs * d->count * out_n * sizeof(float));
	if (r == 0 && feat)
		r = write_file(dir, "features.f32", feat,
			       (size_t)d->count * fn->out_c * sizeof(float));
	if (r == 0)
		r = write_meta(d, specs, n_specs, dir);
	if (r == 0) {
		printf("dumped %u images x %u configurations to %s\n", d->count, n_specs, dir);
		for (unsigned s = 0; s < n_specs; s++) {
			uint32_t correct = 0;

			for (uint32_t i = 0; i < d->count; i++)
				correct += argmax(out + ((size_t)s * d->count + i) * out_n,
						  out_n) == d->labels[i];
			printf("config %-20s %.2f%%\n", specs[s], 100.0 * correct / d->count);
		}
	}
	free(scratch);
	free(out);
	free(feat);
	return r;
}

/* A setting of eval: a mode, its ceiling (the configuration for OFF), thresholds. */
struct setting {
	char name[96];
	struct bmx_adaptive_request req;
	struct bmx_layer_bits ceiling[BMX_MAX_LAYERS];
	float thresholds[BMX_MAX_ADAPTIVE_CONFIGS];
};

/* The bit allocator (daemon/governor/bit_allocator.c) at BUDGET x the BitOps of uniform 8 bits. */
static int alloc_bits(const struct bmx_model *m, double budget, struct bmx_layer_bits *bits)
{
	struct alloc_layer *layers = calloc(m->layer_count, sizeof(*layers));
	struct bit_allocator *a = NULL;
	struct alloc_result res;
	double full = 0;
	int r;

	if (!layers)
		return -ENOMEM;
	for (uint32_t l = 0; l < m->layer_count; l++) {
		const struct bmx_layer_view *v = &m->views[l];

		layers[l].allowed = v->raw->bits_mask;
		for (unsigned i = 0; i < v->nbits; i++) {
			layers[l].sensitivity[v->bits[i]] = v->sensitivity[i];
			layers[l].cost[v->bits[i]] = (double)v->raw->macs * v->bits[i] * v->bits[i];
		}
		full += (double)v->raw->macs * 64;
	}
	r = bit_allocator_new(m->layer_count, 512, &a);
	if (r == 0)
		r = bit_allocator_solve(a, layers, budget * full, ALLOC_AUTO, &res);
	for (uint32_t l = 0; r == 0 && l < m->layer_count; l++)
		bits[l] = (struct bmx_layer_bits){ res.bits[l], res.bits[l] };
	bit_allocator_free(a);
	free(layers);
	return r;
}

/* "uniform:B", "bits:B,B,...", "alloc:FRACTION", "cascade[:T,T..]", "policy[:T]", "+noreuse". */
static int parse_setting(const struct bmx_model *m, const char *text, struct setting *s)
{
	char buf[256], *arg, *plus;
	int r = 0;

	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", text);
	snprintf(buf, sizeof(buf), "%s", text);
	if ((plus = strstr(buf, "+noreuse")))
		*plus = '\0', s->req.no_reuse = 1;
	arg = strchr(buf, ':');
	if (arg)
		*arg++ = '\0';
	bits_spec_parse("bmx-adapt", m, "8", s->ceiling);
	s->req.ceiling = s->ceiling;
	if (strcmp(buf, "uniform") == 0 || strcmp(buf, "bits") == 0) {
		r = arg ? bits_spec_parse("bmx-adapt", m, arg, s->ceiling) : -EINVAL;
	} else if (strcmp(buf, "alloc") == 0) {
		r = arg ? alloc_bits(m, strtod(arg, NULL), s->ceiling) : -EINVAL;
	} else if (strcmp(buf, "cascade") == 0 || strcmp(buf, "policy") == 0) {
		s->req.mode = buf[0] == 'c' ? BMX_ADAPTIVE_CASCADE : BMX_ADAPTIVE_POLICY;
		for (unsigned k = 0; arg && *arg && k < BMX_MAX_ADAPTIVE_CONFIGS; k++) {
			s->thresholds[k] = strtof(arg, &arg);
			s->req.thresholds = s->thresholds;
			if (*arg == ',')
				arg++;
		}
		if (!bmx_adaptive_supported(m, s->req.mode)) {
			fprintf(stderr, "bmx-adapt: %s: the model has no %s section\n", text, buf);
			return -EOPNOTSUPP;
		}
	} else {
		r = -EINVAL;
	}
	if (r < 0)
		fprintf(stderr,
			"bmx-adapt: setting %s: expected uniform:B, bits:B,.., alloc:FRACTION, "
			"cascade[:T,..] or policy[:T]\n",
			text);
	return r;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct pass {
	uint32_t correct, escalated;
	double bitops, seconds;
	uint32_t configs[BMX_MAX_ADAPTIVE_CONFIGS];
};

static int run_pass(const struct data *d, const struct setting *s, uint32_t batch, void *scratch,
		    struct pass *p)
{
	const uint32_t out_n = (uint32_t)bmx_model_output_size(d->m);
	const uint64_t in_n = bmx_model_input_size(d->m);
	struct bmx_adaptive_result res[BATCH];
	float out[BATCH * 64];
	double t0 = now_s();

	memset(p, 0, sizeof(*p));
	for (uint32_t i = 0; i < d->count; i += batch) {
		uint32_t n = d->count - i < batch ? d->count - i : batch;
		int r = bmx_adaptive_run(d->e, &s->req, n, d->inputs + i * in_n, out, scratch, NULL,
					 res);

		if (r < 0)
			return r;
		for (uint32_t j = 0; j < n; j++) {
			p->correct += argmax(out + j * out_n, out_n) == d->labels[i + j];
			p->bitops += (double)res[j].bitops;
			p->escalated += res[j].runs > 1;
			p->configs[res[j].config]++;
		}
	}
	p->seconds = now_s() - t0;
	return 0;
}

/*
 * The best time of REPEATS passes (the machine is shared: the minimum is the least disturbed);
 * every pass must make the same decisions.
 */
#define REPEATS 2

static int timed_passes(const struct data *d, const struct setting *s, uint32_t batch,
			void *scratch, struct pass *best)
{
	for (int k = 0; k < REPEATS; k++) {
		struct pass p;
		int r = run_pass(d, s, batch, scratch, &p);

		if (r < 0)
			return r;
		if (k > 0 && (p.correct != best->correct || p.bitops != best->bitops)) {
			fprintf(stderr, "bmx-adapt: %s: two passes disagree\n", s->name);
			return -EPROTO;
		}
		if (k == 0 || p.seconds < best->seconds)
			*best = p;
	}
	return 0;
}

/* One line per setting: name, accuracy %, BitOps/sample, % of uniform 8, us/sample b1 and b16. */
static int eval(struct data *d, char **texts, unsigned n)
{
	struct bmx_layer_bits u8[BMX_MAX_LAYERS];
	size_t size = bmx_adaptive_scratch_size(d->e, BATCH);
	void *scratch = aligned_alloc(64, (size + 63) & ~(size_t)63);
	double full;
	int r = scratch ? 0 : -ENOMEM;

	if (bmx_model_output_size(d->m) > 64)
		r = -EINVAL;
	bits_spec_parse("bmx-adapt", d->m, "8", u8);
	full = (double)bmx_bitops(d->m, u8, 0);
	printf("# setting\taccuracy_%%\tbitops_per_sample\tbitops_%%_of_u8\tus_per_sample_b1\t"
	       "us_per_sample_b16\tescalated_%%\tbits_or_config_counts\n");
	for (unsigned i = 0; r == 0 && i < n; i++) {
		struct setting s;
		struct pass b1, b16;

		if ((r = parse_setting(d->m, texts[i], &s)) < 0 ||
		    (r = timed_passes(d, &s, 1, scratch, &b1)) < 0 ||
		    (r = timed_passes(d, &s, BATCH, scratch, &b16)) < 0)
			break;
		if (b1.correct != b16.correct || b1.bitops != b16.bitops) {
			fprintf(stderr, "bmx-adapt: %s: batch 1 and batch 16 disagree\n", s.name);
			r = -EPROTO;
			break;
		}
		printf("%s\t%.2f\t%.0f\t%.2f\t%.1f\t%.1f\t%.2f\t", s.name,
		       100.0 * b1.correct / d->count, b1.bitops / d->count,
		       100.0 * b1.bitops / d->count / full, 1e6 * b1.seconds / d->count,
		       1e6 * b16.seconds / d->count, 100.0 * b1.escalated / d->count);
		if (s.req.mode == BMX_ADAPTIVE_OFF)
			for (uint32_t l = 0; l < d->m->layer_count; l++)
				printf("%s%u", l ? "," : "", s.ceiling[l].w_bits);
		else
			for (unsigned k = 0; k < BMX_MAX_ADAPTIVE_CONFIGS; k++)
				printf("%s%u", k ? "," : "", b1.configs[k]);
		printf("\n");
		fflush(stdout);
	}
	free(scratch);
	return r;
}

static void usage(FILE *f)
{
	fputs("Usage: bmx-adapt dump MODEL IMAGES LABELS --out DIR --config SPEC... [--feature-node N]\n"
	      "                      [--first I] [--count N] [--kernels PATH]\n"
	      "       bmx-adapt eval MODEL IMAGES LABELS SETTING... [--first I] [--count N] [--kernels PATH]\n"
	      "SPEC: one bit-width 2..8 for every layer, or one per layer (8,4,2,...).\n"
	      "SETTING: uniform:SPEC, alloc:FRACTION (of uniform 8's BitOps), cascade[:T,...],\n"
	      "policy[:T]; a +noreuse suffix reruns every layer on escalation. One thread.\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "config", required_argument, NULL, 'c' },
		{ "feature-node", required_argument, NULL, 'f' },
		{ "first", required_argument, NULL, 'F' },
		{ "count", required_argument, NULL, 'n' },
		{ "kernels", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	enum bmx_kernels_path path = BMX_KERNELS_AUTO;
	const char *dir = NULL;
	char *specs[MAX_CONFIGS];
	unsigned n_specs = 0;
	int feature_node = -1, c, r;
	uint32_t first = 0, count = 0;
	struct bmx_model *m = NULL;
	struct data d = { 0 };
	struct bmx_error err;

	while ((c = getopt_long(argc, argv, "o:c:f:F:n:k:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			dir = optarg;
			break;
		case 'c':
			if (n_specs == MAX_CONFIGS)
				return usage(stderr), 2;
			specs[n_specs++] = optarg;
			break;
		case 'f':
			feature_node = atoi(optarg);
			break;
		case 'F':
			first = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			count = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'k':
			if (bmx_kernels_parse(optarg, &path) < 0)
				return usage(stderr), 2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind + 4 > argc || (strcmp(argv[optind], "dump") == 0 && (!dir || !n_specs)) ||
	    (strcmp(argv[optind], "dump") != 0 && strcmp(argv[optind], "eval") != 0))
		return usage(stderr), 2;
	if (bmx_model_load_file(argv[optind + 1], &m, &err) < 0) {
		fprintf(stderr, "bmx-adapt: %s: %s\n", argv[optind + 1], err.msg);
		return 1;
	}
	if (feature_node >= (int)m->node_count) {
		fprintf(stderr, "bmx-adapt: --feature-node %d: the model has %u nodes\n",
			feature_node, m->node_count);
		bmx_model_free(m);
		return 2;
	}
	d.m = m;
	r = bmx_engine_new_path(m, path, &d.e);
	if (r == 0)
		r = load_data(&d, argv[optind + 2], argv[optind + 3], first, count);
	if (r == 0 && strcmp(argv[optind], "dump") == 0)
		r = dump(&d, specs, n_specs, feature_node, dir);
	else if (r == 0) {
		printf("# %s, %u images from %u, kernels %s\n", argv[optind + 1], d.count, first,
		       bmx_kernels_name(bmx_engine_path(d.e)));
		r = eval(&d, argv + optind + 4, (unsigned)(argc - optind - 4));
	}
	free(d.inputs);
	free(d.labels);
	bmx_engine_free(d.e);
	bmx_model_free(m);
	return r == 0 ? 0 : 1;
}
