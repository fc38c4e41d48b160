/* SPDX-License-Identifier: MIT */
/*
 * dbus_access.c — who is calling: the admin check for methods that change things, and the
 * bus peers that own QoS holds.
 *
 * Reading is open to everyone the bus policy lets through (systemd/org.bitmix.Daemon1.conf).
 * Changing needs the admin rule of the configuration (bmx_config_is_admin: root, the daemon's
 * own user, access.set_bits.*, dbus.admin_*), checked against the credentials the bus driver
 * vouches for (sd_bus_query_sender_creds). A peer's holds are tracked with sd_bus_track: when its unique name leaves
 * the bus (exit, crash, closed connection), its holds are released as a socket client's are
 * when its socket closes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "dbus_internal.h"
#include "log.h"

/*
 * The caller's ids as the bus driver vouches for them (its uid from SO_PEERCRED at connect, its
 * groups), with AUGMENT also the effective ids from /proc/<pid>/status. AUGMENT fails where the
 * daemon cannot see other users' processes (systemd's ProtectProc=invisible), so it is only a
 * second chance for a caller the driver's ids do not admit.
 */
static bool creds_admit(struct bmx_dbus *b, sd_bus_creds *creds, uid_t *uid)
{
	const gid_t *groups = NULL;
	gid_t gid = (gid_t)-1;
	int n;

	if (sd_bus_creds_get_euid(creds, uid) < 0 && sd_bus_creds_get_uid(creds, uid) < 0)
		return false;
	(void)sd_bus_creds_get_egid(creds, &gid);
	n = sd_bus_creds_get_supplementary_gids(creds, &groups);
	return bmx_config_is_admin(b->d->config, *uid, gid, groups, n > 0 ? (size_t)n : 0);
}

int dbus_check_admin(struct bmx_dbus *b, sd_bus_message *m, const char *what, sd_bus_error *error)
{
	const uint64_t mask = SD_BUS_CREDS_UID | SD_BUS_CREDS_EUID | SD_BUS_CREDS_EGID |
			      SD_BUS_CREDS_SUPPLEMENTARY_GIDS;
	_cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL, *more = NULL;
	uid_t uid = (uid_t)-1;
	int r;

	r = sd_bus_query_sender_creds(m, mask, &creds);
	if (r < 0)
		return log_warning_errno(r, "D-Bus: credentials of %s",
					 sd_bus_message_get_sender(m));
	if (creds_admit(b, creds, &uid))
		return 1;
	if (sd_bus_query_sender_creds(m, mask | SD_BUS_CREDS_AUGMENT, &more) >= 0 &&
	    creds_admit(b, more, &uid))
		return 1;
	if (uid == (uid_t)-1)
		return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
					 "the bus gives no uid for %s, so it may not %s",
					 sd_bus_message_get_sender(m), what);
	log_info("D-Bus: %s (uid %u) may not %s", sd_bus_message_get_sender(m), (unsigned)uid,
		 what);
	return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
				 "uid %u may not %s (root, bitmixd's own user, access.set_bits or "
				 "dbus.admin_users/admin_groups in %s may)",
				 (unsigned)uid, what, b->d->config->source_path);
}

static void peer_free(struct dbus_peer *p)
{
	sd_bus_track_unref(p->track);
	free(p->name);
	free(p);
}

/* The peer left the bus: its holds go, as a socket client's do when it disconnects. */
static int on_peer_gone(sd_bus_track *track, void *userdata)
{
	struct dbus_peer *p = userdata;
	struct bmx_dbus *b = p->dbus;

	(void)track;
	log_info("D-Bus: %s left the bus; its holds are released", p->name);
	if (b->d->governor)
		gov_core_release_owner(b->d->governor, p->owner);
	for (struct dbus_peer **pp = &b->peers; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	peer_free(p);
	return 0;
}

int dbus_peer_owner(struct bmx_dbus *b, sd_bus_message *m, uint64_t *owner)
{
	const char *sender = sd_bus_message_get_sender(m);
	struct dbus_peer *p;
	int r;

	if (!sender)
		return -EINVAL;
	for (p = b->peers; p; p = p->next)
		if (strcmp(p->name, sender) == 0) {
			*owner = p->owner;
			return 0;
		}
	p = calloc(1, sizeof(*p));
	if (!p || !(p->name = strdup(sender))) {
		free(p);
		return -ENOMEM;
	}
	p->dbus = b;
	p->owner = b->next_owner++;
	r = sd_bus_track_new(b->bus, &p->track, on_peer_gone, p);
	if (r >= 0)
		r = sd_bus_track_add_name(p->track, sender);
	if (r < 0) {
		peer_free(p);
		return r;
	}
	p->next = b->peers;
	b->peers = p;
	*owner = p->owner;
	return 0;
}

void dbus_owner_name(const struct bmx_dbus *b, uint64_t owner, char *buf, size_t size)
{
	for (const struct dbus_peer *p = b->peers; p; p = p->next)
		if (p->owner == owner) {
			snprintf(buf, size, "%s", p->name);
			return;
		}
	if (owner < DBUS_OWNER_BASE)
		snprintf(buf, size, "client %" PRIu64, owner);
	else
		snprintf(buf, size, "bus peer %" PRIu64, (uint64_t)(owner - DBUS_OWNER_BASE));
}

void dbus_peers_free(struct bmx_dbus *b)
{
	while (b->peers) {
		struct dbus_peer *p = b->peers;

		b->peers = p->next;
		peer_free(p);
	}
}
