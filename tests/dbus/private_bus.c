/* SPDX-License-Identifier: MIT */
/*
 * private_bus.c — start and stop a private dbus-daemon for a test (private_bus.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "private_bus.h"

/* The default policy of Debian's /usr/share/dbus-1/system.conf, and bitmix's own on top. */
static const char config_fmt[] =
	"<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
	" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
	"<busconfig>\n"
	"  <type>system</type>\n"
	"  <listen>unix:path=%s/bus</listen>\n"
	"  <auth>EXTERNAL</auth>\n"
	"  <policy context=\"default\">\n"
	"    <allow user=\"*\"/>\n"
	"    <deny own=\"*\"/>\n"
	"    <deny send_type=\"method_call\"/>\n"
	"    <allow send_type=\"signal\"/>\n"
	"    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
	"    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
	"    <allow receive_type=\"method_call\"/>\n"
	"    <allow receive_type=\"method_return\"/>\n"
	"    <allow receive_type=\"error\"/>\n"
	"    <allow receive_type=\"signal\"/>\n"
	"    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"/>\n"
	"    <allow send_destination=\"org.freedesktop.DBus\"\n"
	"           send_interface=\"org.freedesktop.DBus.Introspectable\"/>\n"
	"    <allow send_destination=\"org.freedesktop.DBus\"\n"
	"           send_interface=\"org.freedesktop.DBus.Properties\"/>\n"
	"  </policy>\n"
	"  <include>%s</include>\n"
	"</busconfig>\n";

int private_bus_start(struct private_bus *b, const char *policy)
{
	char config[128];
	FILE *f;

	memset(b, 0, sizeof(*b));
	if (access("/usr/bin/dbus-daemon", X_OK) < 0)
		return -ENOENT;
	snprintf(b->dir, sizeof(b->dir), "/tmp/bitmix-bus-XXXXXX");
	if (!mkdtemp(b->dir) || chmod(b->dir, 0755) < 0) /* other uids connect in some tests */
		return -errno;
	snprintf(config, sizeof(config), "%s/bus.conf", b->dir);
	snprintf(b->address, sizeof(b->address), "unix:path=%s/bus", b->dir);
	f = fopen(config, "w");
	if (!f)
		return -errno;
	fprintf(f, config_fmt, b->dir, policy);
	fclose(f);
	b->pid = fork();
	if (b->pid < 0)
		return -errno;
	if (b->pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		execl("/usr/bin/dbus-daemon", "dbus-daemon", "--nofork", "--nopidfile",
		      "--nosyslog", "--config-file", config, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		sd_bus *bus = NULL;
		int r = sd_bus_new(&bus);

		if (r >= 0 && sd_bus_set_address(bus, b->address) >= 0 &&
		    sd_bus_set_bus_client(bus, 1) >= 0 && sd_bus_start(bus) >= 0) {
			sd_bus_flush_close_unref(bus);
			return 0;
		}
		sd_bus_unref(bus);
		if (waitpid(b->pid, NULL, WNOHANG) == b->pid) {
			b->pid = 0;
			return -ECHILD;
		}
		usleep(10000);
	}
	return -ETIMEDOUT;
}

void private_bus_stop(struct private_bus *b)
{
	char cmd[128];

	if (b->pid > 0) {
		kill(b->pid, SIGTERM);
		waitpid(b->pid, NULL, 0);
		b->pid = 0;
	}
	if (b->dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", b->dir);
		b->dir[0] = 0;
	}
}

bool private_bus_wait_name(const struct private_bus *b, const char *name, int timeout_ms)
{
	sd_bus *bus = NULL;
	bool found = false;

	if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, b->address) < 0 ||
	    sd_bus_set_bus_client(bus, 1) < 0 || sd_bus_start(bus) < 0) {
		sd_bus_unref(bus);
		return false;
	}
	for (int waited = 0; !found && waited <= timeout_ms; waited += 20) {
		sd_bus_message *reply = NULL;
		int has = 0;

		if (sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
				       "org.freedesktop.DBus", "NameHasOwner", NULL, &reply, "s",
				       name) >= 0 &&
		    sd_bus_message_read(reply, "b", &has) >= 0)
			found = has;
		sd_bus_message_unref(reply);
		if (!found)
			usleep(20000);
	}
	sd_bus_flush_close_unref(bus);
	return found;
}
