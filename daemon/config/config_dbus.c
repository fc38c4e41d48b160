/* SPDX-License-Identifier: MIT */
/*
 * config_dbus.c — the `dbus:` block of bitmixd's configuration: which bus the D-Bus API
 * (org.bitmix.Daemon1, docs/dbus.md) goes on, and who besides root may change things through
 * it. The admin rule is shared with the socket protocol (bmx_config_is_admin), so the two
 * control planes never disagree about who may set bits or switch the governor.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config_parse.h"

static int parse_bus(struct config_parse *p, yaml_node_t *v, bool *bus_given)
{
	static const char *names[] = { [BMX_DBUS_AUTO] = "auto",
				       [BMX_DBUS_SYSTEM] = "system",
				       [BMX_DBUS_SESSION] = "session",
				       [BMX_DBUS_NONE] = "none",
				       [BMX_DBUS_ADDRESS] = "address" };

	if (config_expect(p, v, YAML_SCALAR_NODE, "dbus.bus") < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(config_scalar(v), names[i]) == 0) {
			p->cfg->dbus.bus = (enum bmx_dbus_bus)i;
			*bus_given = true;
			return 0;
		}
	}
	return config_fail(p, v, "dbus.bus",
			   "\"%s\" is not one of: auto, system, session, none, address",
			   config_scalar(v));
}

static int parse_address(struct config_parse *p, yaml_node_t *v)
{
	const char *s;

	if (config_expect(p, v, YAML_SCALAR_NODE, "dbus.address") < 0)
		return -EINVAL;
	s = config_scalar(v);
	/* A D-Bus address is TRANSPORT:KEY=VALUE,...; sd-bus checks the rest when it connects. */
	if (!strchr(s, ':') || !strchr(s, '=') || strlen(s) >= sizeof(p->cfg->dbus.address))
		return config_fail(
			p, v, "dbus.address",
			"\"%s\" is not a D-Bus address such as unix:path=/run/x/bus (at most %zu bytes)",
			s, sizeof(p->cfg->dbus.address) - 1);
	snprintf(p->cfg->dbus.address, sizeof(p->cfg->dbus.address), "%s", s);
	return 0;
}

static int parse_ids(struct config_parse *p, yaml_node_t *v, const char *path, bool group)
{
	struct bmx_config_dbus *c = &p->cfg->dbus;
	size_t n = 0;

	if (config_expect(p, v, YAML_SEQUENCE_NODE, path) < 0)
		return -EINVAL;
	for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++, n++) {
		yaml_node_t *item = yaml_document_get_node(&p->doc, *it);
		char ipath[64];
		unsigned id;

		snprintf(ipath, sizeof(ipath), "%s[%zu]", path, n);
		if (n == BMX_CONFIG_MAX_ADMINS)
			return config_fail(p, item, path, "more than %d entries",
					   BMX_CONFIG_MAX_ADMINS);
		if (config_expect(p, item, YAML_SCALAR_NODE, ipath) < 0 ||
		    config_resolve_id(p, item, ipath, group, &id) < 0)
			return -EINVAL;
		if (group)
			c->admin_gids[n] = (gid_t)id;
		else
			c->admin_uids[n] = (uid_t)id;
	}
	if (group)
		c->n_admin_gids = n;
	else
		c->n_admin_uids = n;
	return 0;
}

static int dbus_pair(struct config_parse *p, const char *key, yaml_node_t *k, yaml_node_t *v,
		     void *u)
{
	if (strcmp(key, "bus") == 0)
		return parse_bus(p, v, u);
	if (strcmp(key, "address") == 0)
		return parse_address(p, v);
	if (strcmp(key, "admin_users") == 0)
		return parse_ids(p, v, "dbus.admin_users", false);
	if (strcmp(key, "admin_groups") == 0)
		return parse_ids(p, v, "dbus.admin_groups", true);
	return config_fail(
		p, k, "dbus",
		"unknown key \"%s\" (expected one of: bus, address, admin_users, admin_groups)",
		key);
}

int config_parse_dbus(struct config_parse *p, yaml_node_t *v)
{
	struct bmx_config_dbus *c = &p->cfg->dbus;
	bool bus_given = false;
	int r;

	if (config_expect(p, v, YAML_MAPPING_NODE, "dbus") < 0)
		return -EINVAL;
	r = config_for_each_pair(p, v, "dbus", dbus_pair, &bus_given);
	if (r < 0)
		return r;
	/* An address alone means that bus; an address with another bus is a contradiction. */
	if (c->address[0] && !bus_given)
		c->bus = BMX_DBUS_ADDRESS;
	if (c->address[0] && c->bus != BMX_DBUS_ADDRESS)
		return config_fail(p, v, "dbus", "address is set but bus is not \"address\"");
	if (!c->address[0] && c->bus == BMX_DBUS_ADDRESS)
		return config_fail(p, v, "dbus", "bus is \"address\" but no address is given");
	return 0;
}

static bool in_list(const unsigned *ids, size_t n, unsigned id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

static bool group_in(const gid_t *list, size_t n, gid_t gid, const gid_t *groups, size_t n_groups)
{
	if (in_list(list, n, gid))
		return true;
	for (size_t k = 0; k < n_groups; k++)
		if (in_list(list, n, groups[k]))
			return true;
	return false;
}

bool bmx_config_is_admin(const struct bmx_config *c, uid_t uid, gid_t gid, const gid_t *groups,
			 size_t n_groups)
{
	static_assert(sizeof(uid_t) == sizeof(unsigned) && sizeof(gid_t) == sizeof(unsigned),
		      "ids are stored as unsigned");

	/* The daemon's own user: ExecReload=bitmixctl reload runs as it, and it owns the daemon. */
	return uid == 0 || uid == geteuid() || in_list(c->set_bits_uids, c->n_set_bits_uids, uid) ||
	       in_list(c->dbus.admin_uids, c->dbus.n_admin_uids, uid) ||
	       group_in(c->set_bits_gids, c->n_set_bits_gids, gid, groups, n_groups) ||
	       group_in(c->dbus.admin_gids, c->dbus.n_admin_gids, gid, groups, n_groups);
}
