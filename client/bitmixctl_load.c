/* SPDX-License-Identifier: MIT */
/*
 * bitmixctl_load.c — `bitmixctl load NAME FILE` and `bitmixctl unload NAME` (D-Bus).
 *
 * load opens FILE itself, with the caller's rights, and passes the descriptor (LoadModelFd):
 * bitmixd reads what its caller could read and nothing else, wherever the file lies.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bitmixctl_dbus.h"

static int failed(const char *what, const char *name, const sd_bus_error *error, int r)
{
	fprintf(stderr, "bitmixctl: %s %s: %s\n", what, name,
		error && error->message ? error->message : strerror(-r));
	return 1;
}

int ctl_load_dbus(sd_bus *bus, int argc, char **argv)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *path;
	int fd, r;

	if (argc != 2)
		return 2;
	fd = open(argv[1], O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		fprintf(stderr, "bitmixctl: load %s: cannot open %s: %s\n", argv[0], argv[1],
			strerror(errno));
		return 1;
	}
	r = sd_bus_call_method(bus, CTL_NAME, CTL_PATH, CTL_IFACE, "LoadModelFd", &error, &reply,
			       "sh", argv[0], fd);
	close(fd);
	if (r < 0) {
		r = failed("load", argv[0], &error, r);
	} else {
		if (sd_bus_message_read(reply, "o", &path) > 0)
			printf("loaded %s from %s (%s)\n", argv[0], argv[1], path);
		r = 0;
	}
	sd_bus_message_unref(reply);
	sd_bus_error_free(&error);
	return r;
}

int ctl_unload_dbus(sd_bus *bus, int argc, char **argv)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	int r;

	if (argc != 1)
		return 2;
	r = sd_bus_call_method(bus, CTL_NAME, CTL_PATH, CTL_IFACE, "UnloadModel", &error, NULL, "s",
			       argv[0]);
	if (r < 0)
		r = failed("unload", argv[0], &error, r);
	else
		r = printf("unloaded %s\n", argv[0]) < 0;
	sd_bus_error_free(&error);
	return r;
}
