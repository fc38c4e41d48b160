/* SPDX-License-Identifier: MIT */
/*
 * config_limits.c — the `limits:` block of bitmixd's configuration: what one client may hold
 * (requests in flight, registered regions, mapped bytes) and how many connections one uid may
 * have, and how long a new connection may stay silent. A client that asks for more gets an
 * error naming the limit. See config/README.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_parse.h"

#define LIMIT_MAX_IN_FLIGHT 1024u   /* the largest ring */
#define LIMIT_MAX_REGIONS 64u	    /* a connection's region table */
#define LIMIT_MAX_CONNECTIONS 1024u /* the daemon's session table */
#define LIMIT_MAX_BYTES (1ull << 40)
#define LIMIT_MAX_HANDSHAKE_MS 600000u

void config_limits_defaults(struct bmx_config *cfg)
{
	cfg->limits = (struct bmx_config_limits){
		.in_flight = 1024,
		.regions = 16,
		.mapped_bytes = 1ull << 30,
		.connections_per_uid = 256,
		.handshake_timeout_ms = 5000,
	};
}

/* A whole number, optionally with a binary suffix (K, M, G, T, or KiB, MiB, GiB, TiB). */
static int parse_size(const char *s, uint64_t *out)
{
	static const char *suffixes[] = { "", "K", "M", "G", "T" };
	unsigned long long n;
	char *end;

	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno || end == s || s[0] == '-')
		return -EINVAL;
	for (unsigned i = 0; i < 5; i++) {
		char with_ib[8];

		snprintf(with_ib, sizeof(with_ib), "%siB", suffixes[i]);
		if (strcmp(end, suffixes[i]) == 0 || (i > 0 && strcmp(end, with_ib) == 0)) {
			if (n > (LIMIT_MAX_BYTES >> (10 * i)))
				return -ERANGE;
			*out = (uint64_t)n << (10 * i);
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_count(struct config_parse *p, yaml_node_t *v, const char *path, unsigned max,
		       unsigned *out)
{
	const char *s;
	char *end;
	unsigned long n;

	if (config_expect(p, v, YAML_SCALAR_NODE, path) < 0)
		return -EINVAL;
	s = config_scalar(v);
	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || n < 1 || n > max)
		return config_fail(p, v, path, "\"%s\" is not a number 1..%u", s, max);
	*out = (unsigned)n;
	return 0;
}

unsigned bmx_config_weight(const struct bmx_config *config, uid_t uid)
{
	for (size_t i = 0; i < config->limits.n_weights; i++)
		if (config->limits.weights[i].uid == uid)
			return config->limits.weights[i].weight;
	return 1;
}

/* limits.weights: {USER or UID: WEIGHT}; a user name is resolved now. */
static int weight_pair(struct config_parse *p, const char *key, yaml_node_t *k, yaml_node_t *v,
		       void *u)
{
	struct bmx_config_limits *l = &p->cfg->limits;
	char path[96];
	unsigned uid;

	(void)u;
	snprintf(path, sizeof(path), "limits.weights.%.48s", key);
	if (l->n_weights == BMX_CONFIG_MAX_WEIGHTS)
		return config_fail(p, k, "limits.weights", "more than %d entries",
				   BMX_CONFIG_MAX_WEIGHTS);
	if (config_resolve_id(p, k, path, false, &uid) < 0 ||
	    parse_count(p, v, path, 1000, &l->weights[l->n_weights].weight) < 0)
		return -EINVAL;
	l->weights[l->n_weights++].uid = (uid_t)uid;
	return 0;
}

static int limits_pair(struct config_parse *p, const char *key, yaml_node_t *k, yaml_node_t *v,
		       void *u)
{
	struct bmx_config_limits *l = &p->cfg->limits;

	(void)u;
	if (strcmp(key, "in_flight") == 0)
		return parse_count(p, v, "limits.in_flight", LIMIT_MAX_IN_FLIGHT, &l->in_flight);
	if (strcmp(key, "regions") == 0)
		return parse_count(p, v, "limits.regions", LIMIT_MAX_REGIONS, &l->regions);
	if (strcmp(key, "connections_per_uid") == 0)
		return parse_count(p, v, "limits.connections_per_uid", LIMIT_MAX_CONNECTIONS,
				   &l->connections_per_uid);
	if (strcmp(key, "weights") == 0) {
		if (config_expect(p, v, YAML_MAPPING_NODE, "limits.weights") < 0)
			return -EINVAL;
		l->n_weights = 0; /* a later file's list replaces an earlier one's */
		return config_for_each_pair(p, v, "limits.weights", weight_pair, NULL);
	}
	if (strcmp(key, "handshake_timeout_ms") == 0)
		return parse_count(p, v, "limits.handshake_timeout_ms", LIMIT_MAX_HANDSHAKE_MS,
				   &l->handshake_timeout_ms);
	if (strcmp(key, "mapped_bytes") == 0) {
		if (config_expect(p, v, YAML_SCALAR_NODE, "limits.mapped_bytes") < 0)
			return -EINVAL;
		if (parse_size(config_scalar(v), &l->mapped_bytes) < 0 ||
		    l->mapped_bytes < (1u << 20))
			return config_fail(
				p, v, "limits.mapped_bytes",
				"\"%s\" is not a size from 1M to 1T (bytes, or with K, M, G, T)",
				config_scalar(v));
		return 0;
	}
	return config_fail(p, k, "limits",
			   "unknown key \"%s\" (expected one of: in_flight, regions, mapped_bytes, "
			   "connections_per_uid, handshake_timeout_ms, weights)",
			   key);
}

int config_parse_limits(struct config_parse *p, yaml_node_t *v)
{
	if (config_expect(p, v, YAML_MAPPING_NODE, "limits") < 0)
		return -EINVAL;
	return config_for_each_pair(p, v, "limits", limits_pair, NULL);
}
