/* SPDX-License-Identifier: MIT */
/*
 * bmx_loader.c — validate a .bmx file in place and resolve it into a struct bmx_model.
 *
 * Checks run in the order docs/model-format.md lists them: the header, the section table, the
 * checksum, the model info, every node, the graph (cycles, then shapes in execution order),
 * every layer and its arrays, and finally that no two arrays overlap. Each check reads only
 * bytes an earlier check proved to be inside the file, sizes are multiplied with overflow
 * checks, and nothing is allocated from a count that was not first capped.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "bmx_loader_internal.h"
#include "ops_ref.h"

int bmx_bad(struct bmx_check *c, const char *section, uint64_t offset, const char *fmt, ...)
{
	char what[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (c->err)
		snprintf(c->err->msg, sizeof(c->err->msg), "%s: %s at byte 0x%llx", section, what,
			 (unsigned long long)offset);
	return -EBADMSG;
}

static bool in_file(const struct bmx_check *c, uint64_t off, uint64_t len)
{
	uint64_t end;

	return !__builtin_add_overflow(off, len, &end) && end <= c->size;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

uint32_t bmx_file_checksum(const void *file, size_t size)
{
	static const uint8_t zero[4];
	const uint8_t *p = file;
	size_t at = offsetof(struct bmx_file_header, checksum);
	uLong crc = crc32(0L, Z_NULL, 0);

	/* zlib takes uInt lengths: feed the file in chunks. */
	for (size_t done = 0; done < at;) {
		uInt n = (uInt)(at - done);

		crc = crc32(crc, p + done, n);
		done += n;
	}
	crc = crc32(crc, zero, sizeof(zero));
	for (size_t done = at + 4; done < size;) {
		size_t left = size - done;
		uInt n = left > (1u << 30) ? (1u << 30) : (uInt)left;

		crc = crc32(crc, p + done, n);
		done += n;
	}
	return (uint32_t)crc;
}

static int check_header(struct bmx_check *c)
{
	const struct bmx_file_header *h = (const void *)c->base;

	if (c->size < sizeof(*h))
		return bmx_bad(c, "HEADER", 0, "file is %zu bytes, shorter than the 64-byte header",
			       c->size);
	if (memcmp(h->magic, BMX_MAGIC, BMX_MAGIC_LEN) != 0)
		return bmx_bad(c, "HEADER", 0, "magic is not \"BMXMODEL\" (not a .bmx file)");
	if (h->version_major != BMX_VERSION_MAJOR)
		return bmx_bad(c, "HEADER", offsetof(struct bmx_file_header, version_major),
			       "version_major %u, this reader supports %u", h->version_major,
			       BMX_VERSION_MAJOR);
	if (h->header_size != sizeof(*h))
		return bmx_bad(c, "HEADER", offsetof(struct bmx_file_header, header_size),
			       "header_size %u, expected 64", h->header_size);
	if (h->file_size != c->size)
		return bmx_bad(c, "HEADER", offsetof(struct bmx_file_header, file_size),
			       "file_size %llu but the file is %zu bytes (truncated or padded)",
			       (unsigned long long)h->file_size, c->size);
	if (!all_zero(h->reserved, sizeof(h->reserved)))
		return bmx_bad(c, "HEADER", offsetof(struct bmx_file_header, reserved),
			       "reserved bytes are not zero");
	if (h->section_count < 1 || h->section_count > BMX_MAX_SECTIONS)
		return bmx_bad(c, "HEADER", offsetof(struct bmx_file_header, section_count),
			       "section_count %u, expected 1..%d", h->section_count,
			       BMX_MAX_SECTIONS);
	if (h->section_table_offset % BMX_ALIGN || h->section_table_offset < sizeof(*h) ||
	    !in_file(c, h->section_table_offset,
		     (uint64_t)h->section_count * sizeof(struct bmx_section)))
		return bmx_bad(
			c, "HEADER", offsetof(struct bmx_file_header, section_table_offset),
			"section table at %llu (%u entries) is misaligned or outside the file",
			(unsigned long long)h->section_table_offset, h->section_count);
	c->header = h;
	return 0;
}

struct span {
	uint64_t start, end;
	const char *what;
	uint64_t field; /* byte offset of the field that declared it */
};

static int cmp_span(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static const char *section_name(uint32_t type)
{
	static const char *names[] = {
		"?", "MODEL", "NODES", "LAYERS", "DATA", "CASCADE", "POLICY"
	};

	return type <= BMX_SECTION_TYPE_MAX_ ? names[type] : "UNKNOWN";
}

static int check_sections(struct bmx_check *c)
{
	const struct bmx_file_header *h = c->header;
	const struct bmx_section *tab = (const void *)(c->base + h->section_table_offset);
	struct span spans[BMX_MAX_SECTIONS + 2];
	size_t n = 0;

	spans[n++] = (struct span){ 0, sizeof(*h), "HEADER", 0 };
	spans[n++] = (struct span){ h->section_table_offset,
				    h->section_table_offset + h->section_count * sizeof(*tab),
				    "section table",
				    offsetof(struct bmx_file_header, section_table_offset) };
	for (uint32_t i = 0; i < h->section_count; i++) {
		const struct bmx_section *s = &tab[i];
		uint64_t at = h->section_table_offset + i * sizeof(*s);
		const char *name = section_name(s->type);

		if (s->offset % BMX_ALIGN)
			return bmx_bad(c, "SECTIONS", at + offsetof(struct bmx_section, offset),
				       "section[%u] (%s).offset %llu is not a multiple of %d", i,
				       name, (unsigned long long)s->offset, BMX_ALIGN);
		if (!in_file(c, s->offset, s->size))
			return bmx_bad(
				c, "SECTIONS", at + offsetof(struct bmx_section, size),
				"section[%u] (%s) [%llu, +%llu) runs past the end of the file (%zu bytes)",
				i, name, (unsigned long long)s->offset, (unsigned long long)s->size,
				c->size);
		if (s->reserved || (s->flags & ~BMX_SECTION_FLAG_OPTIONAL))
			return bmx_bad(c, "SECTIONS", at + offsetof(struct bmx_section, flags),
				       "section[%u] (%s) has unknown flags or reserved bits set", i,
				       name);
		if (s->type < BMX_SECTION_MODEL || s->type > BMX_SECTION_TYPE_MAX_) {
			if (!(s->flags & BMX_SECTION_FLAG_OPTIONAL))
				return bmx_bad(
					c, "SECTIONS", at + offsetof(struct bmx_section, type),
					"section[%u] has unknown type %u and is not optional", i,
					s->type);
		} else if (c->sections[s->type]) {
			return bmx_bad(c, "SECTIONS", at + offsetof(struct bmx_section, type),
				       "section[%u]: a second %s section", i, name);
		} else {
			c->sections[s->type] = s;
			c->section_at[s->type] = at;
		}
		if (s->size)
			spans[n++] = (struct span){ s->offset, s->offset + s->size, name,
						    at + offsetof(struct bmx_section, offset) };
	}
	for (uint32_t t = BMX_SECTION_MODEL; t <= BMX_SECTION_DATA; t++)
		if (!c->sections[t])
			return bmx_bad(c, "SECTIONS", h->section_table_offset, "no %s section",
				       section_name(t));
	qsort(spans, n, sizeof(spans[0]), cmp_span);
	for (size_t i = 1; i < n; i++)
		if (spans[i].start < spans[i - 1].end)
			return bmx_bad(c, "SECTIONS", spans[i].field,
				       "%s [%llu, %llu) overlaps %s [%llu, %llu)", spans[i].what,
				       (unsigned long long)spans[i].start,
				       (unsigned long long)spans[i].end, spans[i - 1].what,
				       (unsigned long long)spans[i - 1].start,
				       (unsigned long long)spans[i - 1].end);
	return 0;
}

static int check_checksum(struct bmx_check *c)
{
	uint32_t crc = bmx_file_checksum(c->base, c->size);

	if (crc != c->header->checksum)
		return bmx_bad(
			c, "HEADER", offsetof(struct bmx_file_header, checksum),
			"checksum 0x%08x does not match the contents (CRC-32 0x%08x): the file is corrupt",
			c->header->checksum, crc);
	return 0;
}

bool bmx_name_ok(const char *s, size_t max)
{
	const char *nul = memchr(s, 0, max);

	if (!nul || nul == s)
		return false;
	for (const char *p = s; p < nul; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
		    !(*p >= '0' && *p <= '9') && !strchr("._-", *p))
			return false;
	return true;
}

static int check_info(struct bmx_check *c)
{
	const struct bmx_section *s = c->sections[BMX_SECTION_MODEL];
	const struct bmx_model_info *i = (const void *)(c->base + s->offset);
	uint64_t at = s->offset;

	if (s->size != sizeof(*i))
		return bmx_bad(c, "MODEL",
			       c->section_at[BMX_SECTION_MODEL] +
				       offsetof(struct bmx_section, size),
			       "size %llu, expected %zu", (unsigned long long)s->size, sizeof(*i));
	if (!bmx_name_ok(i->name, sizeof(i->name)))
		return bmx_bad(c, "MODEL", at, "name is empty, unterminated or not [A-Za-z0-9._-]");
	if (i->node_count < 1 || i->node_count > BMX_MAX_NODES)
		return bmx_bad(c, "MODEL", at + offsetof(struct bmx_model_info, node_count),
			       "node_count %u, expected 1..%d", i->node_count, BMX_MAX_NODES);
	if (i->layer_count > BMX_MAX_LAYERS)
		return bmx_bad(c, "MODEL", at + offsetof(struct bmx_model_info, layer_count),
			       "layer_count %u, at most %d", i->layer_count, BMX_MAX_LAYERS);
	if (i->input_node >= i->node_count || i->output_node >= i->node_count)
		return bmx_bad(c, "MODEL", at + offsetof(struct bmx_model_info, input_node),
			       "input_node %u / output_node %u, expected < node_count %u",
			       i->input_node, i->output_node, i->node_count);
	if (i->input_h < 1 || i->input_w < 1 || i->input_c < 1 || i->input_h > BMX_MAX_DIM ||
	    i->input_w > BMX_MAX_DIM || i->input_c > BMX_MAX_DIM)
		return bmx_bad(c, "MODEL", at + offsetof(struct bmx_model_info, input_h),
			       "input shape %ux%ux%u, each must be 1..%d", i->input_h, i->input_w,
			       i->input_c, BMX_MAX_DIM);
	if (!i->bits_mask || (i->bits_mask & ~BMX_BITS_MASK_VALID))
		return bmx_bad(c, "MODEL", at + offsetof(struct bmx_model_info, bits_mask),
			       "bits_mask 0x%x, expected a non-empty subset of bits 2..8 (0x1fc)",
			       i->bits_mask);
	if (i->flags || i->reserved0 || !all_zero(i->reserved, sizeof(i->reserved)))
		return bmx_bad(c, "MODEL", at + offsetof(struct bmx_model_info, flags),
			       "flags or reserved bytes are not zero");
	c->info = i;
	return 0;
}

/* Load, validate, resolve. On failure everything allocated is freed. */
static int check_all(struct bmx_check *c)
{
	int r;

	if ((r = check_header(c)) < 0 || (r = check_sections(c)) < 0 ||
	    (r = check_checksum(c)) < 0 || (r = check_info(c)) < 0 ||
	    (r = bmx_check_graph(c)) < 0 || (r = bmx_check_layers(c)) < 0 ||
	    (r = bmx_check_adaptive(c)) < 0)
		return r;
	return 0;
}

int bmx_model_load_memory(const void *data, size_t size, struct bmx_model **out,
			  struct bmx_error *err)
{
	struct bmx_check c = { .base = data, .size = size, .err = err };
	int r;

	*out = NULL;
	if ((uintptr_t)data % BMX_ALIGN) {
		if (err)
			snprintf(err->msg, sizeof(err->msg),
				 "model data is not %d-byte aligned in memory", BMX_ALIGN);
		return -EINVAL;
	}
	c.model = calloc(1, sizeof(*c.model));
	if (!c.model)
		return -ENOMEM;
	r = check_all(&c);
	if (r < 0) {
		bmx_model_free(c.model);
		return r;
	}
	*out = c.model;
	return 0;
}

int bmx_model_load_fd(int fd, struct bmx_model **out, struct bmx_error *err)
{
	struct stat st;
	void *p;
	int r;

	*out = NULL;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		if (err)
			snprintf(err->msg, sizeof(err->msg), "fstat: %s", strerror(-r));
		return r;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(struct bmx_file_header)) {
		if (err)
			snprintf(err->msg, sizeof(err->msg),
				 "HEADER: not a regular file of at least 64 bytes at byte 0x0");
		return -EBADMSG;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		r = -errno;
		if (err)
			snprintf(err->msg, sizeof(err->msg), "cannot map the file: %s",
				 strerror(-r));
		return r;
	}
	r = bmx_model_load_memory(p, (size_t)st.st_size, out, err);
	if (r < 0) {
		munmap(p, (size_t)st.st_size);
		return r;
	}
	(*out)->mapped = 1;
	return 0;
}

int bmx_model_load_file(const char *path, struct bmx_model **out, struct bmx_error *err)
{
	int fd, r;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		if (err)
			snprintf(err->msg, sizeof(err->msg), "%s: %s", path, strerror(-r));
		return r;
	}
	r = bmx_model_load_fd(fd, out, err);
	close(fd);
	return r;
}

void bmx_model_free(struct bmx_model *m)
{
	if (!m)
		return;
	if (m->mapped)
		munmap((void *)m->base, m->size);
	free(m->order);
	free(m->position);
	free(m->views);
	free(m);
}
