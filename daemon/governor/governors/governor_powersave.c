/* SPDX-License-Identifier: MIT */
/*
 * governor_powersave.c — every model at its cheapest operating point within its limits and
 * holds (cpufreq's powersave).
 */
#include "governor.h"

static int powersave_start(struct gov_core *core, struct gov_policy *p)
{
	(void)core;
	gov_policy_set_level(p, 0);
	return 0;
}

static void powersave_update(struct gov_core *core, const struct sensor_reading *r)
{
	(void)r;
	for (size_t i = 0; i < gov_core_policy_count(core); i++)
		gov_policy_set_level(gov_core_policy(core, i), 0);
}

const struct governor_ops governor_powersave = {
	.name = "powersave",
	.start = powersave_start,
	.update = powersave_update,
};
