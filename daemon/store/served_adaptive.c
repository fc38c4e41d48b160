/* SPDX-License-Identifier: MIT */
/*
 * served_adaptive.c — per-sample adaptive precision for a served model (docs/adaptive.md).
 *
 * A request's precision picks the mode: CURRENT takes the model's default (from
 * governor.policies.MODEL.precision), CASCADE and POLICY name one, FIXED runs the operating
 * point. An adaptive request runs kernels/bmx_adaptive.c with the snapshot of the operating
 * point as the ceiling and the policy's floor (the highest QoS floor held, or min_bits) as the
 * floor, reports what ran and the BitOps spent in its CQE, and adds to the model's counters.
 * The loop thread turns those counters into the cost scale the power model uses. Workers and the
 * loop share only atomics here.
 */
#include <errno.h>
#include <stdio.h>

#include "bmx_adaptive.h"
#include "daemon.h"
#include "log.h"

static const char *const mode_names[] = { "fixed", "cascade", "policy" };

const char *served_adaptive_mode_name(unsigned mode)
{
	return mode < 3 ? mode_names[mode] : "?";
}

/* The adaptive mode of PRECISION (enum bitmix_precision) on M. */
static unsigned mode_of(const struct served_model *m, uint8_t precision)
{
	switch (precision) {
	case BITMIX_PRECISION_CASCADE:
		return BMX_ADAPTIVE_CASCADE;
	case BITMIX_PRECISION_POLICY:
		return BMX_ADAPTIVE_POLICY;
	case BITMIX_PRECISION_CURRENT:
		return __atomic_load_n(&m->adaptive.default_mode, __ATOMIC_RELAXED);
	default:
		return BMX_ADAPTIVE_OFF;
	}
}

bool served_adaptive_supported(const struct served_model *m, uint8_t precision)
{
	return bmx_adaptive_supported(m->model, (enum bmx_adaptive_mode)mode_of(m, precision));
}

int served_adaptive_set_default(struct served_model *m, unsigned mode, const char *source)
{
	if (!bmx_adaptive_supported(m->model, (enum bmx_adaptive_mode)mode)) {
		log_error(
			"%s: governor.policies.%s.precision: %s, but %s has no %s section; requests "
			"run at the operating point",
			source, m->name, served_adaptive_mode_name(mode), m->path,
			mode == BMX_ADAPTIVE_POLICY ? "POLICY" : "CASCADE");
		mode = BMX_ADAPTIVE_OFF;
	}
	__atomic_store_n(&m->adaptive.default_mode, mode, __ATOMIC_RELAXED);
	return mode;
}

void served_adaptive_set_floor(void *userdata, uint8_t floor_bits)
{
	struct served_model *m = userdata;

	__atomic_store_n(&m->adaptive.floor, floor_bits, __ATOMIC_RELAXED);
}

bool served_adaptive_off(const struct served_model *m, uint8_t precision)
{
	return mode_of(m, precision) == BMX_ADAPTIVE_OFF;
}

size_t served_adaptive_scratch_size(const struct served_model *m, const struct bitmix_sqe *e)
{
	if (mode_of(m, e->precision) == BMX_ADAPTIVE_OFF)
		return bmx_engine_scratch_size(m->engine, e->batch);
	return bmx_adaptive_scratch_size(m->engine, e->batch);
}

int served_adaptive_run(struct served_model *m, struct job *job,
			const struct bmx_layer_bits *ceiling, void *scratch,
			const struct bmx_parallel *par, struct bmx_adaptive_result *results)
{
	const struct bmx_adaptive_request req = {
		.mode = (enum bmx_adaptive_mode)mode_of(m, job->sqe.precision),
		.ceiling = ceiling,
		.floor = __atomic_load_n(&m->adaptive.floor, __ATOMIC_RELAXED),
	};
	const uint32_t batch = job->sqe.batch;
	const uint64_t at_ceiling = bmx_bitops(m->model, ceiling, 0);
	uint32_t configs = 0, escalated = 0;
	uint64_t bitops = 0;
	int r;

	if (req.mode == BMX_ADAPTIVE_OFF) {
		job->adaptive = 0;
		job->bitops = at_ceiling * batch;
		return bmx_engine_run_parallel(m->engine, ceiling, batch, job->in, job->out,
					       scratch, par);
	}
	r = bmx_adaptive_run(m->engine, &req, batch, job->in, job->out, scratch, par, results);
	if (r < 0)
		return r;
	for (uint32_t s = 0; s < batch; s++) {
		configs |= 1u << results[s].config;
		escalated += results[s].runs > 1;
		bitops += results[s].bitops;
	}
	job->adaptive = configs | (uint32_t)req.mode << 8 |
			(escalated > 0xffff ? 0xffffu : escalated) << 16;
	job->bitops = bitops;
	__atomic_add_fetch(&m->adaptive.requests, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&m->adaptive.samples, batch, __ATOMIC_RELAXED);
	__atomic_add_fetch(&m->adaptive.escalated, escalated, __ATOMIC_RELAXED);
	__atomic_add_fetch(&m->adaptive.bitops, bitops, __ATOMIC_RELAXED);
	__atomic_add_fetch(&m->adaptive.ceiling_bitops, at_ceiling * batch, __ATOMIC_RELAXED);
	return 0;
}

/*
 * The cost scale of the traffic since the last call: adaptive samples cost bitops/ceiling_bitops
 * of the ceiling, the others 1 (BitOps as the unit of cost: docs/adaptive.md says what that
 * means on a CPU whose time barely depends on bits). No traffic: keep the last scale.
 */
void served_adaptive_tick(struct served_model *m)
{
	struct served_adaptive_window *w = &m->adaptive.window;
	const uint64_t samples = __atomic_load_n(&m->samples_completed, __ATOMIC_RELAXED);
	const uint64_t a = __atomic_load_n(&m->adaptive.samples, __ATOMIC_RELAXED);
	const uint64_t b = __atomic_load_n(&m->adaptive.bitops, __ATOMIC_RELAXED);
	const uint64_t c = __atomic_load_n(&m->adaptive.ceiling_bitops, __ATOMIC_RELAXED);
	const uint64_t dn = samples - w->samples, da = a - w->adaptive_samples;
	const uint64_t db = b - w->bitops, dc = c - w->ceiling_bitops;

	if (m->policy && dn > 0 && da <= dn) {
		double ratio = dc ? (double)db / (double)dc : 1.0;

		gov_policy_set_cost_scale(m->policy, 1.0 - (double)da / (double)dn * (1.0 - ratio));
	}
	*w = (struct served_adaptive_window){ samples, a, b, c };
}

void policy_reply_adaptive(const struct served_model *m, const struct gov_policy *p,
			   struct bitmix_policy_reply *rep)
{
	const uint64_t requests = __atomic_load_n(&m->adaptive.requests, __ATOMIC_RELAXED);

	snprintf(rep->precision, sizeof(rep->precision), "%s",
		 served_adaptive_mode_name(
			 __atomic_load_n(&m->adaptive.default_mode, __ATOMIC_RELAXED)));
	rep->adaptive_requests = requests;
	rep->adaptive_samples = __atomic_load_n(&m->adaptive.samples, __ATOMIC_RELAXED);
	rep->adaptive_escalated = __atomic_load_n(&m->adaptive.escalated, __ATOMIC_RELAXED);
	if (requests) {
		rep->adaptive_bitops =
			(double)__atomic_load_n(&m->adaptive.bitops, __ATOMIC_RELAXED) /
			(double)requests;
		rep->adaptive_ceiling_bitops =
			(double)__atomic_load_n(&m->adaptive.ceiling_bitops, __ATOMIC_RELAXED) /
			(double)requests;
	}
	rep->cost_scale = gov_policy_cost_scale(p);
}
