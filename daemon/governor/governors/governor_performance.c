/* SPDX-License-Identifier: MIT */
/*
 * governor_performance.c — every model at its richest operating point within its limits,
 * whatever the sensors say (cpufreq's performance).
 */
#include "governor.h"

static int performance_start(struct gov_core *core, struct gov_policy *p)
{
	(void)core;
	gov_policy_set_level(p, 1);
	return 0;
}

static void performance_update(struct gov_core *core, const struct sensor_reading *r)
{
	(void)r;
	for (size_t i = 0; i < gov_core_policy_count(core); i++)
		gov_policy_set_level(gov_core_policy(core, i), 1);
}

const struct governor_ops governor_performance = {
	.name = "performance",
	.start = performance_start,
	.update = performance_update,
};
