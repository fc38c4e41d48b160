/* SPDX-License-Identifier: MIT */
/* bmx_pack.h — bmx-pack's parts: the --adaptive file reader (bmx_pack_adaptive.c). */
#ifndef BITMIX_BMX_PACK_H
#define BITMIX_BMX_PACK_H

#include <stdint.h>

#include "bmx_writer.h"

/* Read PATH (the format is at the top of bmx_pack_adaptive.c) into W's optional sections. */
int pack_adaptive(struct bmx_writer *w, uint32_t layers, const char *path);

#endif
