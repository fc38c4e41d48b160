/* SPDX-License-Identifier: MIT */
/*
 * ref_double.c — the tests' double-precision model of the .bmx arithmetic (ref_double.h). It is
 * deliberately naive (direct loops with bounds checks per tap) and shares no code with ops_ref.c,
 * so that a shared misreading of the spec cannot hide in both.
 */
#include <math.h>

#include "ref_double.h"

uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

double rng_unit(struct rng *r)
{
	return (double)(rng_next(r) >> 11) / 9007199254740992.0;
}

int32_t rng_int(struct rng *r, int32_t lo, int32_t hi)
{
	return lo + (int32_t)(rng_next(r) % (uint64_t)((int64_t)hi - lo + 1));
}

uint32_t dref_out_dim(uint32_t in, uint32_t k, uint32_t s, uint32_t p0, uint32_t p1)
{
	return (uint32_t)floor(((double)in + p0 + p1 - k) / s) + 1;
}

int32_t dref_weight_k(int8_t c, unsigned w)
{
	return (int32_t)floor((double)c / ldexp(1.0, 8 - (int)w));
}

double dref_weight_real(int8_t c, unsigned w, double s_w)
{
	return (dref_weight_k(c, w) + 0.5) * s_w * ldexp(1.0, 8 - (int)w);
}

void dref_act_range(unsigned a, int act_signed, int32_t *lo, int32_t *hi)
{
	double levels = ldexp(1.0, (int)a);

	*lo = act_signed ? (int32_t)(-levels / 2) : 0;
	*hi = act_signed ? (int32_t)(levels / 2 - 1) : (int32_t)(levels - 1);
}

int32_t dref_code(double x, double step, int32_t lo, int32_t hi)
{
	double t = x / step;

	if (isnan(t) || t <= lo)
		return lo;
	if (t >= hi)
		return hi;
	return (int32_t)nearbyint(t);
}

static int inside(int64_t i, uint32_t n)
{
	return i >= 0 && i < (int64_t)n;
}

static size_t in_index(const struct dshape *s, uint32_t n, int64_t h, int64_t w, uint32_t c)
{
	return (((size_t)n * s->in_h + (size_t)h) * s->in_w + (size_t)w) * s->in_c + c;
}

void dref_conv(const struct dshape *s, const double *x, const double *wt, double *y)
{
	uint32_t cig = s->in_c / s->groups, cog = s->out_c / s->groups;

	for (uint32_t n = 0; n < s->batch; n++)
		for (uint32_t oh = 0; oh < s->out_h; oh++)
			for (uint32_t ow = 0; ow < s->out_w; ow++)
				for (uint32_t o = 0; o < s->out_c; o++) {
					double sum = 0;

					for (uint32_t i = 0; i < s->kh; i++)
						for (uint32_t j = 0; j < s->kw; j++)
							for (uint32_t ic = 0; ic < cig; ic++) {
								int64_t h = (int64_t)oh * s->sh +
									    i - s->pt,
									w = (int64_t)ow * s->sw +
									    j - s->pl;

								if (!inside(h, s->in_h) ||
								    !inside(w, s->in_w))
									continue;
								sum += wt[((size_t)o * s->kh * s->kw +
									   i * s->kw + j) *
										  cig +
									  ic] *
								       x[in_index(s, n, h, w,
										  (o / cog) * cig +
											  ic)];
							}
					*y++ = sum;
				}
}

static void pool(const struct dshape *s, const double *x, double *y, int average)
{
	for (uint32_t n = 0; n < s->batch; n++)
		for (uint32_t oh = 0; oh < s->out_h; oh++)
			for (uint32_t ow = 0; ow < s->out_w; ow++)
				for (uint32_t c = 0; c < s->in_c; c++) {
					double acc = average ? 0 : -INFINITY;

					for (uint32_t i = 0; i < s->kh; i++)
						for (uint32_t j = 0; j < s->kw; j++) {
							int64_t h = (int64_t)oh * s->sh + i - s->pt,
								w = (int64_t)ow * s->sw + j - s->pl;

							if (!inside(h, s->in_h) ||
							    !inside(w, s->in_w))
								continue;
							acc = average ? acc + x[in_index(s, n, h, w,
											 c)]
								      : fmax(acc,
									     x[in_index(s, n, h, w,
											c)]);
						}
					*y++ = average ? acc / (s->kh * s->kw) : acc;
				}
}

void dref_maxpool(const struct dshape *s, const double *x, double *y)
{
	pool(s, x, y, 0);
}

void dref_avgpool(const struct dshape *s, const double *x, double *y)
{
	pool(s, x, y, 1);
}

void dref_global_avgpool(uint32_t batch, uint32_t hw, uint32_t c, const double *x, double *y)
{
	for (uint32_t n = 0; n < batch; n++)
		for (uint32_t ch = 0; ch < c; ch++) {
			double sum = 0;

			for (uint32_t p = 0; p < hw; p++)
				sum += x[((size_t)n * hw + p) * c + ch];
			y[(size_t)n * c + ch] = sum / hw;
		}
}

void dref_softmax(uint32_t n, const double *x, double *y)
{
	double max = -INFINITY, sum = 0;

	for (uint32_t i = 0; i < n; i++)
		max = fmax(max, x[i]);
	for (uint32_t i = 0; i < n; i++)
		sum += exp(x[i] - max);
	for (uint32_t i = 0; i < n; i++)
		y[i] = exp(x[i] - max) / sum;
}
