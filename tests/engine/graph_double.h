/* SPDX-License-Identifier: MIT */
/*
 * graph_double.h — a whole-graph interpreter in double precision for the engine tests: simple
 * loops over the node list on top of ref_double.h, one sample at a time.
 */
#ifndef BITMIX_TEST_GRAPH_DOUBLE_H
#define BITMIX_TEST_GRAPH_DOUBLE_H

#include "bmx_engine.h"

/*
 * Run one sample of M at BITS. With FP = 0, activations are quantized as the spec says (in
 * double) and weights use their w-bit values; with FP = 1 nothing is quantized and weights take
 * their 8-bit real values, with the same TBN rows as BITS selects: the full-precision reference
 * of that operating point. OUT receives output_size values. Returns 0 or -ENOMEM.
 *
 * *AMBIGUOUS (if not NULL) counts the activations that fell so close to a rounding boundary
 * (x / step within 2e-6 * (|x / step| + 1) of k + 0.5, about ten times the float error) that
 * the engine's float value of x may round the other way: there, and only there, engine and
 * interpreter may legitimately differ by a whole code.
 */
int graph_double_run(const struct bmx_model *m, const struct bmx_layer_bits *bits, int fp,
		     const float *input, double *out, unsigned *ambiguous);

#endif
