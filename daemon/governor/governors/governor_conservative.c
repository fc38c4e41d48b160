/* SPDX-License-Identifier: MIT */
/*
 * governor_conservative.c — load-driven in small steps, after cpufreq's conservative. Above
 * up_threshold % load the level drops by freq_step % of the cost range per period; below
 * down_threshold it rises by one step every sampling_down_factor periods; in between it holds.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "governor.h"

struct conservative_policy {
	double level;
	unsigned calm_periods;
};

static int conservative_start(struct gov_core *core, struct gov_policy *p)
{
	struct conservative_policy *cs = calloc(1, sizeof(*cs));

	(void)core;
	if (!cs)
		return -ENOMEM;
	cs->level = 1;
	gov_policy_set_data(p, cs);
	gov_policy_set_level(p, 1);
	return 0;
}

static void conservative_update(struct gov_core *core, const struct sensor_reading *r)
{
	const struct bmx_governor_config *cfg = gov_core_config(core);
	double load, step = cfg->conservative.freq_step / 100.0;

	if (!(r->have & SENSOR_HAVE_LOAD))
		return;
	load = r->load_permille / 10.0;
	for (size_t i = 0; i < gov_core_policy_count(core); i++) {
		struct gov_policy *p = gov_core_policy(core, i);
		struct conservative_policy *cs = gov_policy_data(p);

		if (load > cfg->conservative.up_threshold) {
			cs->level = cs->level - step < 0 ? 0 : cs->level - step;
			cs->calm_periods = 0;
		} else if (load < cfg->conservative.down_threshold &&
			   ++cs->calm_periods >= cfg->conservative.sampling_down_factor) {
			cs->level = cs->level + step > 1 ? 1 : cs->level + step;
			cs->calm_periods = 0;
		}
		gov_policy_set_level(p, cs->level);
	}
}

static const struct gov_tunable conservative_tunables[] = {
	gov_attr_unsigned(conservative, up_threshold, 1, 100, 80, "%",
			  "CPU load above which the level steps down"),
	gov_attr_unsigned(conservative, down_threshold, 0, 99, 20, "%",
			  "CPU load below which the level steps up (below up_threshold)"),
	gov_attr_unsigned(conservative, freq_step, 1, 100, 5, "%",
			  "share of the cost range per step"),
	gov_attr_unsigned(conservative, sampling_down_factor, 1, 100000, 1, "periods",
			  "periods between steps up"),
};

static int conservative_check(const struct bmx_governor_config *g, char *why, size_t why_len)
{
	if (g->conservative.down_threshold < g->conservative.up_threshold)
		return 0;
	snprintf(why, why_len, "down_threshold %u must be below up_threshold %u",
		 g->conservative.down_threshold, g->conservative.up_threshold);
	return -EINVAL;
}

const struct governor_ops governor_conservative = {
	.name = "conservative",
	.start = conservative_start,
	.stop = gov_policy_free_data,
	.update = conservative_update,
	GOV_TUNABLES(conservative_tunables),
	.check = conservative_check,
};
