/* SPDX-License-Identifier: MIT */
/*
 * bench_peers.h — the peers bench/kernels measures beside bitmix, each optional at build time:
 * oneDNN's int8 matmul (u8 activations, s8 weights, s32 output; weights in the layout oneDNN
 * picks, reordered once, as an inference engine would) and OpenBLAS's fp32 sgemm (sgemv at
 * M = 1). Each returns the median seconds of ITERS runs, or -1 when the library is missing.
 * Run i uses copy i % COPIES of the weights (COPIES > 1 keeps them out of the caches).
 */
#ifndef BITMIX_BENCH_PEERS_H
#define BITMIX_BENCH_PEERS_H

#include <stdint.h>

double peer_onednn_matmul(uint32_t m, uint32_t k, uint32_t n, unsigned iters, unsigned copies);
double peer_openblas_sgemm(uint32_t m, uint32_t k, uint32_t n, unsigned threads, unsigned iters,
			   unsigned copies);
const char *peer_onednn_version(void);
/*
 * Hold oneDNN to the instruction set of bitmix's kernel path PATH ("avx2", "avxvnni"; any
 * other leaves it the CPU's best) unless ONEDNN_MAX_CPU_ISA says otherwise, so that a path
 * forced with BITMIX_KERNELS meets the peer a CPU of its kind would run. Before the first
 * peer_onednn_matmul(). The ISA oneDNN runs is in peer_onednn_version().
 */
void peer_onednn_limit_isa(const char *path);
const char *peer_openblas_version(void);

#endif
