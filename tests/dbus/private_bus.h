/* SPDX-License-Identifier: MIT */
/*
 * private_bus.h — a real dbus-daemon of the test's own, configured like Debian's system bus
 * (default deny for owning names and calling methods) plus bitmix's policy file, so that the
 * policy the project installs is the one under test.
 */
#ifndef BITMIX_TEST_PRIVATE_BUS_H
#define BITMIX_TEST_PRIVATE_BUS_H

#include <stdbool.h>
#include <sys/types.h>

struct private_bus {
	char dir[64];
	char address[160];
	pid_t pid;
};

/*
 * Start dbus-daemon with POLICY (systemd/org.bitmix.Daemon1.conf) included. Returns 0, -ENOENT
 * when there is no dbus-daemon (the test skips), or another -errno. The daemon dies with the
 * test process (PR_SET_PDEATHSIG) even if the test crashes.
 */
int private_bus_start(struct private_bus *b, const char *policy);
void private_bus_stop(struct private_bus *b);

/* Wait up to TIMEOUT_MS for NAME to have an owner on the bus. */
bool private_bus_wait_name(const struct private_bus *b, const char *name, int timeout_ms);

#endif
