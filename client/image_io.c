/* SPDX-License-Identifier: MIT */
/*
 * image_io.c — IDX and PGM/PPM readers for bitmixctl. zlib's gzread reads plain and gzip files
 * alike. Every header field is checked against the bytes actually present before anything is
 * allocated from it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "image_io.h"

#define MAX_FILE_BYTES (1ull << 31)

static int fail(char *err, size_t size, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t size, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, size, fmt, ap);
	va_end(ap);
	return r;
}

/* The whole (decompressed) file, capped at MAX_FILE_BYTES. */
static int slurp(const char *path, uint8_t **out, size_t *len, char *err, size_t err_size)
{
	gzFile f = gzopen(path, "rb");
	size_t cap = 1 << 20, n = 0;
	uint8_t *buf;
	int got;

	if (!f)
		return fail(err, err_size, errno ? -errno : -EIO, "%s: cannot open: %s", path,
			    strerror(errno ? errno : EIO));
	buf = malloc(cap);
	while (buf && (got = gzread(f, buf + n, (unsigned)(cap - n))) > 0) {
		n += (size_t)got;
		if (n == cap) {
			uint8_t *bigger = cap < MAX_FILE_BYTES ? realloc(buf, cap * 2) : NULL;

			if (!bigger) {
				free(buf);
				gzclose(f);
				return fail(err, err_size, -EFBIG, "%s: larger than 2 GiB", path);
			}
			buf = bigger;
			cap *= 2;
		}
	}
	if (!buf || got < 0) {
		free(buf);
		gzclose(f);
		return fail(err, err_size, -EIO, "%s: read error (corrupt gzip data?)", path);
	}
	gzclose(f);
	*out = buf;
	*len = n;
	return 0;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int read_idx_images(const char *path, uint8_t *buf, size_t len, struct image_set *out,
			   char *err, size_t es)
{
	uint64_t need;

	if (len < 16)
		return fail(err, es, -EBADMSG, "%s: %zu bytes, too short for an IDX3 header", path,
			    len);
	out->count = be32(buf + 4);
	out->h = be32(buf + 8);
	out->w = be32(buf + 12);
	out->c = 1;
	if (out->h == 0 || out->w == 0 || out->h > 4096 || out->w > 4096)
		return fail(err, es, -EBADMSG, "%s: image size %ux%u is out of range", path, out->h,
			    out->w);
	need = 16 + (uint64_t)out->count * out->h * out->w;
	if (need != len)
		return fail(err, es, -EBADMSG,
			    "%s: header says %u images of %ux%u (%llu bytes), file has %zu", path,
			    out->count, out->h, out->w, (unsigned long long)need, len);
	memmove(buf, buf + 16, len - 16);
	out->pixels = buf;
	return 0;
}

/* The next whitespace-separated number of a PNM header, skipping # comments. */
static int pnm_number(const uint8_t *buf, size_t len, size_t *pos, uint32_t *v)
{
	uint64_t x = 0;
	int digits = 0;

	while (*pos < len) {
		if (buf[*pos] == '#')
			while (*pos < len && buf[*pos] != '\n')
				(*pos)++;
		else if (buf[*pos] == ' ' || buf[*pos] == '\t' || buf[*pos] == '\n' ||
			 buf[*pos] == '\r')
			(*pos)++;
		else
			break;
	}
	while (*pos < len && buf[*pos] >= '0' && buf[*pos] <= '9' && digits < 9) {
		x = x * 10 + (uint64_t)(buf[(*pos)++] - '0');
		digits++;
	}
	*v = (uint32_t)x;
	return digits ? 0 : -EBADMSG;
}

static int read_pnm(const char *path, uint8_t *buf, size_t len, struct image_set *out, char *err,
		    size_t es)
{
	uint32_t maxval;
	size_t pos = 2;
	uint64_t need;

	out->c = buf[1] == '5' ? 1 : 3;
	if (pnm_number(buf, len, &pos, &out->w) < 0 || pnm_number(buf, len, &pos, &out->h) < 0 ||
	    pnm_number(buf, len, &pos, &maxval) < 0 || pos >= len)
		return fail(err, es, -EBADMSG, "%s: malformed P%c header", path, buf[1]);
	pos++; /* the single whitespace before the pixels */
	if (maxval != 255)
		return fail(err, es, -EBADMSG, "%s: maxval %u, only 8-bit (255) pictures are read",
			    path, maxval);
	if (out->w == 0 || out->h == 0 || out->w > 16384 || out->h > 16384)
		return fail(err, es, -EBADMSG, "%s: size %ux%u is out of range", path, out->w,
			    out->h);
	need = (uint64_t)out->w * out->h * out->c;
	if (len - pos < need)
		return fail(err, es, -EBADMSG, "%s: %zu pixel bytes, %llu expected", path,
			    len - pos, (unsigned long long)need);
	memmove(buf, buf + pos, need);
	out->count = 1;
	out->pixels = buf;
	return 0;
}

int image_set_read(const char *path, struct image_set *out, char *err, size_t es)
{
	uint8_t *buf;
	size_t len;
	int r;

	memset(out, 0, sizeof(*out));
	r = slurp(path, &buf, &len, err, es);
	if (r < 0)
		return r;
	if (len >= 4 && be32(buf) == 0x00000803)
		r = read_idx_images(path, buf, len, out, err, es);
	else if (len >= 2 && buf[0] == 'P' && (buf[1] == '5' || buf[1] == '6'))
		r = read_pnm(path, buf, len, out, err, es);
	else
		r = fail(err, es, -EBADMSG, "%s: neither an IDX3 image file nor a binary PGM/PPM",
			 path);
	if (r < 0) {
		free(buf);
		memset(out, 0, sizeof(*out));
	}
	return r;
}

void image_set_free(struct image_set *set)
{
	free(set->pixels);
	memset(set, 0, sizeof(*set));
}

int label_set_read(const char *path, struct label_set *out, char *err, size_t es)
{
	uint8_t *buf;
	size_t len;
	int r;

	memset(out, 0, sizeof(*out));
	r = slurp(path, &buf, &len, err, es);
	if (r < 0)
		return r;
	if (len < 8 || be32(buf) != 0x00000801) {
		free(buf);
		return fail(err, es, -EBADMSG, "%s: not an IDX1 label file", path);
	}
	out->count = be32(buf + 4);
	if ((uint64_t)out->count + 8 != len) {
		free(buf);
		return fail(err, es, -EBADMSG, "%s: header says %u labels, file holds %zu", path,
			    out->count, len - 8);
	}
	memmove(buf, buf + 8, len - 8);
	out->labels = buf;
	return 0;
}

void label_set_free(struct label_set *set)
{
	free(set->labels);
	memset(set, 0, sizeof(*set));
}
