/* SPDX-License-Identifier: MIT */
/*
 * daemon_systemd.c — bitmixd as a systemd service (sd-daemon from libsystemd): the listening
 * socket and the stored model memfds systemd passes at start, READY/RELOADING/STOPPING and
 * STATUS notifications, and the watchdog, pinged from an io_uring timeout so that only a loop
 * that really turns keeps it quiet.
 *
 * Outside systemd (no NOTIFY_SOCKET, no LISTEN_FDS) every function here does nothing: the
 * daemon binds its own socket and the integration tests run it as a plain process.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

static loop_fn on_watchdog;

#define FDNAME_MODEL_PREFIX "model/"

/*
 * Take what systemd passed: the control socket (an AF_UNIX SOCK_SEQPACKET listener, whatever
 * its name) and model memfds from the fd store (named "model/..."). Anything else is closed.
 * Returns the listener or -ENOENT when systemd passed none.
 */
int daemon_systemd_take_fds(struct bmx_daemon *d)
{
	char **names = NULL;
	int listener = -ENOENT;
	int n = sd_listen_fds_with_names(1, &names);

	if (n < 0)
		return log_error_errno(n, "reading the descriptors systemd passed");
	for (int i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		const char *name = names && names[i] ? names[i] : "unknown";

		if (strncmp(name, FDNAME_MODEL_PREFIX, strlen(FDNAME_MODEL_PREFIX)) == 0) {
			if (model_fdstore_adopt(&d->store, name, fd) == 0)
				continue;
			model_fdstore_remove(
				name); /* not ours to make sense of: out of the store */
		}
		if (listener < 0 && sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0) > 0) {
			listener = fd;
			continue;
		}
		log_warning("ignoring descriptor %d (%s) passed by systemd", fd, name);
		close(fd);
	}
	for (int i = 0; names && names[i]; i++)
		free(names[i]);
	free(names);
	if (listener >= 0) {
		d->socket_activated = true;
		log_info("listening on the socket systemd passed (descriptor %d)", listener);
	}
	return listener;
}

/* The daemon's state in one line, for `systemctl status`. */
void daemon_systemd_status(struct bmx_daemon *d)
{
	double bits = 0;
	size_t governed = 0;

	for (size_t i = 0; i < d->store.count; i++)
		if (d->store.models[i]->policy) {
			bits += gov_policy_average_bits(d->store.models[i]->policy);
			governed++;
		}
	if (governed)
		sd_notifyf(
			0,
			"STATUS=Serving %zu model(s), %u client(s); governor %s, %.2f average bits",
			d->store.count, d->n_sessions,
			d->governor ? gov_core_governor(d->governor) : "none",
			bits / (double)governed);
	else
		sd_notifyf(0, "STATUS=Serving %zu model(s), %u client(s); governor %s",
			   d->store.count, d->n_sessions,
			   d->governor ? gov_core_governor(d->governor) : "none");
}

void daemon_systemd_ready(struct bmx_daemon *d)
{
	daemon_systemd_status(d);
	sd_notify(0, "READY=1");
}

/* Before a reload: systemd (Type=notify) waits for READY=1 again, which daemon_systemd_ready sends. */
void daemon_systemd_reloading(void)
{
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=Reloading the configuration",
		   (unsigned long long)(now_ns() / 1000));
}

void daemon_systemd_stopping(void)
{
	sd_notify(0, "STOPPING=1\nSTATUS=Finishing in-flight requests");
}

static void watchdog_arm(struct bmx_daemon *d)
{
	if (d->stopping || d->watchdog_armed)
		return;
	if (event_loop_arm_timeout(d, &d->watchdog_op, &d->watchdog_period) == 0)
		d->watchdog_armed = true;
}

/* WatchdogSec= in the unit: ping at half the interval, from the loop itself. */
void daemon_systemd_watchdog_start(struct bmx_daemon *d)
{
	uint64_t usec = 0;

	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return;
	usec /= 2;
	d->watchdog_period =
		(struct __kernel_timespec){ .tv_sec = (long long)(usec / 1000000),
					    .tv_nsec = (long long)(usec % 1000000) * 1000 };
	d->watchdog_op = (struct loop_op){ .fn = on_watchdog };
	log_info("watchdog: pinging systemd every %.1f s", (double)usec / 1e6);
	sd_notify(0, "WATCHDOG=1");
	watchdog_arm(d);
}

static void on_watchdog(struct bmx_daemon *d, struct loop_op *op, int res)
{
	(void)op;
	d->watchdog_armed = false;
	if (res != -ETIME && res != 0)
		return; /* cancelled at shutdown */
	sd_notify(0, "WATCHDOG=1");
	daemon_systemd_status(d);
	watchdog_arm(d);
}

void daemon_systemd_watchdog_stop(struct bmx_daemon *d)
{
	if (d->watchdog_armed)
		event_loop_cancel(d, &d->watchdog_op);
}
