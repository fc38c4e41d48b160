/* SPDX-License-Identifier: MIT */
/* bits_spec.h — the command-line bit-width spec that bmx-eval and bmx-adapt both take. */
#ifndef BITMIX_TOOLS_BITS_SPEC_H
#define BITMIX_TOOLS_BITS_SPEC_H

#include "bmx_engine.h"

/*
 * SPEC: "B" (every layer at B, or at its highest bit-width if it lacks B) or one bit-width per
 * layer, comma-separated, each supported by its layer. Fills BITS (weights and activations
 * alike). Returns 0, or -EINVAL after printing "PROG: SPEC: expected ..." to stderr.
 */
int bits_spec_parse(const char *prog, const struct bmx_model *m, const char *spec,
		    struct bmx_layer_bits *bits);

#endif
