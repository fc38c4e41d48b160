/* SPDX-License-Identifier: MIT */
/*
 * config_ipc.c — the `ipc:` block of bitmixd's configuration: which doorbell wakes the two sides
 * of a client's rings (io_uring futexes, or eventfds, or the best the kernel has) and how long
 * the event loop polls the rings before it sleeps. Documented in config/README.md.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config_parse.h"

#define IPC_MAX_SPIN_US 1000000u

void config_ipc_defaults(struct bmx_config *cfg)
{
	cfg->ipc.doorbell = BMX_DOORBELL_AUTO;
	cfg->ipc.spin_us = 20;
}

static int parse_doorbell(struct config_parse *p, yaml_node_t *v)
{
	static const char *names[] = { [BMX_DOORBELL_AUTO] = "auto",
				       [BMX_DOORBELL_FUTEX] = "futex",
				       [BMX_DOORBELL_EVENTFD] = "eventfd" };

	if (config_expect(p, v, YAML_SCALAR_NODE, "ipc.doorbell") < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(config_scalar(v), names[i]) == 0) {
			p->cfg->ipc.doorbell = (enum bmx_doorbell_choice)i;
			return 0;
		}
	}
	return config_fail(p, v, "ipc.doorbell", "\"%s\" is not one of: auto, futex, eventfd",
			   config_scalar(v));
}

static int parse_spin(struct config_parse *p, yaml_node_t *v)
{
	const char *s;
	char *end;
	unsigned long n;

	if (config_expect(p, v, YAML_SCALAR_NODE, "ipc.spin_us") < 0)
		return -EINVAL;
	s = config_scalar(v);
	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || n > IPC_MAX_SPIN_US)
		return config_fail(p, v, "ipc.spin_us",
				   "\"%s\" is not a number of microseconds 0..%u", s,
				   IPC_MAX_SPIN_US);
	p->cfg->ipc.spin_us = (unsigned)n;
	return 0;
}

static int ipc_pair(struct config_parse *p, const char *key, yaml_node_t *k, yaml_node_t *v,
		    void *u)
{
	(void)u;
	if (strcmp(key, "doorbell") == 0)
		return parse_doorbell(p, v);
	if (strcmp(key, "spin_us") == 0)
		return parse_spin(p, v);
	return config_fail(p, k, "ipc", "unknown key \"%s\" (expected one of: doorbell, spin_us)",
			   key);
}

int config_parse_ipc(struct config_parse *p, yaml_node_t *v)
{
	if (config_expect(p, v, YAML_MAPPING_NODE, "ipc") < 0)
		return -EINVAL;
	return config_for_each_pair(p, v, "ipc", ipc_pair, NULL);
}
