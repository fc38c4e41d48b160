/* SPDX-License-Identifier: MIT */
/*
 * bitmixctl_dbus_disabled.c — bitmixctl without libsystemd (meson -Ddbus=disabled): every verb
 * goes over the socket, and the D-Bus-only ones say why they cannot run.
 */
#include <errno.h>
#include <string.h>

#include "bitmixctl.h"

bool ctl_dbus_verb(const char *verb)
{
	(void)verb;
	return false;
}

int ctl_dbus_run(const char *address, bool json, const char *verb, int argc, char **argv)
{
	(void)address, (void)json, (void)verb, (void)argc, (void)argv;
	return -ENOENT;
}

int ctl_reload_dbus(const char *address)
{
	(void)address;
	return -ENOENT;
}
