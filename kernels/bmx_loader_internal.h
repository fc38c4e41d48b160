/* SPDX-License-Identifier: MIT */
/*
 * bmx_loader_internal.h — state shared by the loader's two files (bmx_loader.c: header,
 * sections, checksum, model info; bmx_loader_graph.c: nodes, graph, shapes, layers, arrays;
 * bmx_loader_adaptive.c: the optional adaptive-precision sections).
 */
#ifndef BITMIX_BMX_LOADER_INTERNAL_H
#define BITMIX_BMX_LOADER_INTERNAL_H

#include <stdbool.h>

#include "bmx_model.h"
#include "bmx_writer.h"

struct bmx_check {
	const uint8_t *base;
	size_t size;
	struct bmx_error *err;
	struct bmx_model *model;
	const struct bmx_file_header *header;
	const struct bmx_section *sections[BMX_SECTION_TYPE_MAX_ + 1];
	uint64_t section_at[BMX_SECTION_TYPE_MAX_ +
			    1]; /* file offset of each section's table entry */
	const struct bmx_model_info *info;
};

/* Fill c->err with "SECTION: <what> at byte 0x<offset>" and return -EBADMSG. */
int bmx_bad(struct bmx_check *c, const char *section, uint64_t offset, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* NUL-terminated within MAX, non-empty, [A-Za-z0-9._-] only. */
bool bmx_name_ok(const char *s, size_t max);

int bmx_check_graph(struct bmx_check *c);
int bmx_check_layers(struct bmx_check *c);
int bmx_check_adaptive(struct bmx_check *c); /* the optional CASCADE and POLICY sections */

#endif
