/* SPDX-License-Identifier: MIT */
/*
 * image_io.h — reading images and labels for bitmixctl: IDX files (as MNIST and Fashion-MNIST
 * ship them, gzip-compressed or not) and binary PGM/PPM pictures.
 */
#ifndef BITMIX_IMAGE_IO_H
#define BITMIX_IMAGE_IO_H

#include <stddef.h>
#include <stdint.h>

struct image_set {
	uint32_t count;
	uint32_t h, w, c; /* per image, HWC */
	uint8_t *pixels;  /* count * h * w * c */
};

struct label_set {
	uint32_t count;
	uint8_t *labels;
};

/*
 * Read PATH: an IDX3 image file (magic 0x00000803), or a P5 PGM / P6 PPM with maxval 255.
 * Returns 0, or -errno with a message naming the file and the problem in ERR.
 */
int image_set_read(const char *path, struct image_set *out, char *err, size_t err_size);
void image_set_free(struct image_set *set);

/* Read an IDX1 label file (magic 0x00000801). */
int label_set_read(const char *path, struct label_set *out, char *err, size_t err_size);
void label_set_free(struct label_set *set);

#endif
