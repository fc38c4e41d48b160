/* SPDX-License-Identifier: MIT */
/*
 * governor_ondemand.c — load-driven, after cpufreq's ondemand. A busy machine needs throughput
 * more than precision: above up_threshold % CPU load every model jumps to its cheapest point and
 * stays there for sampling_down_factor periods; below it the level falls in proportion to the
 * load (level = 1 - load), as ondemand's frequency rises in proportion to it.
 */
#include <errno.h>
#include <stdlib.h>

#include "governor.h"

struct ondemand_policy {
	unsigned hold_periods; /* periods left at the cheapest point */
};

static int ondemand_start(struct gov_core *core, struct gov_policy *p)
{
	struct ondemand_policy *od = calloc(1, sizeof(*od));

	(void)core;
	if (!od)
		return -ENOMEM;
	gov_policy_set_data(p, od);
	gov_policy_set_level(p, 1);
	return 0;
}

static void ondemand_update(struct gov_core *core, const struct sensor_reading *r)
{
	const struct bmx_governor_config *cfg = gov_core_config(core);
	double load;

	if (!(r->have & SENSOR_HAVE_LOAD))
		return;
	load = r->load_permille / 10.0;
	for (size_t i = 0; i < gov_core_policy_count(core); i++) {
		struct gov_policy *p = gov_core_policy(core, i);
		struct ondemand_policy *od = gov_policy_data(p);

		if (load > cfg->ondemand.up_threshold) {
			gov_policy_set_level(p, 0);
			od->hold_periods = cfg->ondemand.sampling_down_factor;
		} else if (od->hold_periods > 1) {
			od->hold_periods--;
		} else {
			od->hold_periods = 0;
			gov_policy_set_level(p, 1.0 - load / 100.0);
		}
	}
}

static const struct gov_tunable ondemand_tunables[] = {
	gov_attr_unsigned(ondemand, up_threshold, 1, 100, 80, "%",
			  "CPU load above which every model jumps to its cheapest point"),
	gov_attr_unsigned(ondemand, sampling_down_factor, 1, 100000, 1, "periods",
			  "sampling periods to stay there"),
};

const struct governor_ops governor_ondemand = {
	.name = "ondemand",
	.start = ondemand_start,
	.stop = gov_policy_free_data,
	.update = ondemand_update,
	GOV_TUNABLES(ondemand_tunables),
};
