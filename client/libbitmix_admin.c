/* SPDX-License-Identifier: MIT */
/*
 * libbitmix_admin.c — administration requests: reload the daemon's configuration.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bitmix_proto.h"
#include "libbitmix_internal.h"

int bitmix_reload(struct bitmix *bm, char *why, size_t why_size)
{
	struct bitmix_msg_hdr req = { 0 };
	struct bitmix_reload_reply rep;
	int r;

	memset(&rep, 0, sizeof(rep));
	r = bitmix_call(bm, &req, sizeof(req), BITMIX_MSG_RELOAD, &rep, sizeof(rep));
	if (why && why_size) {
		rep.detail[sizeof(rep.detail) - 1] = 0;
		/* A refused or failed reload: the whole reason when the daemon sent it. */
		snprintf(why, why_size, "%s",
			 r < 0 && rep.r.hdr.length == sizeof(rep) ? rep.detail
			 : r < 0				  ? bitmix_strerror(bm)
								  : "");
	}
	return r;
}
