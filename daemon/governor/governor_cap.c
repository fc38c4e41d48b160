/* SPDX-License-Identifier: MIT */
/*
 * governor_cap.c — the core's second cooling device: a cap on the daemon's work, in CPUs.
 *
 * Power is rate times energy per sample. Precision (the policies' bits) lowers the energy of a
 * sample only where fewer bits cost measurably less, and only lowers power while the demand is
 * below what the workers serve: a saturated daemon turns cheaper samples into more samples, not
 * into less power. The work cap lowers power in every case, like the kernel's idle_inject and
 * intel_powerclamp cooling devices: the workers may keep at most `cap` CPUs busy on average (a
 * token bucket of CPU time in workers.c), and requests wait for their turn beyond it.
 *
 * The core measures what the daemon's work keeps busy (gov_core_observe_work: the CPU time its
 * workers spent in the engine, the wall time they were occupied by requests, and the time they
 * were held back by the cap with a request at hand) and calls the daemon saturated when,
 * uncapped, every worker is occupied or, capped, the cap makes requests wait. Governors read that
 * to choose between the devices (precision first where it saves energy, the cap where it does
 * not) and set the cap with
 * gov_core_set_work_cap() in their update; the core publishes it through the actuator after the
 * update and resets it when the governor changes.
 */
#include <math.h>

#include "governor_internal.h"

/* Busy at or above this share of what the daemon may use: saturated. */
#define SATURATED_SHARE 0.9
/* Or requests waited for the cap this share of a worker's time: the cap binds. */
#define THROTTLED_SHARE 0.1
/* Periods without either before a saturated daemon counts as having idle time again. */
#define UNSATURATED_PERIODS 3

void gov_core_set_capacity(struct gov_core *c, double cpus)
{
	c->capacity_cpus = cpus > 0 ? cpus : 1;
}

double gov_core_capacity(const struct gov_core *c)
{
	return c->capacity_cpus > 0 ? c->capacity_cpus : 1;
}

void gov_core_observe_work(struct gov_core *c, uint64_t work_ns_total, uint64_t occupied_ns_total,
			   uint64_t throttled_ns_total, uint64_t now_ns)
{
	if (c->last_work_obs_ns && now_ns > c->last_work_obs_ns &&
	    work_ns_total >= c->last_work_ns && occupied_ns_total >= c->last_occupied_ns &&
	    throttled_ns_total >= c->last_throttled_ns) {
		double dt = (double)(now_ns - c->last_work_obs_ns);
		double busy = (double)(work_ns_total - c->last_work_ns) / dt;
		double occupied = (double)(occupied_ns_total - c->last_occupied_ns) / dt;
		double throttled = (double)(throttled_ns_total - c->last_throttled_ns) / dt;

		/* The same exponential average as the policies' rates (about three periods). */
		c->busy_cpus += 0.35 * (busy - c->busy_cpus);
		c->occupied_cpus += 0.35 * (occupied - c->occupied_cpus);
		/* Saturation is judged on the last period alone: an average would lag a cap that moves. */
		/*
		 * Under a cap, the cap is the limit: it binds (requests wait for it) or it does not,
		 * whether other processes slow the workers down or not. Without one, the workers are.
		 */
		bool now = c->work_cap > 0 ? throttled >= THROTTLED_SHARE
					   : occupied >= SATURATED_SHARE * gov_core_capacity(c);

		/* Saturated at once; unsaturated only after UNSATURATED_PERIODS calm periods. */
		c->calm_periods = now ? 0 : c->calm_periods + 1;
		c->saturated = now || (c->saturated && c->calm_periods < UNSATURATED_PERIODS);
	}
	c->last_work_ns = work_ns_total;
	c->last_throttled_ns = throttled_ns_total;
	c->last_occupied_ns = occupied_ns_total;
	c->last_work_obs_ns = now_ns;
}

double gov_core_busy_cpus(const struct gov_core *c)
{
	return c->busy_cpus;
}

/*
 * Every worker occupied by requests (whether or not other processes let them run), or the CPU
 * time they spend at the cap.
 */
bool gov_core_saturated(const struct gov_core *c)
{
	return c->saturated;
}

void gov_core_set_work_cap(struct gov_core *c, double cpus)
{
	/* A cap at or above every worker is no cap. */
	c->next_work_cap = cpus > 0 && cpus < gov_core_capacity(c) ? fmax(cpus, GOV_MIN_WORK_CAP)
								   : 0;
}

double gov_core_work_cap(const struct gov_core *c)
{
	return c->work_cap;
}

void gov_core_set_cap_fn(struct gov_core *c, gov_cap_fn fn, void *userdata)
{
	c->cap_fn = fn;
	c->cap_userdata = userdata;
	if (fn)
		fn(userdata, c->work_cap);
}

/* Account the time spent under a cap up to NOW. */
static void cap_account(struct gov_core *c, uint64_t now)
{
	if (c->work_cap > 0 && now > c->cap_since_ns)
		c->capped_ns += now - c->cap_since_ns;
	c->cap_since_ns = now > c->cap_since_ns ? now : c->cap_since_ns;
}

void gov_core_publish_cap(struct gov_core *c)
{
	/* Quantized to 1/1000 CPU so that the actuator is not told of noise. */
	double cap = round(c->next_work_cap * 1000) / 1000;

	if (cap == c->work_cap)
		return;
	cap_account(c, c->now);
	c->work_cap = cap;
	c->cap_changes++;
	if (c->cap_fn)
		c->cap_fn(c->cap_userdata, cap);
}

void gov_core_cap_stats(const struct gov_core *c, uint64_t now_ns, struct gov_cap_stats *out)
{
	out->work_cap_cpus = c->work_cap;
	out->busy_cpus = c->busy_cpus;
	out->capacity_cpus = gov_core_capacity(c);
	out->saturated = gov_core_saturated(c);
	out->capped_ns = c->capped_ns;
	if (c->work_cap > 0 && now_ns > c->cap_since_ns)
		out->capped_ns += now_ns - c->cap_since_ns;
	out->changes = c->cap_changes;
}
