/* SPDX-License-Identifier: MIT */
/*
 * governor_stats.c — statistics kept as cpufreq keeps them (cpufreq_stats): time in each state,
 * the number of transitions and the transition table. A state is the MAC-weighted average
 * bit-width of the model, rounded to half a bit (2.0, 2.5, ... 8.0), so that models with any
 * number of layers share one small table.
 */
#include <math.h>
#include <string.h>

#include "governor_internal.h"

uint32_t gov_state_of(double average_bits)
{
	long s = lround((average_bits - 2.0) * 2.0);

	return s < 0 ? 0 : s >= GOV_STATES ? GOV_STATES - 1 : (uint32_t)s;
}

void gov_stats_start(struct gov_policy *p, uint64_t now)
{
	memset(&p->stats, 0, sizeof(p->stats));
	p->stats.state = gov_state_of(gov_policy_average_bits(p));
	p->state_since_ns = now;
}

void gov_stats_transition(struct gov_policy *p, uint64_t now)
{
	uint32_t old = p->stats.state, new = gov_state_of(gov_policy_average_bits(p));

	if (now > p->state_since_ns)
		p->stats.time_in_state_ns[old] += now - p->state_since_ns;
	p->state_since_ns = now > p->state_since_ns ? now : p->state_since_ns;
	p->stats.transitions++;
	p->stats.trans_table[old][new]++;
	p->stats.state = new;
}

void gov_policy_stats(const struct gov_policy *p, uint64_t now_ns, struct gov_stats *out)
{
	*out = p->stats;
	if (now_ns > p->state_since_ns)
		out->time_in_state_ns[out->state] += now_ns - p->state_since_ns;
}
