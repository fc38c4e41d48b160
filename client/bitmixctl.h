/* SPDX-License-Identifier: MIT */
/*
 * bitmixctl.h — the commands of bitmixctl that live outside bitmixctl.c.
 */
#ifndef BITMIXCTL_H
#define BITMIXCTL_H

#include "bitmix.h"

/* bitmixctl_governor.c */
int ctl_governor(struct bitmix *bm, int argc, char **argv);
int ctl_stats(struct bitmix *bm, int argc, char **argv);
int ctl_hold(struct bitmix *bm, int argc, char **argv);
/* bitmixctl_admin.c */
int ctl_reload(struct bitmix *bm, int argc, char **argv);
/* The governor's lines of `status`. */
int ctl_status_governor(struct bitmix *bm);

#endif
