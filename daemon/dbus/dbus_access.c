/* SPDX-License-Identifier: MIT */
/*
 * dbus_access.c — who is calling, for the admin core (admin.h): the caller's ids and whether
 * they may administer, the bus peers that own QoS holds, and the core's errors as D-Bus errors.
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

int dbus_caller(struct bmx_dbus *b, sd_bus_message *m, unsigned what, struct admin_caller *c,
		char *who, size_t size)
{
	const uint64_t mask = SD_BUS_CREDS_UID | SD_BUS_CREDS_EUID | SD_BUS_CREDS_EGID |
			      SD_BUS_CREDS_SUPPLEMENTARY_GIDS | SD_BUS_CREDS_PID;
	_cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL, *more = NULL;
	const char *sender = sd_bus_message_get_sender(m);
	uid_t uid = (uid_t)-1;
	int r;

	snprintf(who, size, "D-Bus %s", sender ? sender : "?");
	*c = (struct admin_caller){ .uid = (uid_t)-1, .gid = (gid_t)-1, .who = who };
	if (what & DBUS_CALLER_OWNER) {
		r = dbus_peer_owner(b, m, &c->owner);
		if (r < 0)
			return r;
	}
	if (!(what & DBUS_CALLER_ADMIN))
		return 0;
	r = sd_bus_query_sender_creds(m, mask, &creds);
	if (r < 0)
		return log_warning_errno(r, "D-Bus: credentials of %s", sender);
	(void)sd_bus_creds_get_pid(creds, &c->pid);
	c->may_administer = creds_admit(b, creds, &uid);
	if (!c->may_administer &&
	    sd_bus_query_sender_creds(m, mask | SD_BUS_CREDS_AUGMENT, &more) >= 0)
		c->may_administer = creds_admit(b, more, &uid);
	c->uid = uid;
	return 0;
}

int dbus_admin_error(sd_bus_error *error, const struct admin_error *err)
{
	static const char *const names[] = {
		[ADMIN_FAULT_ACCESS] = SD_BUS_ERROR_ACCESS_DENIED,
		[ADMIN_FAULT_ARGS] = SD_BUS_ERROR_INVALID_ARGS,
		[ADMIN_FAULT_NO_MODEL] = DBUS_ERROR_NO_SUCH_MODEL,
		[ADMIN_FAULT_NO_GOVERNOR] = DBUS_ERROR_NO_SUCH_GOVERNOR,
		[ADMIN_FAULT_NO_HOLD] = DBUS_ERROR_NO_SUCH_HOLD,
		[ADMIN_FAULT_BUSY] = DBUS_ERROR_GOVERNOR_BUSY,
		[ADMIN_FAULT_FALLBACK] = DBUS_ERROR_GOVERNOR_FALLBACK,
		[ADMIN_FAULT_UNGOVERNED] = SD_BUS_ERROR_NOT_SUPPORTED,
		[ADMIN_FAULT_LIMIT] = SD_BUS_ERROR_LIMITS_EXCEEDED,
		[ADMIN_FAULT_EXISTS] = SD_BUS_ERROR_FILE_EXISTS,
		[ADMIN_FAULT_LOAD] = DBUS_ERROR_LOAD_FAILED,
		[ADMIN_FAULT_RELOAD] = DBUS_ERROR_RELOAD_FAILED,
	};

	if ((size_t)err->fault < sizeof(names) / sizeof(names[0]) && names[err->fault])
		return sd_bus_error_set(error, names[err->fault], err->msg);
	return sd_bus_error_set_errnof(error, -err->code, "%s", err->msg);
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

void dbus_owner_text(const struct bmx_daemon *d, uint64_t owner, char *buf, size_t size)
{
	if (d->dbus)
		dbus_owner_name(d->dbus, owner, buf, size);
	else
		snprintf(buf, size, "client %" PRIu64, owner);
}

void dbus_peers_free(struct bmx_dbus *b)
{
	while (b->peers) {
		struct dbus_peer *p = b->peers;

		b->peers = p->next;
		peer_free(p);
	}
}
