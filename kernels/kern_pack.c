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

/*
 * Where position I of channel O's row lives in every plane: the word, in units of words from
 * the plane's start, and the bit. Natural: word [group][step], bit lane + i % 4. Blocked (see
 * struct kern_planes): a full block of 8 steps is one 64-byte line whose byte
 * 16 L + 2 V + e holds, at bit p, lane z = 16 L + 8 e + p of step 8 b + V.
 */
static void plane_place(const struct kern_planes *p, uint32_t o, uint32_t i, size_t *word,
			unsigned *bit)
{
	const uint32_t steps = p->kp / KERN_KSTEP, s = i / KERN_KSTEP;
	const unsigned z = (o % KERN_GROUP) * KERN_KSTEP + i % KERN_KSTEP;
	const size_t group = (size_t)(o / KERN_GROUP) * steps;

	if (!p->blocked || s >= steps / 8 * 8) {
		*word = group + s;
		*bit = z;
		return;
	}
	const unsigned q = z / 8, x = 16 * (q / 2) + 2 * (s % 8) + q % 2;

	*word = group + s / 8 * 8 + x / 8;
	*bit = x % 8 * 8 + z % 8;
}

int kern_planes_pack(const int8_t *codes, uint32_t n, uint32_t k, int blocked, struct kern_planes *p)
{
	memset(p, 0, sizeof(*p));
	p->blocked = blocked;
	p->n = n;
	p->k = k;
	p->n_pad = (n + KERN_PANEL - 1) / KERN_PANEL * KERN_PANEL;
	p->kp = (k + KERN_KSTEP - 1) / KERN_KSTEP * KERN_KSTEP;
	p->plane_words = (size_t)p->n_pad / KERN_GROUP * (p->kp / KERN_KSTEP);
	p->words = zalloc64(8 * p->plane_words * sizeof(uint64_t));
	p->sum_b = zalloc64(9 * (size_t)p->n_pad * sizeof(int32_t));
	if (!p->words || !p->sum_b) {
		kern_planes_free(p);
		return -ENOMEM;
	}
	for (uint32_t o = 0; o < n; o++) {
		const int8_t *row = codes + (size_t)o * k;

		for (uint32_t i = 0; i < k; i++) {
			const uint8_t c = (uint8_t)row[i];
			size_t at;
			unsigned b;

			plane_place(p, o, i, &at, &b);
			for (unsigned j = 0; j < 8; j++)
				if (c & (0x80u >> j))
					p->words[at + j * p->plane_words] |= UINT64_C(1) << b;
		}
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
	[BMX_KERNELS_AUTO] = "auto",
	[BMX_KERNELS_REF] = "ref",
	[BMX_KERNELS_AVX2] = "avx2",
	[BMX_KERNELS_AVX512] = "avx512",
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
