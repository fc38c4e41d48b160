/* SPDX-License-Identifier: MIT */
/*
 * config_kernels.c — the top-level "kernels" key: which compute path the engine runs on
 * (auto, ref, avx2, avx512, avxvnni). "auto" lets the BITMIX_KERNELS environment variable, then the CPU,
 * decide; a path the CPU cannot run is lowered to the best one it can (bmx_kernels_resolve()).
 */
#include <errno.h>
#include <string.h>

#include "config_parse.h"

int config_parse_kernels(struct config_parse *p, yaml_node_t *v)
{
	static const char *const names[] = { "auto", "ref", "avx2", "avx512", "avxvnni" };

	if (config_expect(p, v, YAML_SCALAR_NODE, "kernels") < 0)
		return -EINVAL;
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(config_scalar(v), names[i]) == 0) {
			p->cfg->kernels = i;
			return 0;
		}
	return config_fail(p, v, "kernels",
			   "\"%s\" is not one of: auto, ref, avx2, avx512, avxvnni",
			   config_scalar(v));
}
