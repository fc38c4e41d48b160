/* SPDX-License-Identifier: MIT */
/*
 * test_image_io.c — bitmixctl's image readers: IDX images and labels (plain and gzip), PGM and
 * PPM, and the ways such files go wrong (bad magic, lying headers, truncation, absurd sizes).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "image_io.h"

static char dir[] = "/tmp/bitmix-imageio-XXXXXX";

static const char *write_file(const char *name, const void *data, size_t len, int gz)
{
	static char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (gz) {
		gzFile f = gzopen(path, "wb");

		assert_non_null(f);
		assert_int_equal(gzwrite(f, data, (unsigned)len), (int)len);
		gzclose(f);
	} else {
		FILE *f = fopen(path, "wb");

		assert_non_null(f);
		assert_int_equal(fwrite(data, 1, len, f), len);
		fclose(f);
	}
	return path;
}

/* An IDX3 file of N images of HxW with pixel value (i + k) % 256. */
static uint8_t *idx3(uint32_t n, uint32_t h, uint32_t w, size_t *len)
{
	uint8_t *b = malloc(16 + (size_t)n * h * w);
	uint32_t hdr[4] = { __builtin_bswap32(0x803), __builtin_bswap32(n), __builtin_bswap32(h),
			    __builtin_bswap32(w) };

	memcpy(b, hdr, 16);
	for (size_t k = 0; k < (size_t)n * h * w; k++)
		b[16 + k] = (uint8_t)k;
	*len = 16 + (size_t)n * h * w;
	return b;
}

static void test_idx_images(void **state)
{
	char err[256];
	struct image_set set;
	size_t len;
	uint8_t *b = idx3(3, 28, 28, &len);

	(void)state;
	for (int gz = 0; gz < 2; gz++) {
		const char *p = write_file(gz ? "i.gz" : "i", b, len, gz);

		assert_int_equal(image_set_read(p, &set, err, sizeof(err)), 0);
		assert_int_equal(set.count, 3);
		assert_int_equal(set.h, 28);
		assert_int_equal(set.w, 28);
		assert_int_equal(set.c, 1);
		assert_memory_equal(set.pixels, b + 16, len - 16);
		image_set_free(&set);
	}
	/* Truncated: the header promises more than the file holds. */
	assert_int_equal(image_set_read(write_file("t", b, len - 1, 0), &set, err, sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "header says 3 images of 28x28"));
	/* Absurd dimensions. */
	((uint32_t *)b)[2] = __builtin_bswap32(100000);
	assert_int_equal(image_set_read(write_file("a", b, len, 0), &set, err, sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "out of range"));
	/* Not an image file at all. */
	assert_int_equal(image_set_read(write_file("x", "hello world, not an image", 25, 0), &set,
					err, sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "neither an IDX3 image file nor a binary PGM/PPM"));
	assert_true(image_set_read("/nonexistent/x", &set, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "/nonexistent/x"));
	free(b);
}

static void test_idx_labels(void **state)
{
	uint8_t b[8 + 5] = { 0, 0, 8, 1, 0, 0, 0, 5, 9, 2, 1, 1, 6 };
	struct label_set labels;
	char err[256];

	(void)state;
	assert_int_equal(
		label_set_read(write_file("l.gz", b, sizeof(b), 1), &labels, err, sizeof(err)), 0);
	assert_int_equal(labels.count, 5);
	assert_int_equal(labels.labels[0], 9);
	assert_int_equal(labels.labels[4], 6);
	label_set_free(&labels);
	b[7] = 6; /* claims one more label than it holds */
	assert_int_equal(label_set_read(write_file("l2", b, sizeof(b), 0), &labels, err,
					sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "header says 6 labels, file holds 5"));
	b[3] = 3; /* an image magic */
	assert_int_equal(label_set_read(write_file("l3", b, sizeof(b), 0), &labels, err,
					sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "not an IDX1 label file"));
}

static void test_pnm(void **state)
{
	const char pgm_head[] = "P5\n# a comment\n4 2\n255\n";
	uint8_t pgm[sizeof(pgm_head) - 1 + 8];
	struct image_set set;
	char err[256];

	(void)state;
	memcpy(pgm, pgm_head, sizeof(pgm_head) - 1);
	for (int i = 0; i < 8; i++)
		pgm[sizeof(pgm_head) - 1 + i] = (uint8_t)(10 * i);
	assert_int_equal(image_set_read(write_file("p.pgm", pgm, sizeof(pgm), 0), &set, err,
					sizeof(err)),
			 0);
	assert_int_equal(set.count, 1);
	assert_int_equal(set.w, 4);
	assert_int_equal(set.h, 2);
	assert_int_equal(set.c, 1);
	assert_int_equal(set.pixels[7], 70);
	image_set_free(&set);
	/* Short of pixels. */
	assert_int_equal(image_set_read(write_file("s.pgm", pgm, sizeof(pgm) - 3, 0), &set, err,
					sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "5 pixel bytes, 8 expected"));
	/* 16-bit maxval is refused. */
	assert_int_equal(image_set_read(write_file("m.pgm", "P5 1 1 65535\n\0\0", 15, 0), &set, err,
					sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "maxval 65535"));
	/* A PPM has three channels. */
	assert_int_equal(image_set_read(write_file("c.ppm", "P6 1 1 255\nabc", 14, 0), &set, err,
					sizeof(err)),
			 0);
	assert_int_equal(set.c, 3);
	assert_memory_equal(set.pixels, "abc", 3);
	image_set_free(&set);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[96];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idx_images),
		cmocka_unit_test(test_idx_labels),
		cmocka_unit_test(test_pnm),
	};

	return cmocka_run_group_tests_name("image_io", tests, setup, teardown);
}
