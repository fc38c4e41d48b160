/* SPDX-License-Identifier: MIT */
/*
 * bitmixctl_admin.c — `bitmixctl reload`: synchronous, so systemd's ExecReload= fails (and
 * `systemctl reload` says so) exactly when the daemon kept its old configuration.
 */
#include <stdio.h>

#include "bitmixctl.h"

int ctl_reload(struct bitmix *bm, int argc, char **argv)
{
	char why[BITMIX_RELOAD_WHY_MAX];

	(void)argv;
	if (argc != 0) {
		fprintf(stderr, "bitmixctl: reload takes no arguments\n");
		return 2;
	}
	if (bitmix_reload(bm, why, sizeof(why)) < 0) {
		fprintf(stderr,
			"bitmixctl: reload failed, bitmixd keeps its running configuration: %s\n",
			why);
		return 1;
	}
	printf("reloaded\n");
	return 0;
}
