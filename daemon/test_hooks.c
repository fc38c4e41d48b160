/* SPDX-License-Identifier: MIT */
/*
 * test_hooks.c — triggers that only the systemd integration test uses (tests/systemd/).
 *
 * They are honoured only when the daemon's environment has BITMIXD_TEST_HOOKS=1, which nothing
 * but the test's drop-in for bitmixd.service sets; without it the signals below stay at their
 * defaults and are not even read. Hooks:
 *
 *   SIGUSR2   the event loop hangs (sleeps forever without pinging the watchdog), so systemd's
 *             WatchdogSec= must notice, kill and restart the daemon.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

void test_hooks_init(struct bmx_daemon *d, sigset_t *signals)
{
	const char *e = getenv("BITMIXD_TEST_HOOKS");

	d->test_hooks = e && strcmp(e, "1") == 0;
	if (!d->test_hooks)
		return;
	log_warning(
		"BITMIXD_TEST_HOOKS=1: test-only triggers are enabled (SIGUSR2 hangs the loop)");
	sigaddset(signals, SIGUSR2);
}

void test_hooks_on_signal(struct bmx_daemon *d, unsigned signo)
{
	if (!d->test_hooks || signo != SIGUSR2)
		return;
	log_warning("test hook: hanging the event loop until the watchdog ends it");
	for (;;)
		sleep(3600);
}
