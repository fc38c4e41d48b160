/* SPDX-License-Identifier: MIT */
/*
 * daemon_fixture.h — the bitmixd that fuzz_proto and fuzz_dbus talk to (daemon_fixture.c): a real
 * config, model store, sensors and governor, without the event loop and the worker threads
 * (proto_stubs.c stands in for them).
 */
#ifndef BITMIX_FUZZ_DAEMON_FIXTURE_H
#define BITMIX_FUZZ_DAEMON_FIXTURE_H

#include "daemon.h"

/* Set the daemon up once (aborts if it cannot): serving FUZZ_MODEL_PATH as "tiny". */
struct bmx_daemon *fuzz_daemon_start(void);

/* Before each input: "tiny" served (again), no other model, the userspace governor. */
void fuzz_daemon_reset(void);

#endif
