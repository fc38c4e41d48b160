/* SPDX-License-Identifier: MIT */
/*
 * governor_userspace.c — the bits are whatever an authorised user set (bitmixctl bits, D-Bus
 * SetBits), clamped to the limits and holds (cpufreq's userspace and its scaling_setspeed).
 * Starting it keeps the bits in force at that moment.
 */
#include "governor.h"

static int userspace_start(struct gov_core *core, struct gov_policy *p)
{
	(void)core;
	gov_policy_use_user_bits(p);
	return 0;
}

static void userspace_update(struct gov_core *core, const struct sensor_reading *r)
{
	(void)core;
	(void)r;
}

const struct governor_ops governor_userspace = {
	.name = "userspace",
	.start = userspace_start,
	.update = userspace_update,
};
