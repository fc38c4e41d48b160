/* SPDX-License-Identifier: MIT */
/*
 * admin_internal.h — what the files of the admin core share: filling an error and the one
 * access rule for everything that changes the daemon.
 */
#ifndef BITMIX_ADMIN_INTERNAL_H
#define BITMIX_ADMIN_INTERNAL_H

#include "admin.h"

/* Fill ERR and return CODE (-errno). */
int admin_fail(struct admin_error *err, int code, enum admin_fault fault, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* 0 if C may administer; else -EPERM with ERR saying who may, for WHAT ("change bits"). */
int admin_require(struct bmx_daemon *d, const struct admin_caller *c, const char *what,
		  struct admin_error *err);

#endif
