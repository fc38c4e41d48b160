/* SPDX-License-Identifier: MIT */
/*
 * dbus_disabled.c — the D-Bus API's place in a build without libsystemd (meson -Ddbus=disabled):
 * the daemon serves its socket only and says so.
 */
#include <inttypes.h>
#include <stdio.h>

#include "daemon.h"
#include "log.h"

int dbus_open(struct bmx_daemon *d)
{
	if (d->config->dbus.bus != BMX_DBUS_NONE)
		log_info(
			"D-Bus: none (bitmixd was built without libsystemd: meson -Ddbus=disabled)");
	return 0;
}

void dbus_after_pass(struct bmx_daemon *d)
{
	(void)d;
}
void dbus_stop(struct bmx_daemon *d)
{
	(void)d;
}
void dbus_close(struct bmx_daemon *d)
{
	(void)d;
}

void dbus_bits_changed(struct bmx_daemon *d, struct served_model *m, uint64_t generation)
{
	(void)d, (void)m, (void)generation;
}

const char *dbus_where(const struct bmx_daemon *d)
{
	(void)d;
	return "none (built without libsystemd)";
}

void dbus_owner_text(const struct bmx_daemon *d, uint64_t owner, char *buf, size_t size)
{
	(void)d;
	snprintf(buf, size, "client %" PRIu64, owner);
}
