/* SPDX-License-Identifier: MIT */
/*
 * bmx_arch.c — standard architectures with seeded random weights, for tests, benchmarks and the
 * placeholder model: "tiny" (every op, small), "fmnist" (the residual CNN the Fashion-MNIST model
 * is trained as), "resnet18" (ImageNet ResNet-18 shapes) and "mlp4096" (Fashion-MNIST-shaped
 * input through LINEAR layers 784 -> 4096 -> 4096 -> 4096 -> 10: batch-1 GEMVs whose 37 MB of
 * 8-bit weights come from DRAM, where bits are bytes). The random parameters keep
 * activations in the range the activation steps cover, so that outputs depend on every layer.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bmx_writer.h"
#include "bmx_arch.h"

#define MASK_ALL 0x01fc
#define MASK_8 0x0100

struct arch {
	struct bmx_writer *w;
	uint64_t seed;
};

static uint64_t rnd(struct arch *a)
{
	uint64_t z = (a->seed += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static float unit(struct arch *a)
{
	return (float)((double)(rnd(a) >> 11) / 4503599627370496.0 - 1.0);
}

struct conv {
	uint32_t out_c, k, stride, pad, groups;
	uint16_t mask;
	int tbn_prev; /* layer index or -1 */
	int first;    /* input in [0, 1]: 8-bit step 1/255 */
	int act_signed;
};

/* Add a CONV2D (k > 0) or LINEAR (k == 0) node with random parameters; returns the node. */
static int add_weighted(struct arch *a, int input, const struct conv *cv, const char *name)
{
	struct bmx_node_spec s = { .op = cv->k ? BMX_OP_CONV2D : BMX_OP_LINEAR,
				   .inputs = { input, -1 },
				   .out_c = cv->out_c,
				   .kernel_h = (uint16_t)cv->k,
				   .kernel_w = (uint16_t)cv->k,
				   .stride_h = (uint16_t)cv->stride,
				   .stride_w = (uint16_t)cv->stride,
				   .pad_top = (uint16_t)cv->pad,
				   .pad_left = (uint16_t)cv->pad,
				   .pad_bottom = (uint16_t)cv->pad,
				   .pad_right = (uint16_t)cv->pad,
				   .groups = cv->groups,
				   .name = name,
				   .bits_mask = cv->mask,
				   .tbn_prev = cv->tbn_prev,
				   .act_signed = (uint8_t)cv->act_signed };
	uint32_t h, w, c, nb = (uint32_t)__builtin_popcount(cv->mask);
	uint64_t k, n;
	int r = -ENOMEM, node;
	int8_t *wt = NULL;
	float *ws = NULL, *as = NULL, *tbn = NULL, *sens = NULL;

	bmx_writer_shape(a->w, input, &h, &w, &c);
	k = cv->k ? (uint64_t)cv->k * cv->k * (c / (cv->groups ? cv->groups : 1))
		  : (uint64_t)h * w * c;
	n = (uint64_t)cv->out_c * k;
	wt = malloc(n);
	ws = malloc(cv->out_c * sizeof(float));
	as = malloc(nb * sizeof(float));
	sens = malloc(nb * sizeof(float));
	/* The writer copies as many TBN rows as the previous layer has bit-widths (<= 7). */
	tbn = malloc((size_t)8 * nb * 2 * cv->out_c * sizeof(float));
	if (!wt || !ws || !as || !sens || !tbn)
		goto out;
	for (uint64_t i = 0; i < n; i++) {
		/* Sum of two uniforms: a bell-ish shape, like trained weights. */
		int v = (int)(rnd(a) % 128) + (int)(rnd(a) % 129) - 128;

		wt[i] = (int8_t)v;
	}
	for (uint32_t o = 0; o < cv->out_c; o++)
		ws[o] = (float)(1.0 / (52.0 * 1.2 * sqrt((double)k))) * (1.0f + 0.2f * unit(a));
	for (uint32_t b = 0, i = 0; b <= 8; b++) {
		if (!(cv->mask & (1u << b)))
			continue;
		as[i] = cv->first ? 1.0f / 255.0f : 4.0f / (float)((1u << b) - 1);
		sens[i++] = (float)(ldexp(1.0, -2 * (int)b) * (1.0 + 0.5 * unit(a)));
	}
	s.a_step = as;
	s.sensitivity = sens;
	s.weights = wt;
	s.w_scale = ws;
	s.tbn = tbn;
	for (uint32_t p = 0; p < 8 * nb; p++)
		for (uint32_t o = 0; o < cv->out_c; o++) {
			tbn[(size_t)p * 2 * cv->out_c + o] = 1.0f + 0.1f * unit(a);
			tbn[(size_t)p * 2 * cv->out_c + cv->out_c + o] = 0.1f * unit(a);
		}
	node = bmx_writer_add(a->w, &s);
	r = node;
out:
	free(wt);
	free(ws);
	free(as);
	free(sens);
	free(tbn);
	return r;
}

static int add_op(struct arch *a, uint16_t op, int in0, int in1)
{
	struct bmx_node_spec s = { .op = op, .inputs = { in0, in1 } };

	return bmx_writer_add(a->w, &s);
}

static int add_pool(struct arch *a, uint16_t op, int in, uint16_t k, uint16_t stride, uint16_t pad)
{
	struct bmx_node_spec s = { .op = op,
				   .inputs = { in, -1 },
				   .kernel_h = k,
				   .kernel_w = k,
				   .stride_h = stride,
				   .stride_w = stride,
				   .pad_top = pad,
				   .pad_left = pad,
				   .pad_bottom = pad,
				   .pad_right = pad };

	return bmx_writer_add(a->w, &s);
}

#define TRY(x)                          \
	do {                            \
		if ((x) < 0)            \
			return -EINVAL; \
	} while (0)

static int layer(struct arch *a, int node)
{
	return bmx_writer_layer_of(a->w, node);
}

static int build_tiny(struct arch *a)
{
	int x, c1, r1, d, sum;

	TRY(c1 = add_weighted(a, 0, &(struct conv){ 8, 3, 1, 1, 1, MASK_ALL, -1, 1, 0 }, "conv1"));
	TRY(r1 = add_op(a, BMX_OP_RELU6, c1, -1));
	TRY(d = add_weighted(a, r1, &(struct conv){ 8, 3, 1, 1, 8, MASK_ALL, layer(a, c1), 0, 0 },
			     "dw"));
	TRY(sum = add_op(a, BMX_OP_ADD, d, r1));
	TRY(x = add_op(a, BMX_OP_RELU, sum, -1));
	TRY(x = add_pool(a, BMX_OP_MAXPOOL, x, 2, 2, 0));
	TRY(x = add_pool(a, BMX_OP_AVGPOOL, x, 3, 1, 1));
	TRY(x = add_op(a, BMX_OP_FLATTEN, x, -1));
	TRY(x = add_weighted(a, x, &(struct conv){ 5, 0, 1, 0, 1, MASK_ALL, layer(a, d), 0, 1 },
			     "fc"));
	TRY(add_op(a, BMX_OP_SOFTMAX, x, -1));
	return 0;
}

static int build_fmnist(struct arch *a)
{
	int stem, x, c1, c2, b1, c3, c4, c5, sc, b2, fc;

	TRY(stem = add_weighted(a, 0, &(struct conv){ 16, 3, 1, 1, 1, MASK_8, -1, 1, 0 }, "stem"));
	TRY(x = add_op(a, BMX_OP_RELU, stem, -1));
	TRY(c1 = add_weighted(a, x,
			      &(struct conv){ 16, 3, 1, 1, 1, MASK_ALL, layer(a, stem), 0, 0 },
			      "block1.conv1"));
	TRY(c2 = add_op(a, BMX_OP_RELU, c1, -1));
	TRY(c2 = add_weighted(a, c2, &(struct conv){ 16, 3, 1, 1, 1, MASK_ALL, layer(a, c1), 0, 0 },
			      "block1.conv2"));
	TRY(b1 = add_op(a, BMX_OP_ADD, c2, x));
	TRY(b1 = add_op(a, BMX_OP_RELU, b1, -1));
	TRY(c3 = add_weighted(a, b1, &(struct conv){ 32, 3, 2, 1, 1, MASK_ALL, layer(a, c2), 0, 0 },
			      "block2.conv1"));
	TRY(x = add_op(a, BMX_OP_RELU, c3, -1));
	TRY(c4 = add_weighted(a, x, &(struct conv){ 32, 3, 1, 1, 32, MASK_ALL, layer(a, c3), 0, 0 },
			      "block2.dw"));
	TRY(x = add_op(a, BMX_OP_RELU, c4, -1));
	TRY(c5 = add_weighted(a, x, &(struct conv){ 32, 1, 1, 0, 1, MASK_ALL, layer(a, c4), 0, 0 },
			      "block2.pw"));
	TRY(sc = add_weighted(a, b1, &(struct conv){ 32, 1, 2, 0, 1, MASK_ALL, layer(a, c2), 0, 0 },
			      "block2.down"));
	TRY(b2 = add_op(a, BMX_OP_ADD, c5, sc));
	TRY(b2 = add_op(a, BMX_OP_RELU, b2, -1));
	TRY(x = add_op(a, BMX_OP_GLOBAL_AVGPOOL, b2, -1));
	TRY(fc = add_weighted(a, x, &(struct conv){ 10, 0, 1, 0, 1, MASK_8, layer(a, c5), 0, 0 },
			      "fc"));
	return bmx_writer_set_output(a->w, fc);
}

/*
 * "fmnist" with a CASCADE (3 configurations that share block1.conv1 at 3 bits, so an escalation
 * resumes after it) and a POLICY on the ReLU after the stem (fused into the stem on fast paths).
 * The thresholds and the predictor are arbitrary: tests override thresholds as they need.
 */
static int build_fmnist_adaptive(struct arch *a)
{
	static const uint8_t cascade[3 * 8] = { 8, 3, 2, 2, 2, 2, 2, 8, 8, 3, 4, 4,
						4, 4, 4, 8, 8, 3, 8, 8, 8, 8, 8, 8 };
	static const uint8_t policy[3 * 8] = { 8, 2, 2, 2, 2, 2, 2, 8, 8, 4, 4, 4,
					       4, 4, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8 };
	static const float thresholds[2] = { 0.5f, 0.6f };
	float weights[2 * 16], bias[2] = { 0.0f, 0.1f };
	int r = build_fmnist(a);

	for (int i = 0; i < 32; i++)
		weights[i] = unit(a);
	if (r == 0)
		r = bmx_writer_set_cascade(
			a->w, &(struct bmx_cascade_spec){ .n_configs = 3,
							  .confidence = BMX_CONFIDENCE_MAX_PROB,
							  .accuracy_target = 90.0f,
							  .validation_accuracy = 90.5f,
							  .thresholds = thresholds,
							  .bits = cascade });
	if (r == 0)
		r = bmx_writer_set_policy(a->w,
					  &(struct bmx_policy_spec){ .n_configs = 3,
								     .feature_node = 2,
								     .n_features = 16,
								     .threshold = 0.0f,
								     .accuracy_target = 90.0f,
								     .validation_accuracy = 90.5f,
								     .bits = policy,
								     .weights = weights,
								     .bias = bias });
	return r;
}

/* tiny with both adaptive sections: small enough for the loader's fuzz target (fuzz/). */
static int build_tiny_adaptive(struct arch *a)
{
	static const uint8_t cascade[3 * 3] = { 2, 2, 8, 4, 4, 8, 8, 8, 8 };
	static const uint8_t policy[3 * 3] = { 8, 2, 8, 8, 4, 8, 8, 8, 8 };
	static const float thresholds[2] = { 0.5f, 0.6f };
	float weights[2 * 8], bias[2] = { 0.0f, 0.1f };
	int r = build_tiny(a);

	for (int i = 0; i < 16; i++)
		weights[i] = unit(a);
	if (r == 0)
		r = bmx_writer_set_cascade(
			a->w, &(struct bmx_cascade_spec){ .n_configs = 3,
							  .confidence = BMX_CONFIDENCE_MAX_PROB,
							  .accuracy_target = 90.0f,
							  .validation_accuracy = 90.5f,
							  .thresholds = thresholds,
							  .bits = cascade });
	if (r == 0)
		r = bmx_writer_set_policy(a->w,
					  &(struct bmx_policy_spec){ .n_configs = 3,
								     .feature_node = 2,
								     .n_features = 8,
								     .threshold = 0.0f,
								     .accuracy_target = 90.0f,
								     .validation_accuracy = 90.5f,
								     .bits = policy,
								     .weights = weights,
								     .bias = bias });
	return r;
}

static int build_resnet18(struct arch *a)
{
	static const uint32_t widths[4] = { 64, 128, 256, 512 };
	char name[32];
	int x, stem, prev_layer;

	TRY(stem = add_weighted(a, 0, &(struct conv){ 64, 7, 2, 3, 1, MASK_8, -1, 1, 0 }, "conv1"));
	TRY(x = add_op(a, BMX_OP_RELU, stem, -1));
	TRY(x = add_pool(a, BMX_OP_MAXPOOL, x, 3, 2, 1));
	prev_layer = layer(a, stem);
	for (int s = 0; s < 4; s++)
		for (int b = 0; b < 2; b++) {
			uint32_t stride = (s > 0 && b == 0) ? 2 : 1;
			int c1, c2, shortcut = x, in_layer = prev_layer;

			snprintf(name, sizeof(name), "layer%d.%d.conv1", s + 1, b);
			TRY(c1 = add_weighted(a, x,
					      &(struct conv){ widths[s], 3, stride, 1, 1, MASK_ALL,
							      in_layer, 0, 0 },
					      name));
			TRY(c2 = add_op(a, BMX_OP_RELU, c1, -1));
			snprintf(name, sizeof(name), "layer%d.%d.conv2", s + 1, b);
			TRY(c2 = add_weighted(a, c2,
					      &(struct conv){ widths[s], 3, 1, 1, 1, MASK_ALL,
							      layer(a, c1), 0, 0 },
					      name));
			if (stride == 2) {
				snprintf(name, sizeof(name), "layer%d.%d.down", s + 1, b);
				TRY(shortcut =
					    add_weighted(a, x,
							 &(struct conv){ widths[s], 1, 2, 0, 1,
									 MASK_ALL, in_layer, 0, 0 },
							 name));
			}
			TRY(x = add_op(a, BMX_OP_ADD, c2, shortcut));
			TRY(x = add_op(a, BMX_OP_RELU, x, -1));
			prev_layer = layer(a, c2);
		}
	TRY(x = add_op(a, BMX_OP_GLOBAL_AVGPOOL, x, -1));
	TRY(x = add_weighted(a, x, &(struct conv){ 1000, 0, 1, 0, 1, MASK_8, prev_layer, 0, 0 },
			     "fc"));
	return bmx_writer_set_output(a->w, x);
}

static int build_mlp4096(struct arch *a)
{
	char name[16];
	int x = 0, prev = -1;

	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "fc%d", i + 1);
		TRY(x = add_weighted(a, x,
				     &(struct conv){ 4096, 0, 1, 0, 1, MASK_ALL, prev, i == 0, 0 },
				     name));
		prev = layer(a, x);
		TRY(x = add_op(a, BMX_OP_RELU, x, -1));
	}
	TRY(x = add_weighted(a, x, &(struct conv){ 10, 0, 1, 0, 1, MASK_8, prev, 0, 0 }, "out"));
	return bmx_writer_set_output(a->w, x);
}

int bmx_build_arch(const char *arch, uint64_t seed, const char *name, void **out, size_t *size)
{
	static const struct {
		const char *name;
		uint32_t h, w, c;
		int (*build)(struct arch *a);
	} archs[] = {
		{ "tiny", 8, 8, 2, build_tiny },
		{ "tiny-adaptive", 8, 8, 2, build_tiny_adaptive },
		{ "fmnist", 28, 28, 1, build_fmnist },
		{ "fmnist-adaptive", 28, 28, 1, build_fmnist_adaptive },
		{ "resnet18", 224, 224, 3, build_resnet18 },
		{ "mlp4096", 28, 28, 1, build_mlp4096 },
	};

	for (size_t i = 0; i < sizeof(archs) / sizeof(archs[0]); i++) {
		struct arch a = { .seed = seed };
		int r;

		if (strcmp(arch, archs[i].name) != 0)
			continue;
		a.w = bmx_writer_new(name, archs[i].h, archs[i].w, archs[i].c, MASK_ALL);
		if (!a.w)
			return -ENOMEM;
		r = archs[i].build(&a);
		if (r >= 0)
			r = bmx_writer_finish(a.w, out, size);
		bmx_writer_free(a.w);
		return r < 0 ? r : 0;
	}
	return -EINVAL;
}
