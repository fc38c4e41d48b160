/* SPDX-License-Identifier: MIT */
/*
 * kern_pack.c — the portable side of the fast kernels: repacking 8-bit OHWI codes into
 * most-significant-first bit-planes (kern.h) once at engine creation, the depthwise tap-major
 * copy, the choice of kernel path (CPU features, BITMIX_KERNELS) and a portable quantizer.
 *
 * Memory: packed arrays are 64-byte aligned and zero-padded, so the SIMD paths may read whole
 * 64-byte blocks of any row without bounds checks.
 */
#include <errno.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kern.h"

static void *zalloc64(size_t bytes)
{
	size_t size = (bytes + 63) / 64 * 64;
	void *p = aligned_alloc(64, size ? size : 64);

	if (p)
		memset(p, 0, size ? size : 64);
	return p;
}

/* The 8 x 8 bit matrix X (byte r, bit c) transposed: byte c, bit r (Hacker's Delight 7-3). */
static uint64_t transpose8x8(uint64_t x)
{
	uint64_t t;

	t = (x ^ (x >> 7)) & UINT64_C(0x00aa00aa00aa00aa);
	x ^= t ^ (t << 7);
	t = (x ^ (x >> 14)) & UINT64_C(0x0000cccc0000cccc);
	x ^= t ^ (t << 14);
	t = (x ^ (x >> 28)) & UINT64_C(0x00000000f0f0f0f0);
	return x ^ t ^ (t << 28);
}

/*
 * Where the 8 lanes 8q..8q+7 of step S of group G live in every plane, as a byte offset from
 * the plane's start (bit p of that byte is lane 8q + p). Plain and paired: word
 * kern_plane_word(), byte q. Blocked (see struct kern_planes): a full block of 8 steps is one
 * 64-byte line whose byte 16 L + 2 V + e holds lanes 16 L + 8 e .. + 7 of step 8 b + V.
 */
static size_t plane_byte(const struct kern_planes *p, uint32_t g, uint32_t s, unsigned q)
{
	const uint32_t steps = p->kp / KERN_KSTEP;
	const size_t group = (size_t)g * steps * sizeof(uint64_t);

	if (p->order != KERN_PLANES_BLOCKED || s >= steps / 8 * 8)
		return kern_plane_word(p, g, s) * sizeof(uint64_t) + q;
	return group + (size_t)s / 8 * 64 + 16 * (q / 2) + 2 * (s % 8) + q % 2;
}

/*
 * The codes of lanes 8q..8q+7 of step S of group G as the bytes of a word: positions 4s..4s+3
 * of channel 16g + 2q (bytes 0..3) and of the next channel (bytes 4..7), 0 past N or K.
 */
static uint64_t lanes8(const int8_t *codes, uint32_t n, uint32_t k, uint32_t g, uint32_t s,
		       unsigned q)
{
	const uint32_t o = g * KERN_GROUP + 2 * q, i = s * KERN_KSTEP;
	uint32_t half[2] = { 0, 0 };

	for (unsigned h = 0; h < 2; h++) {
		if (o + h >= n)
			break;
		if (i + KERN_KSTEP <= k)
			memcpy(&half[h], codes + (size_t)(o + h) * k + i, sizeof(half[h]));
		else
			for (uint32_t t = 0; i + t < k; t++)
				half[h] |= (uint32_t)(uint8_t)codes[(size_t)(o + h) * k + i + t]
					   << (8 * t);
	}
	return half[0] | (uint64_t)half[1] << 32; /* little-endian: byte p is lane 8q + p */
}

/*
 * Eight weights at a time: their codes gathered into a word, the 8 x 8 bits transposed, so that
 * byte b holds bit b of the 8 codes, which is plane 7 - b's byte of those lanes (ResNet-18's
 * 11.7 M weights: about 270 ms one bit at a time).
 */
int kern_planes_pack(const int8_t *codes, uint32_t n, uint32_t k, enum kern_plane_order order,
		     struct kern_planes *p)
{
	uint8_t *bytes;
	size_t plane_bytes;

	memset(p, 0, sizeof(*p));
	p->order = order;
	p->n = n;
	p->k = k;
	p->n_pad = (n + KERN_PANEL - 1) / KERN_PANEL * KERN_PANEL;
	p->kp = (k + KERN_KSTEP - 1) / KERN_KSTEP * KERN_KSTEP;
	p->plane_words = (size_t)p->n_pad / KERN_GROUP * kern_plane_steps(p);
	p->words = zalloc64(8 * p->plane_words * sizeof(uint64_t));
	p->sum_b = zalloc64(9 * (size_t)p->n_pad * sizeof(int32_t));
	if (!p->words || !p->sum_b) {
		kern_planes_free(p);
		return -ENOMEM;
	}
	bytes = (uint8_t *)p->words;
	plane_bytes = p->plane_words * sizeof(uint64_t);
	for (uint32_t g = 0; g * KERN_GROUP < n; g++)
		for (unsigned q = 0; q < 8; q++)
			for (uint32_t s = 0; s < p->kp / KERN_KSTEP; s++) {
				const uint64_t x = transpose8x8(lanes8(codes, n, k, g, s, q));
				const size_t at = plane_byte(p, g, s, q);

				for (unsigned j = 0; x && j < 8; j++)
					bytes[at + j * plane_bytes] = (uint8_t)(x >> (8 * (7 - j)));
			}
	for (uint32_t o = 0; o < n; o++) {
		const int8_t *row = codes + (size_t)o * k;

		for (unsigned w = BMX_MIN_BITS; w <= BMX_MAX_BITS; w++) {
			const int8_t keep = (int8_t)(0xff << (8 - w));
			int32_t sum = 0;

			for (uint32_t i = 0; i < k; i++)
				sum += (int8_t)(row[i] & keep);
			p->sum_b[w * p->n_pad + o] = sum;
		}
	}
	return 0;
}

void kern_planes_free(struct kern_planes *p)
{
	free(p->words);
	free(p->sum_b);
	p->words = NULL;
	p->sum_b = NULL;
}

int kern_dw_pack(const int8_t *codes, uint32_t c, uint32_t taps, struct kern_dw_weights *d)
{
	d->c = c;
	d->c_pad = (c + 15) / 16 * 16;
	d->taps = taps;
	d->codes = zalloc64((size_t)taps * d->c_pad);
	if (!d->codes)
		return -ENOMEM;
	for (uint32_t ch = 0; ch < c; ch++)
		for (uint32_t t = 0; t < taps; t++)
			d->codes[(size_t)t * d->c_pad + ch] = codes[(size_t)ch * taps + t];
	return 0;
}

void kern_dw_free(struct kern_dw_weights *d)
{
	free(d->codes);
	d->codes = NULL;
}

void kern_quantize_portable(const float *x, size_t n, float inv, int32_t lo, int32_t hi,
			    int32_t off, uint8_t *u)
{
	const float flo = (float)lo, fhi = (float)hi;

	for (size_t i = 0; i < n; i++) {
		float t = x[i] * inv;

		t = fmaxf(t, flo); /* NaN -> lo */
		t = fminf(t, fhi);
		u[i] = (uint8_t)((int32_t)rintf(t) + off);
	}
}

void kern_row_sums_portable(const uint8_t *rows, size_t lda, uint32_t m, uint32_t k, int32_t off,
			    int32_t *sum_q)
{
	for (uint32_t r = 0; r < m; r++) {
		const uint8_t *row = rows + r * lda;
		int32_t sum = 0;

		for (uint32_t i = 0; i < k; i++)
			sum += row[i];
		sum_q[r] = sum - off * (int32_t)k;
	}
}

static const char *const path_names[] = {
	[BMX_KERNELS_AUTO] = "auto",	   [BMX_KERNELS_REF] = "ref",
	[BMX_KERNELS_AVX2] = "avx2",	   [BMX_KERNELS_AVX512] = "avx512",
	[BMX_KERNELS_AVXVNNI] = "avxvnni",
};

const char *bmx_kernels_name(enum bmx_kernels_path path)
{
	return (unsigned)path < sizeof(path_names) / sizeof(path_names[0]) ? path_names[path] : "?";
}

int bmx_kernels_parse(const char *name, enum bmx_kernels_path *path)
{
	for (unsigned i = 0; i < sizeof(path_names) / sizeof(path_names[0]); i++)
		if (strcmp(name, path_names[i]) == 0) {
			*path = (enum bmx_kernels_path)i;
			return 0;
		}
	return -EINVAL;
}

int bmx_kernels_supported(enum bmx_kernels_path path)
{
#if defined(__x86_64__)
	__builtin_cpu_init();
	switch (path) {
	case BMX_KERNELS_AVX512:
		return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		       __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
		       __builtin_cpu_supports("gfni");
	case BMX_KERNELS_AVX2:
		return __builtin_cpu_supports("avx2");
	case BMX_KERNELS_AVXVNNI: {
		/* CPUID.(7, 1):EAX bit 4; clang 14's __builtin_cpu_supports() does not know it */
		unsigned a, b, c, d;

		return __builtin_cpu_supports("avx2") && __get_cpuid_count(7, 1, &a, &b, &c, &d) &&
		       (a >> 4 & 1);
	}
	default:
		return 1;
	}
#else
	return path == BMX_KERNELS_REF || path == BMX_KERNELS_AUTO;
#endif
}

enum bmx_kernels_path bmx_kernels_resolve(enum bmx_kernels_path requested)
{
	const char *env = getenv("BITMIX_KERNELS");
	enum bmx_kernels_path p = requested;

	if (p == BMX_KERNELS_AUTO && env && bmx_kernels_parse(env, &p) < 0)
		p = BMX_KERNELS_AUTO;
	if (p == BMX_KERNELS_AUTO)
		p = BMX_KERNELS_AVX512;
	if (p == BMX_KERNELS_AVX512 && !bmx_kernels_supported(p))
		p = BMX_KERNELS_AVXVNNI;
	if (p == BMX_KERNELS_AVXVNNI && !bmx_kernels_supported(p))
		p = BMX_KERNELS_AVX2;
	if (p == BMX_KERNELS_AVX2 && !bmx_kernels_supported(p))
		p = BMX_KERNELS_REF;
	return p;
}
