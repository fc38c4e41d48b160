/* SPDX-License-Identifier: MIT */
/*
 * session_admin.c — who a socket client is to the admin core (admin.h), the replies of its
 * errors, and RELOAD, which is what `systemctl reload bitmixd` runs (ExecReload=bitmixctl
 * reload). The kernel vouches for the ids (SO_PEERCRED, SO_PEERGROUPS); a session's holds are
 * owned by its id and go when it closes.
 */
#include <errno.h>
#include <stdio.h>

#include "admin.h"
#include "daemon.h"
#include "log.h"

void session_caller(const struct session *s, struct admin_caller *c, char *who, size_t size)
{
	snprintf(who, size, "client %u (pid %d, uid %u)", s->id, (int)s->pid, (unsigned)s->uid);
	*c = (struct admin_caller){
		.uid = s->uid,
		.gid = s->gid,
		.groups = s->groups,
		.n_groups = s->n_groups > 0 ? (size_t)s->n_groups : 0,
		.pid = s->pid,
		.owner = s->id,
		.may_administer = session_may_set_bits(s),
		.who = who,
	};
}

int session_reply_admin_error(struct session *s, const struct bitmix_msg_hdr *m,
			      const struct admin_error *err)
{
	return reply_error(s, m, err->code, "%s", err->msg);
}

int session_handle_reload(struct session *s, const struct bitmix_msg_hdr *m)
{
	struct bitmix_reload_reply rep = { 0 };
	struct admin_error err = { 0 };
	struct admin_caller c;
	char who[96];
	int r;

	if (m->length != sizeof(*m))
		return reply_error(s, m, -EBADMSG, "RELOAD: message of %u bytes, expected %zu",
				   m->length, sizeof(*m));
	session_caller(s, &c, who, sizeof(who));
	r = admin_reload(s->daemon, &c, &err);
	if (r < 0 && err.fault == ADMIN_FAULT_ACCESS)
		return session_reply_admin_error(s, m, &err);
	reply_init(&rep.r, m, sizeof(rep));
	if (r < 0) {
		rep.r.status = r;
		/* The first line's worth in error, the whole text in detail. */
		snprintf(rep.r.error, sizeof(rep.r.error), "%.*s", (int)sizeof(rep.r.error) - 1,
			 err.msg);
		snprintf(rep.detail, sizeof(rep.detail), "%s", err.msg);
	}
	return reply_send(s, &rep, sizeof(rep), NULL, 0);
}
