/* SPDX-License-Identifier: MIT */
/*
 * session_admin.c — administration over the control socket: RELOAD, which is what
 * `systemctl reload bitmixd` runs (ExecReload=bitmixctl reload). Allowed to root and to the
 * user the daemon runs as (ExecReload runs as the service's User=), nobody else.
 */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

static bool may_administer(const struct session *s)
{
	return s->uid == 0 || s->uid == geteuid();
}

int session_handle_reload(struct session *s, const struct bitmix_msg_hdr *m)
{
	struct bitmix_reload_reply rep = { 0 };
	struct bmx_config_error err = { .msg = "" };
	int r;

	if (m->length != sizeof(*m))
		return reply_error(s, m, -EBADMSG, "RELOAD: message of %u bytes, expected %zu",
				   m->length, sizeof(*m));
	if (!may_administer(s))
		return reply_error(s, m, -EPERM,
				   "reloading bitmixd needs root or uid %u (you are %u)",
				   (unsigned)geteuid(), (unsigned)s->uid);
	log_info("client %u (pid %d, uid %u) asked for a reload", s->id, (int)s->pid,
		 (unsigned)s->uid);
	r = daemon_reload(s->daemon, &err);
	reply_init(&rep.r, m, sizeof(rep));
	if (r < 0) {
		rep.r.status = r;
		snprintf(rep.r.error, sizeof(rep.r.error), "%s", err.msg);
		snprintf(rep.detail, sizeof(rep.detail), "%s", err.msg);
	}
	return reply_send(s, &rep, sizeof(rep), NULL, 0);
}
