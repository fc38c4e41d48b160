/* SPDX-License-Identifier: MIT */
/*
 * libbitmix_internal.h — what the files of libbitmix share and applications do not see.
 */
#ifndef BITMIX_LIBBITMIX_INTERNAL_H
#define BITMIX_LIBBITMIX_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "bitmix.h"

/*
 * One control round trip: send REQ (LEN bytes, its header filled in here) as message TYPE and
 * receive exactly REP_LEN bytes of reply into REP. Returns 0 or the daemon's -errno, with the
 * daemon's message kept for bitmix_strerror().
 */
int bitmix_call(struct bitmix *bm, void *req, size_t len, uint16_t type, void *rep, size_t rep_len);

#endif
