/* SPDX-License-Identifier: MIT */
/*
 * cost_table.c — the per-layer cost table: measuring it node by node on the engine, and the
 * estimates that stand in for rows not yet measured (cost_table.h).
 *
 * Why node by node: the uniform runs give each layer's time at every bit-width in one run per
 * bit-width, on exactly the code a request runs (fused ReLUs and requantizations included),
 * where timing each layer alone would time a different program. The statistic is the median of
 * the repetitions, and the bit-widths take turns within each repetition, so a noisy moment (a
 * neighbour's burst, a frequency change) falls on one sample of several bit-widths rather than
 * on all samples of one, and cannot reorder them. Long runs (the large batch) are timed on the
 * thread's CPU clock, which a preemption does not advance: at idle priority on a busy machine
 * the wall clock would time the neighbours.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bmx_util.h"
#include "cost_table.h"

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int cost_table_init(struct cost_table *t, const struct bmx_model *model, uint32_t large_batch)
{
	memset(t, 0, sizeof(*t));
	t->layers = calloc(model->layer_count, sizeof(*t->layers));
	if (!t->layers)
		return -ENOMEM;
	t->layer_count = model->layer_count;
	t->batch[0] = 1;
	t->batch[1] = large_batch ? large_batch : 1;
	for (uint32_t l = 0; l < t->layer_count; l++)
		t->layers[l].allowed = model->layers[l].bits_mask & 0x1fc;
	return 0;
}

void cost_table_free(struct cost_table *t)
{
	free(t->layers);
	t->layers = NULL;
	t->layer_count = 0;
}

int cost_table_copy(struct cost_table *dst, const struct cost_table *src)
{
	if (dst->layer_count != src->layer_count) {
		struct cost_layer *v = realloc(dst->layers, src->layer_count * sizeof(*v));

		if (!v && src->layer_count)
			return -ENOMEM;
		dst->layers = v;
	}
	dst->layer_count = src->layer_count;
	memcpy(dst->batch, src->batch, sizeof(dst->batch));
	memcpy(dst->layers, src->layers, src->layer_count * sizeof(*dst->layers));
	return 0;
}

void cost_table_count(const struct cost_table *t, uint32_t *rows, uint32_t *measured)
{
	*rows = *measured = 0;
	for (uint32_t l = 0; l < t->layer_count; l++) {
		const struct cost_layer *c = &t->layers[l];

		*rows += (uint32_t)__builtin_popcount(c->allowed);
		*measured +=
			(uint32_t)__builtin_popcount(c->allowed & c->measured[0] & c->measured[1]);
	}
}

void cost_table_count_batch(const struct cost_table *t, unsigned bi, uint32_t *rows,
			    uint32_t *measured)
{
	*rows = *measured = 0;
	for (uint32_t l = 0; l < t->layer_count; l++) {
		*rows += (uint32_t)__builtin_popcount(t->layers[l].allowed);
		*measured += (uint32_t)__builtin_popcount(t->layers[l].allowed &
							  t->layers[l].measured[bi]);
	}
}

/* Each layer at the allowed bits nearest B (the lower on a tie). */
static void uniform_bits(const struct bmx_model *model, unsigned b, struct bmx_layer_bits *bits)
{
	for (uint32_t l = 0; l < model->layer_count; l++) {
		const struct bmx_layer_view *v = &model->views[l];
		unsigned best = v->bits[0];

		for (unsigned i = 0; i < v->nbits; i++)
			if (abs((int)v->bits[i] - (int)b) < abs((int)best - (int)b))
				best = v->bits[i];
		bits[l] = (struct bmx_layer_bits){ (uint8_t)best, (uint8_t)best };
	}
}

static unsigned nearest_allowed(uint16_t allowed, unsigned b)
{
	for (unsigned d = 0; d <= 6; d++) {
		if (b >= d && (allowed & (1u << (b - d))))
			return b - d;
		if (b + d <= 8 && (allowed & (1u << (b + d))))
			return b + d;
	}
	return 0;
}

double cost_table_uniform_ns(const struct cost_table *t, unsigned bi, unsigned b)
{
	double sum = 0;

	for (uint32_t l = 0; l < t->layer_count; l++) {
		unsigned lb = nearest_allowed(t->layers[l].allowed, b);

		if (lb)
			sum += t->layers[l].ns[bi][lb];
	}
	return sum;
}

/* Everything one batch's measurement needs, allocated once. */
struct meter {
	const struct bmx_engine *e;
	const struct bmx_model *m;
	uint32_t batch, layers;
	unsigned nb, bits[7];		/* the bit-widths measured */
	struct bmx_layer_bits *uniform; /* [nb][layers] */
	uint32_t *layer_of;		/* [node_count]: the layer each position's time goes to */
	uint64_t *node_ns;		/* [node_count] */
	double *samples;		/* [nb][reps][layers], ns per run */
	double *sorted;			/* [reps] */
	int clock;			/* what a run's nodes are timed with */
	float *input;
	void *scratch;
};

static void meter_free(struct meter *mt)
{
	free(mt->uniform);
	free(mt->layer_of);
	free(mt->node_ns);
	free(mt->samples);
	free(mt->sorted);
	free(mt->input);
	free(mt->scratch);
}

/* Positions before the first layer go to it; any other non-layer node to the layer before it. */
static void attribute_nodes(struct meter *mt)
{
	uint32_t last = UINT32_MAX, pending = 0;

	for (uint32_t p = 0; p < mt->m->node_count; p++) {
		const struct bmx_node *n = &mt->m->nodes[mt->m->order[p]];

		if (n->layer >= 0) {
			last = (uint32_t)n->layer;
			for (uint32_t q = pending; q < p; q++)
				mt->layer_of[q] = last;
			pending = p + 1;
		}
		mt->layer_of[p] = last;
	}
	for (uint32_t q = pending; q < mt->m->node_count && last == UINT32_MAX; q++)
		mt->layer_of[q] = 0;
}

static int meter_init(struct meter *mt, const struct cost_table *t, const struct bmx_engine *e,
		      uint32_t batch, unsigned reps)
{
	const struct bmx_model *m = bmx_engine_model(e);
	size_t in = bmx_model_input_size(m) * batch;

	memset(mt, 0, sizeof(*mt));
	mt->e = e;
	mt->m = m;
	mt->batch = batch;
	mt->layers = t->layer_count;
	for (unsigned b = 2; b <= 8; b++)
		if (m->info->bits_mask & (1u << b))
			mt->bits[mt->nb++] = b;
	mt->uniform = calloc((size_t)mt->nb * mt->layers + 1, sizeof(*mt->uniform));
	mt->layer_of = calloc(m->node_count, sizeof(*mt->layer_of));
	mt->node_ns = calloc(m->node_count, sizeof(*mt->node_ns));
	mt->samples = calloc((size_t)mt->nb * reps * mt->layers + 1, sizeof(*mt->samples));
	mt->sorted = calloc(reps + 1, sizeof(*mt->sorted));
	mt->input = malloc(in * sizeof(float));
	mt->scratch = aligned_alloc(64, (bmx_engine_scratch_size(e, batch) + 63) / 64 * 64);
	if (!mt->uniform || !mt->layer_of || !mt->node_ns || !mt->samples || !mt->sorted ||
	    !mt->input || !mt->scratch) {
		meter_free(mt);
		return -ENOMEM;
	}
	for (size_t i = 0; i < in; i++)
		mt->input[i] =
			(float)(i % 251) / 251.0f; /* not zeros: no path may take a shortcut */
	for (unsigned k = 0; k < mt->nb; k++)
		uniform_bits(m, mt->bits[k], mt->uniform + (size_t)k * mt->layers);
	attribute_nodes(mt);
	return 0;
}

/*
 * One timed run at the K-th bit-width into OUT[layers] (NULL: the warm-up, *WALL_NS its time);
 * *CLEAN false if the wall clock times its nodes and the scheduler interrupted it.
 */
static int timed_run(struct meter *mt, unsigned k, double *out, bool *clean, uint64_t *wall_ns)
{
	uint64_t c0 = thread_cpu_ns(), w0 = now_ns();
	int r = bmx_engine_run_timed(mt->e, mt->uniform + (size_t)k * mt->layers, mt->batch,
				     mt->input, mt->scratch, mt->clock, mt->node_ns);
	uint64_t w = now_ns() - w0, c = thread_cpu_ns() - c0;

	if (r < 0)
		return r;
	if (wall_ns)
		*wall_ns = w;
	*clean = mt->clock == CLOCK_THREAD_CPUTIME_ID || (double)c >= 0.97 * (double)w;
	for (uint32_t l = 0; out && l < mt->layers; l++)
		out[l] = 0;
	for (uint32_t p = 0; out && p < mt->m->node_count; p++)
		out[mt->layer_of[p]] += (double)mt->node_ns[p];
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	const double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The median of the reps of (K, L) and its relative standard error into the table's row. */
static void settle_row(struct meter *mt, struct cost_layer *c, unsigned bi, unsigned k, uint32_t l,
		       unsigned reps)
{
	const unsigned b = mt->bits[k];
	double med;

	for (unsigned r = 0; r < reps; r++)
		mt->sorted[r] = mt->samples[((size_t)k * reps + r) * mt->layers + l];
	qsort(mt->sorted, reps, sizeof(double), cmp_double);
	med = reps % 2 ? mt->sorted[reps / 2]
		       : (mt->sorted[reps / 2 - 1] + mt->sorted[reps / 2]) / 2;
	c->ns[bi][b] = med / mt->batch;
	c->rel_error[bi][b] =
		med > 0 ? 0.93 * (mt->sorted[(3 * (reps - 1)) / 4] - mt->sorted[(reps - 1) / 4]) /
				  sqrt(reps) / med
			: 0;
	c->measured[bi] |= (uint16_t)(1u << b);
}

/*
 * The thread's CPU clock ignores preemption (a long run at idle priority is preempted often) but
 * costs a system call, microseconds in a VM: it times the nodes when its reads, two per node,
 * stay under 1% of a run (the slowest warm-up run, WALL_NS); the wall clock (vDSO) otherwise.
 */
static int pick_clock(const struct meter *mt, uint64_t wall_ns)
{
	uint64_t reads[9];

	for (int i = 0; i < 9; i++) {
		uint64_t t0 = now_ns();

		thread_cpu_ns();
		reads[i] = now_ns() - t0;
	}
	for (int i = 1; i < 9; i++) /* the median, by insertion sort */
		for (int j = i; j > 0 && reads[j] < reads[j - 1]; j--) {
			uint64_t x = reads[j];

			reads[j] = reads[j - 1];
			reads[j - 1] = x;
		}
	return (double)wall_ns >= 100.0 * 2 * mt->m->node_count * (double)reads[4]
		       ? CLOCK_THREAD_CPUTIME_ID
		       : CLOCK_MONOTONIC;
}

static bool stopped(const bool *stop)
{
	return stop && __atomic_load_n(stop, __ATOMIC_RELAXED);
}

static bool late(uint64_t deadline_ns)
{
	return deadline_ns && now_ns() > deadline_ns;
}

int cost_measure(struct cost_table *t, const struct bmx_engine *engine, unsigned bi, unsigned reps,
		 uint64_t deadline_ns, const bool *stop)
{
	struct meter mt;
	uint64_t slowest = 0;
	bool clean;
	int r;

	if (bi >= COST_BATCHES || reps < 1)
		return -EINVAL;
	r = meter_init(&mt, t, engine, t->batch[bi], reps);
	if (r < 0)
		return r;
	mt.clock = CLOCK_MONOTONIC;
	for (unsigned k = 0; k < mt.nb && r == 0; k++) { /* warm-up: caches, page faults, clocks */
		uint64_t wall;

		r = timed_run(&mt, k, NULL, &clean, &wall);
		slowest = wall > slowest ? wall : slowest;
	}
	mt.clock = pick_clock(&mt, slowest);
	for (unsigned rep = 0; rep < reps && r == 0; rep++) {
		for (unsigned i = 0; i < mt.nb && r == 0; i++) {
			unsigned k = (i + rep) %
				     mt.nb; /* take turns, from a different start each time */
			double *out = mt.samples + ((size_t)k * reps + rep) * mt.layers;

			if (stopped(stop))
				r = -ECANCELED;
			else if (late(deadline_ns))
				r = -ETIME;
			/*
			 * Short runs: one untimed run first, so that the timed one finds this
			 * bit-width's weights in the caches, as a server running it does (the
			 * turns would otherwise time the misses the previous bit-width left).
			 */
			if (r == 0 && mt.clock == CLOCK_MONOTONIC)
				r = timed_run(&mt, k, NULL, &clean, NULL);
			for (int tries = 0; r == 0 && tries < 5; tries++) {
				r = timed_run(&mt, k, out, &clean, NULL);
				if (clean)
					break;
			}
		}
	}
	for (unsigned k = 0; k < mt.nb && r == 0; k++)
		for (uint32_t l = 0; l < mt.layers; l++)
			if (t->layers[l].allowed & (1u << mt.bits[k]))
				settle_row(&mt, &t->layers[l], bi, k, l, reps);
	meter_free(&mt);
	return r;
}

/* Layer C at batch BI, bits B, from its measured rows: interpolated in bits, flat beyond. */
static bool from_layer(const struct cost_layer *c, unsigned bi, unsigned b, double *ns)
{
	int lo = -1, hi = -1;

	for (int x = (int)b - 1; x >= 2 && lo < 0; x--)
		if (c->measured[bi] & (1u << x))
			lo = x;
	for (int x = (int)b + 1; x <= 8 && hi < 0; x++)
		if (c->measured[bi] & (1u << x))
			hi = x;
	if (lo < 0 && hi < 0)
		return false;
	if (lo < 0 || hi < 0)
		*ns = c->ns[bi][lo < 0 ? hi : lo];
	else
		*ns = c->ns[bi][lo] + (c->ns[bi][hi] - c->ns[bi][lo]) * ((int)b - lo) / (hi - lo);
	return true;
}

/* Batch BI's measured time over batch OTHER's, on the rows measured at both (1 if none). */
static double batch_ratio(const struct cost_table *t, unsigned bi, unsigned other)
{
	double a = 0, o = 0;

	for (uint32_t l = 0; l < t->layer_count; l++)
		for (unsigned b = 2; b <= 8; b++)
			if (t->layers[l].measured[bi] & t->layers[l].measured[other] & (1u << b)) {
				a += t->layers[l].ns[bi][b];
				o += t->layers[l].ns[other][b];
			}
	return a > 0 && o > 0 ? a / o : 1.0;
}

/* ns per BitOp of the rows measured at batch BI (else the other batch), else 1 ps. */
static double ns_per_bitop(const struct cost_table *t, const struct bmx_model *model)
{
	for (unsigned bi = 0; bi < COST_BATCHES; bi++) {
		double ns = 0, bitops = 0;

		for (uint32_t l = 0; l < t->layer_count; l++)
			for (unsigned b = 2; b <= 8; b++)
				if (t->layers[l].measured[bi] & (1u << b)) {
					ns += t->layers[l].ns[bi][b];
					bitops += (double)model->layers[l].macs * b * b;
				}
		if (ns > 0 && bitops > 0)
			return ns / bitops;
	}
	return 1e-3;
}

void cost_table_estimate(struct cost_table *t, const struct bmx_model *model, char *why,
			 size_t why_len)
{
	unsigned n_layer = 0, n_batch = 0, n_bitops = 0;
	const double per_bitop = ns_per_bitop(t, model);
	double ratio[COST_BATCHES] = { batch_ratio(t, 0, 1), batch_ratio(t, 1, 0) };

	for (uint32_t l = 0; l < t->layer_count; l++) {
		struct cost_layer *c = &t->layers[l];
		uint16_t known[COST_BATCHES];

		for (unsigned bi = 0; bi < COST_BATCHES; bi++) {
			known[bi] = c->measured[bi];
			for (unsigned b = 2; b <= 8; b++) {
				if (!(c->allowed & (1u << b)) || (c->measured[bi] & (1u << b)))
					continue;
				if (from_layer(c, bi, b, &c->ns[bi][b])) {
					known[bi] |= (uint16_t)(1u << b);
					n_layer++;
				}
			}
		}
		for (unsigned bi = 0; bi < COST_BATCHES; bi++)
			for (unsigned b = 2; b <= 8; b++) {
				if (!(c->allowed & (1u << b)) || (known[bi] & (1u << b)))
					continue;
				if (known[1 - bi] & (1u << b)) {
					c->ns[bi][b] = c->ns[1 - bi][b] * ratio[bi];
					n_batch++;
				} else {
					c->ns[bi][b] =
						per_bitop * (double)model->layers[l].macs * b * b;
					n_bitops++;
				}
				if (c->ns[bi][b] <= 0)
					c->ns[bi][b] = 1e-3;
			}
	}
	if (why && why_len && n_layer + n_batch + n_bitops == 0)
		why[0] = '\0';
	else if (why)
		snprintf(
			why, why_len,
			"estimated: %u row(s) from the layer's measured bit-widths, %u from the other "
			"batch, %u by BitOps (%.3g ns per BitOp)",
			n_layer, n_batch, n_bitops, per_bitop);
}
