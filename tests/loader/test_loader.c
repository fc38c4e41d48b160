/* SPDX-License-Identifier: MIT */
/*
 * test_loader.c — the .bmx loader: valid models round-trip through memory, a file and a memfd
 * without copying; each of many distinct corruptions is refused with a message that names the
 * section, the field and the byte offset; random mutations never crash it (ASan/UBSan watch).
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "bmx_model.h"
#include "bmx_writer.h"
#include "bmx_arch.h"

struct file {
	uint8_t *buf;
	size_t size;
};

static struct file build(const char *arch)
{
	struct file f;

	assert_int_equal(bmx_build_arch(arch, 7, arch, (void **)&f.buf, &f.size), 0);
	return f;
}

/* Pointers into the file, found through its own section table. */
static struct bmx_file_header *hdr(struct file *f)
{
	return (void *)f->buf;
}

static struct bmx_section *section(struct file *f, uint32_t type)
{
	struct bmx_section *tab = (void *)(f->buf + hdr(f)->section_table_offset);

	for (uint32_t i = 0; i < hdr(f)->section_count; i++)
		if (tab[i].type == type)
			return &tab[i];
	fail_msg("no section %u", type);
	return NULL;
}

static struct bmx_model_info *info(struct file *f)
{
	return (void *)(f->buf + section(f, BMX_SECTION_MODEL)->offset);
}

static struct bmx_node *node(struct file *f, uint32_t i)
{
	return (struct bmx_node *)(f->buf + section(f, BMX_SECTION_NODES)->offset) + i;
}

static struct bmx_layer *layer(struct file *f, uint32_t i)
{
	return (struct bmx_layer *)(f->buf + section(f, BMX_SECTION_LAYERS)->offset) + i;
}

static float *data_f32(struct file *f, const struct bmx_array *a)
{
	return (float *)(f->buf + section(f, BMX_SECTION_DATA)->offset + a->offset);
}

/* Load and expect refusal with every WANT substring in the message. */
static void expect_refused(struct file *f, const char *case_name, const char *want1,
			   const char *want2)
{
	struct bmx_error err = { { 0 } };
	struct bmx_model *m = (void *)1;
	int r = bmx_model_load_memory(f->buf, f->size, &m, &err);

	if (r != -EBADMSG)
		fail_msg("%s: load returned %d (expected -EBADMSG), message \"%s\"", case_name, r,
			 err.msg);
	assert_null(m);
	if (want1 && !strstr(err.msg, want1))
		fail_msg("%s: message \"%s\" lacks \"%s\"", case_name, err.msg, want1);
	if (want2 && !strstr(err.msg, want2))
		fail_msg("%s: message \"%s\" lacks \"%s\"", case_name, err.msg, want2);
	if (!strstr(err.msg, " at byte 0x"))
		fail_msg("%s: message \"%s\" names no byte offset", case_name, err.msg);
}

static void check_model(const struct bmx_model *m, const struct file *f)
{
	uint64_t macs = 0;

	assert_int_equal(m->size, f->size);
	for (uint32_t i = 0; i < m->layer_count; i++) {
		const struct bmx_layer_view *v = &m->views[i];

		/* Weights are read in place: every pointer lies inside the mapping. */
		assert_true((const uint8_t *)v->weights >= m->base &&
			    (const uint8_t *)v->weights + (size_t)v->out_c * v->reduction <=
				    m->base + m->size);
		assert_true((const uint8_t *)v->tbn > m->base &&
			    (const uint8_t *)(v->tbn + (size_t)v->tbn_rows * v->nbits * 2 *
							       v->out_c) <= m->base + m->size);
		assert_int_equal(v->raw->macs,
				 (uint64_t)v->out_h * v->out_w * v->out_c * v->reduction);
		assert_int_equal(v->nbits, __builtin_popcount(v->raw->bits_mask));
		for (int b = 0; b < v->nbits; b++)
			assert_int_equal(v->bit_index[v->bits[b]], b);
		assert_int_equal(v->node->layer, (int32_t)i);
		macs += v->raw->macs;
	}
	assert_int_equal(m->total_macs, macs);
	/* The execution order is topological: every input comes before its consumer. */
	for (uint32_t k = 0; k < m->node_count; k++) {
		const struct bmx_node *n = &m->nodes[m->order[k]];

		for (int j = 0; j < n->n_inputs; j++) {
			uint32_t pos = 0;

			while (m->order[pos] != (uint32_t)n->inputs[j])
				pos++;
			assert_true(pos < k);
		}
	}
}

static void test_round_trip(void **state)
{
	static const char *archs[] = { "tiny", "fmnist", "resnet18" };

	(void)state;
	for (size_t a = 0; a < 3; a++) {
		struct file f = build(archs[a]);
		struct bmx_error err;
		struct bmx_model *m;
		char path[] = "/tmp/bitmix-loader-XXXXXX";
		int fd;

		assert_int_equal(bmx_model_load_memory(f.buf, f.size, &m, &err), 0);
		assert_ptr_equal(m->base, f.buf); /* no copy */
		assert_string_equal(m->info->name, archs[a]);
		check_model(m, &f);
		bmx_model_free(m);

		fd = mkstemp(path);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, f.buf, f.size), (ssize_t)f.size);
		close(fd);
		if (bmx_model_load_file(path, &m, &err) < 0)
			fail_msg("%s", err.msg);
		check_model(m, &f);
		assert_memory_equal(m->base, f.buf, f.size);
		bmx_model_free(m);
		unlink(path);

		fd = memfd_create("model", MFD_CLOEXEC);
		assert_int_equal(write(fd, f.buf, f.size), (ssize_t)f.size);
		assert_int_equal(bmx_model_load_fd(fd, &m, &err), 0);
		check_model(m, &f);
		bmx_model_free(m);
		close(fd);
		free(f.buf);
	}
}

static void test_fmnist_shapes(void **state)
{
	struct file f = build("fmnist");
	struct bmx_error err;
	struct bmx_model *m;

	(void)state;
	assert_int_equal(bmx_model_load_memory(f.buf, f.size, &m, &err), 0);
	assert_int_equal(m->info->input_h, 28);
	assert_int_equal(m->info->output_size, 10);
	assert_true(m->layer_count >= 6);
	assert_int_equal(m->views[0].nbits, 1); /* the first layer stays at 8 bits */
	assert_int_equal(m->views[m->layer_count - 1].nbits, 1);
	assert_int_equal(m->views[1].nbits, 7);
	bmx_model_free(m);
	free(f.buf);
}

/* Truncation anywhere is refused, by file_size or an earlier check. */
static void test_truncation(void **state)
{
	struct file f = build("tiny");

	(void)state;
	for (size_t cut = 0; cut < f.size; cut += (cut < 512 ? 8 : 64)) {
		struct bmx_error err;
		struct bmx_model *m;
		uint8_t *copy = aligned_alloc(64, (cut + 64) & ~(size_t)63);

		memcpy(copy, f.buf, cut);
		assert_int_equal(bmx_model_load_memory(copy, cut, &m, &err), -EBADMSG);
		assert_non_null(strstr(err.msg, "HEADER"));
		free(copy);
	}
	free(f.buf);
}

typedef void (*corrupt_fn)(struct file *f);

/* Each case: how to break the file, whether to fix the checksum after, and the message. */
struct corruption {
	const char *name;
	corrupt_fn fn;
	int fix_checksum;
	const char *want1, *want2;
};
#define CASE(name, fix, want1, want2)          \
	{                                      \
#name, name, fix, want1, want2 \
	}

static void bad_magic(struct file *f)
{
	f->buf[0] = 'X';
}
static void future_version(struct file *f)
{
	hdr(f)->version_major = 2;
}
static void header_size(struct file *f)
{
	hdr(f)->header_size = 128;
}
static void file_size_lie(struct file *f)
{
	hdr(f)->file_size += 64;
}
static void header_reserved(struct file *f)
{
	hdr(f)->reserved[3] = 1;
}
static void section_count_absurd(struct file *f)
{
	hdr(f)->section_count = 100000;
}
static void table_past_end(struct file *f)
{
	hdr(f)->section_table_offset = f->size;
}
static void section_past_end(struct file *f)
{
	section(f, BMX_SECTION_DATA)->size += 4096;
}
static void section_size_overflow(struct file *f)
{
	section(f, BMX_SECTION_DATA)->size = UINT64_MAX - 10;
}
static void section_misaligned(struct file *f)
{
	section(f, BMX_SECTION_NODES)->offset += 8;
}
static void sections_overlap(struct file *f)
{
	section(f, BMX_SECTION_LAYERS)->offset = section(f, BMX_SECTION_NODES)->offset;
}
static void duplicate_section(struct file *f)
{
	section(f, BMX_SECTION_LAYERS)->type = BMX_SECTION_MODEL;
}
static void unknown_required_section(struct file *f)
{
	section(f, BMX_SECTION_DATA)->type = 77;
}
static void node_count_absurd(struct file *f)
{
	info(f)->node_count = 1u << 30;
}
static void layer_count_absurd(struct file *f)
{
	info(f)->layer_count = 5000;
}
static void bits_mask_bit9(struct file *f)
{
	info(f)->bits_mask |= 1u << 9;
}
static void bits_mask_bit1(struct file *f)
{
	info(f)->bits_mask |= 1u << 1;
}
static void model_name_bad(struct file *f)
{
	memset(info(f)->name, 'x', sizeof(info(f)->name));
}
static void unknown_op(struct file *f)
{
	node(f, 2)->op = 99;
}
static void input_out_of_range(struct file *f)
{
	node(f, 2)->inputs[0] = 4000;
}
static void self_loop(struct file *f)
{
	node(f, 2)->inputs[0] = 2;
}
static void cyclic_graph(struct file *f)
{
	/* tiny: node 1 conv(0), node 2 relu6(1): make conv read relu6's output. */
	node(f, 1)->inputs[0] = 2;
}
static void mismatched_shape(struct file *f)
{
	node(f, 1)->out_h += 1;
}
static void add_shapes_differ(struct file *f)
{
	/* tiny: node 4 adds node 3 and node 2; point its second input at the input image. */
	node(f, 4)->inputs[1] = 0;
}
static void groups_not_dividing(struct file *f)
{
	node(f, 3)->groups = 3;
}
static void layer_owned_twice(struct file *f)
{
	node(f, 3)->layer = node(f, 1)->layer;
}
static void layer_wrong_node(struct file *f)
{
	layer(f, 0)->node = 3;
}
static void default_bits_outside(struct file *f)
{
	layer(f, 0)->default_w_bits = 1;
}
static void layer_mask_outside_model(struct file *f)
{
	info(f)->bits_mask = 0x0100;
}
static void tbn_prev_self(struct file *f)
{
	layer(f, 1)->tbn_prev = 1;
}
static void macs_wrong(struct file *f)
{
	layer(f, 1)->macs += 1;
}
static void array_past_data(struct file *f)
{
	layer(f, 2)->sensitivity.offset = section(f, BMX_SECTION_DATA)->size;
}
static void array_misaligned(struct file *f)
{
	layer(f, 1)->w_scale.offset += 4;
}
static void arrays_overlap(struct file *f)
{
	layer(f, 1)->w_scale.offset = layer(f, 1)->weights.offset;
}
static void tbn_size_wrong(struct file *f)
{
	layer(f, 1)->tbn.size -= 4;
}
static void w_scale_nan(struct file *f)
{
	data_f32(f, &layer(f, 1)->w_scale)[0] = NAN;
}
static void w_scale_zero(struct file *f)
{
	data_f32(f, &layer(f, 0)->w_scale)[2] = 0.0f;
}
static void a_step_negative(struct file *f)
{
	data_f32(f, &layer(f, 2)->a_step)[0] = -1.0f;
}
static void tbn_infinite(struct file *f)
{
	data_f32(f, &layer(f, 1)->tbn)[5] = INFINITY;
}
static void reduction_too_large(struct file *f)
{
	info(f)->input_c = 60000; /* conv1 (3x3) would sum 540000 products per output */
	node(f, 0)->out_c = 60000;
}
static void kernel_does_not_fit(struct file *f)
{
	node(f, 1)->kernel_h = 64, node(f, 1)->kernel_w = 64;
}
static void output_size_wrong(struct file *f)
{
	info(f)->output_size = 6;
}
static void bad_checksum(struct file *f)
{
	f->buf[f->size - 100] ^= 0x40;
}

static const struct corruption cases[] = {
	CASE(bad_magic, 0, "HEADER", "magic"),
	CASE(future_version, 0, "HEADER: version_major 2", "byte 0x8"),
	CASE(header_size, 0, "header_size 128", NULL),
	CASE(file_size_lie, 0, "file_size", "truncated"),
	CASE(header_reserved, 0, "reserved", NULL),
	CASE(section_count_absurd, 0, "section_count 100000", NULL),
	CASE(table_past_end, 0, "section table", NULL),
	CASE(section_past_end, 1, "SECTIONS: section[3] (DATA)", "past the end"),
	CASE(section_size_overflow, 1, "SECTIONS", "past the end"),
	CASE(section_misaligned, 1, "(NODES).offset", "multiple of 64"),
	CASE(sections_overlap, 1, "SECTIONS", "overlaps"),
	CASE(duplicate_section, 1, "a second MODEL section", NULL),
	CASE(unknown_required_section, 1, "unknown type 77", "not optional"),
	CASE(node_count_absurd, 1, "MODEL: node_count 1073741824", NULL),
	CASE(layer_count_absurd, 1, "layer_count 5000", NULL),
	CASE(bits_mask_bit9, 1, "MODEL: bits_mask", NULL),
	CASE(bits_mask_bit1, 1, "bits_mask 0x1fe", NULL),
	CASE(model_name_bad, 1, "MODEL: name", NULL),
	CASE(unknown_op, 1, "NODES: node[2].op 99", NULL),
	CASE(input_out_of_range, 1, "node[2].inputs[0] = 4000", NULL),
	CASE(self_loop, 1, "node[2].inputs[0] is the node itself", NULL),
	CASE(cyclic_graph, 1, "is on a cycle", NULL),
	CASE(mismatched_shape, 1, "node[1] (CONV2D) declares output", NULL),
	CASE(add_shapes_differ, 1, "(ADD) adds", "shapes must agree"),
	CASE(groups_not_dividing, 1, "groups 3 must divide", NULL),
	CASE(layer_owned_twice, 1, "already used by node[1]", NULL),
	CASE(layer_wrong_node, 1, "does not point back", NULL),
	CASE(default_bits_outside, 1, "default bits w1", NULL),
	CASE(layer_mask_outside_model, 1, "LAYERS: layer[0] \"conv1\".bits_mask", NULL),
	CASE(tbn_prev_self, 1, ".tbn_prev 1", NULL),
	CASE(macs_wrong, 1, "\"dw\".macs", NULL),
	CASE(array_past_data, 1, "\"fc\".sensitivity ends at", "past the end of DATA"),
	CASE(array_misaligned, 1, "w_scale.offset", "multiple of 64"),
	CASE(arrays_overlap, 1, "overlaps layer[1].weights", NULL),
	CASE(tbn_size_wrong, 1, "\"dw\".tbn.size", "needs"),
	CASE(w_scale_nan, 1, "DATA: layer[1] \"dw\".w_scale[0] is nan", NULL),
	CASE(w_scale_zero, 1, "w_scale[2] is 0", NULL),
	CASE(a_step_negative, 1, "a_step[0] is -1", NULL),
	CASE(tbn_infinite, 1, "tbn[5] is inf", NULL),
	CASE(reduction_too_large, 1, "NODES: node[1] (CONV2D) reduces over 540000 inputs", NULL),
	CASE(kernel_does_not_fit, 1, "node[1] (CONV2D) kernel 64x64 does not fit", NULL),
	CASE(output_size_wrong, 1, "output_size 6", NULL),
	CASE(bad_checksum, 0, "HEADER: checksum", "corrupt"),
};

/* Each of the N corruptions CS of a fresh MODEL is refused with its message. */
static void expect_each_refused(const char *model, const struct corruption *cs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct file f = build(model);

		cs[i].fn(&f);
		if (cs[i].fix_checksum)
			bmx_file_fix_checksum(f.buf, f.size);
		expect_refused(&f, cs[i].name, cs[i].want1, cs[i].want2);
		free(f.buf);
	}
}

/* The optional adaptive sections (format 1.1) of "fmnist-adaptive": known, so checked. */
static struct bmx_cascade_info *cascade(struct file *f)
{
	return (void *)(f->buf + section(f, BMX_SECTION_CASCADE)->offset);
}

static struct bmx_policy_info *policy(struct file *f)
{
	return (void *)(f->buf + section(f, BMX_SECTION_POLICY)->offset);
}

static uint8_t *cascade_bits(struct file *f)
{
	return (uint8_t *)(cascade(f) + 1);
}
static uint8_t *policy_bits(struct file *f)
{
	return (uint8_t *)(policy(f) + 1);
}
static float *policy_floats(struct file *f)
{
	return (float *)(policy_bits(f) + 24);
}

static void cascade_one_config(struct file *f)
{
	cascade(f)->n_configs = 1;
}
static void cascade_layers(struct file *f)
{
	cascade(f)->layer_count = 7;
}
static void cascade_size(struct file *f)
{
	section(f, BMX_SECTION_CASCADE)->size -= 1;
}
static void cascade_confidence(struct file *f)
{
	cascade(f)->confidence = 3;
}
static void cascade_threshold_nan(struct file *f)
{
	cascade(f)->thresholds[1] = NAN;
}
static void cascade_threshold_unused(struct file *f)
{
	cascade(f)->thresholds[4] = 1.0f;
}
static void cascade_reserved(struct file *f)
{
	cascade(f)->reserved[0] = 1;
}
static void cascade_unsupported_bits(struct file *f)
{
	cascade_bits(f)[0] = 4; /* stem: 8 only */
}
static void cascade_bits_nine(struct file *f)
{
	cascade_bits(f)[8 + 2] = 9;
}
static void cascade_lowers(struct file *f)
{
	cascade_bits(f)[16 + 3] = 3;
}
static void policy_feature_node(struct file *f)
{
	policy(f)->feature_node = 500;
}
static void policy_feature_conv(struct file *f)
{
	policy(f)->feature_node = 1;
}
static void policy_features(struct file *f)
{
	policy(f)->n_features = 17;
}
static void policy_prefix_differs(struct file *f)
{
	policy(f)->feature_node = 4;
}
static void policy_weight_inf(struct file *f)
{
	policy_floats(f)[3] = INFINITY;
}
static void policy_bias_nan(struct file *f)
{
	policy_floats(f)[32 + 1] = NAN;
}
static void policy_reserved(struct file *f)
{
	policy(f)->reserved[9] = 2;
}
static void policy_threshold_nan(struct file *f)
{
	policy(f)->threshold = NAN;
}

static const struct corruption adaptive_cases[] = {
	CASE(cascade_one_config, 1, "CASCADE: n_configs 1", NULL),
	CASE(cascade_layers, 1, "CASCADE: layer_count 7", "has 8"),
	CASE(cascade_size, 1, "CASCADE: size", NULL),
	CASE(cascade_confidence, 1, "confidence 3", NULL),
	CASE(cascade_threshold_nan, 1, "CASCADE", "not finite"),
	CASE(cascade_threshold_unused, 1, "threshold 4 is set", NULL),
	CASE(cascade_reserved, 1, "CASCADE: reserved", NULL),
	CASE(cascade_unsupported_bits, 1, "layer 0 (stem) 4 bits", "does not support"),
	CASE(cascade_bits_nine, 1, "configuration 1 gives layer 2", NULL),
	CASE(cascade_lowers, 1, "configuration 2 lowers layer 3", NULL),
	CASE(policy_feature_node, 1, "POLICY: feature_node 500", NULL),
	CASE(policy_feature_conv, 1, "feature_node 1 is a conv2d", NULL),
	CASE(policy_features, 1, "n_features 17", NULL),
	CASE(policy_prefix_differs, 1, "changes layer block1.conv1", "before the features"),
	CASE(policy_weight_inf, 1, "POLICY", "weight or bias is not finite"),
	CASE(policy_bias_nan, 1, "POLICY", "weight or bias is not finite"),
	CASE(policy_reserved, 1, "POLICY: reserved", NULL),
	CASE(policy_threshold_nan, 1, "POLICY", "not finite"),
};

/* A valid file with both sections loads them; each corruption of one is refused by name. */
static void test_adaptive_sections(void **state)
{
	struct file f = build("fmnist-adaptive");
	struct bmx_error err;
	struct bmx_model *m;

	(void)state;
	assert_int_equal(hdr(&f)->version_minor, 1);
	assert_int_equal(section(&f, BMX_SECTION_CASCADE)->flags, BMX_SECTION_FLAG_OPTIONAL);
	assert_int_equal(section(&f, BMX_SECTION_POLICY)->flags, BMX_SECTION_FLAG_OPTIONAL);
	if (bmx_model_load_memory(f.buf, f.size, &m, &err) < 0)
		fail_msg("%s", err.msg);
	assert_non_null(m->cascade);
	assert_int_equal(m->cascade->n_configs, 3);
	assert_int_equal(m->cascade_bits[8 + 2], 4);
	assert_non_null(m->policy);
	assert_int_equal(m->policy->n_features, 16);
	assert_true(m->policy_bias[1] == 0.1f);
	bmx_model_free(m);
	free(f.buf);
	expect_each_refused("fmnist-adaptive", adaptive_cases,
			    sizeof(adaptive_cases) / sizeof(adaptive_cases[0]));
}

static void test_corruptions(void **state)
{
	(void)state;
	expect_each_refused("tiny", cases, sizeof(cases) / sizeof(cases[0]));
}

/* A section of an unknown type marked optional is skipped, not refused. */
static void test_optional_section_accepted(void **state)
{
	struct file f = build("tiny"), g;
	struct bmx_section *old_tab, *tab;
	struct bmx_error err;
	struct bmx_model *m;

	(void)state;
	/* Move the section table to a new end of the file, with one more (optional) entry. */
	g.size = f.size + 256;
	g.buf = aligned_alloc(64, g.size);
	memset(g.buf, 0, g.size);
	memcpy(g.buf, f.buf, f.size);
	old_tab = (void *)(g.buf + hdr(&g)->section_table_offset);
	tab = (void *)(g.buf + f.size);
	memcpy(tab, old_tab, 4 * sizeof(*tab));
	memset(old_tab, 0, 4 * sizeof(*tab));
	tab[4] = (struct bmx_section){ 99, BMX_SECTION_FLAG_OPTIONAL, 0, 0, 0 };
	hdr(&g)->section_table_offset = f.size;
	hdr(&g)->section_count = 5;
	hdr(&g)->file_size = g.size;
	bmx_file_fix_checksum(g.buf, g.size);
	if (bmx_model_load_memory(g.buf, g.size, &m, &err) < 0)
		fail_msg("%s", err.msg);
	bmx_model_free(m);
	/* The same entry without the OPTIONAL flag is refused. */
	tab[4].flags = 0;
	bmx_file_fix_checksum(g.buf, g.size);
	expect_refused(&g, "unknown section", "unknown type 99", "not optional");
	free(g.buf);
	free(f.buf);
}

/* Random mutations with the checksum fixed: accepted or refused, never a crash. */
static void test_mutations_never_crash(void **state)
{
	struct file f = build("tiny");
	uint8_t *copy = aligned_alloc(64, (f.size + 63) & ~(size_t)63);
	uint64_t seed = 12345;
	int refused = 0;

	(void)state;
	for (int i = 0; i < 3000; i++) {
		struct bmx_error err;
		struct bmx_model *m;
		uint64_t r;

		memcpy(copy, f.buf, f.size);
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		r = seed >> 17;
		if (r & 1)
			copy[r % f.size] ^= (uint8_t)(1u << ((r >> 20) % 8));
		else
			memset(copy + (r % (f.size - 4)), (int)((r >> 24) & 0xff), 4);
		bmx_file_fix_checksum(copy, f.size);
		if (bmx_model_load_memory(copy, f.size, &m, &err) < 0)
			refused++;
		else
			bmx_model_free(m);
	}
	assert_true(refused > 100);
	free(copy);
	free(f.buf);
}

static void test_missing_file(void **state)
{
	struct bmx_error err;
	struct bmx_model *m;

	(void)state;
	assert_int_equal(bmx_model_load_file("/nonexistent.bmx", &m, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent.bmx"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_fmnist_shapes),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_corruptions),
		cmocka_unit_test(test_optional_section_accepted),
		cmocka_unit_test(test_adaptive_sections),
		cmocka_unit_test(test_mutations_never_crash),
		cmocka_unit_test(test_missing_file),
	};

	return cmocka_run_group_tests_name("loader", tests, NULL, NULL);
}
