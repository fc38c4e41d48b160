/* SPDX-License-Identifier: MIT */
/*
 * bmx_arch.h — standard architectures with seeded random weights (tools/bmx_arch.c): for tests,
 * benchmarks and bmx-gen, never for bitmixd (a library of its own, not in the engine's).
 */
#ifndef BMX_ARCH_H
#define BMX_ARCH_H

#include <stddef.h>
#include <stdint.h>

/*
 * Build one of the standard architectures with random (seeded, reproducible) weights:
 * "tiny" (a few layers, for unit tests), "fmnist" (the residual CNN shape of the bundled
 * Fashion-MNIST model: 28x28x1 input, 10 logits, residual adds, a depthwise conv),
 * "fmnist-adaptive" (the same with CASCADE and POLICY sections, for adaptive tests), and
 * "resnet18" (224x224x3, 1000 logits). Returns 0 or -errno (-EINVAL for an unknown arch).
 */
int bmx_build_arch(const char *arch, uint64_t seed, const char *name, void **out, size_t *size);

#endif
