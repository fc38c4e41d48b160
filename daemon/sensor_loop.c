/* SPDX-License-Identifier: MIT */
/*
 * sensor_loop.c — the daemon's side of the sensors: opens them after the configuration, samples
 * them on an io_uring timeout every sampling period, consumes discrete events when io_uring says
 * their descriptor is readable, hands the workers' engine time to them, and swaps them on a
 * reload only once the new ones opened. All of it runs on the event-loop thread.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "log.h"

static loop_fn on_timer, on_event;

static void log_explanation(const struct sensors *s)
{
	const char *line = sensors_explain(s);

	log_info("sensors: %s source active", sensors_source_name(sensors_source(s)));
	while (*line) {
		const char *end = strchr(line, '\n');
		int len = end ? (int)(end - line) : (int)strlen(line);

		log_info("sensors: %.*s", len, line);
		line += len + (end ? 1 : 0);
	}
}

static void set_period(struct bmx_daemon *d, const struct bmx_config *config)
{
	unsigned ms = config->sensors.period_ms;

	d->sensor_period =
		(struct __kernel_timespec){ .tv_sec = ms / 1000,
					    .tv_nsec = (long long)(ms % 1000) * 1000000 };
}

int sensor_loop_open(struct bmx_daemon *d)
{
	char why[1024] = "";
	int r = sensors_open_why(&d->config->sensors, &d->sensors, why, sizeof(why));

	if (r < 0)
		return log_error_errno(r, "%s: sensors.source: %s cannot open: %s", d->config_path,
				       sensors_source_name(d->config->sensors.source), why);
	log_explanation(d->sensors);
	set_period(d, d->config);
	d->sensor_timer_op = (struct loop_op){ .fn = on_timer };
	d->sensor_event_op = (struct loop_op){ .fn = on_event };
	/* A first reading at once, so the governor never starts from nothing. */
	r = sensors_sample(d->sensors, now_ns(), &d->reading);
	if (r < 0)
		log_warning_errno(r, "first sensor reading");
	return 0;
}

static void arm_event(struct bmx_daemon *d)
{
	int fd = d->sensors ? sensors_event_fd(d->sensors) : -1;

	if (d->stopping || d->sensor_event_armed || fd < 0)
		return;
	if (event_loop_arm_poll(d, &d->sensor_event_op, fd) == 0)
		d->sensor_event_armed = true;
}

static void arm_timer(struct bmx_daemon *d)
{
	if (d->stopping || d->sensor_timer_armed || !d->sensors)
		return;
	if (event_loop_arm_timeout(d, &d->sensor_timer_op, &d->sensor_period) == 0)
		d->sensor_timer_armed = true;
}

void sensor_loop_arm(struct bmx_daemon *d)
{
	arm_timer(d);
	arm_event(d);
}

static void on_timer(struct bmx_daemon *d, struct loop_op *op, int res)
{
	uint64_t work;
	int r;

	(void)op;
	d->sensor_timer_armed = false;
	if (res != -ETIME || d->stopping)
		goto rearm;
	work = __atomic_exchange_n(&d->work_ns, 0, __ATOMIC_RELAXED);
	d->work_total_ns += work;
	if (work)
		sensors_add_work(d->sensors, work);
	r = sensors_sample(d->sensors, now_ns(), &d->reading);
	if (r < 0) {
		log_debug("sensor reading failed (%s); keeping the previous one", strerror(-r));
		goto rearm;
	}
	d->sensor_samples++;
	daemon_governor_tick(d);
rearm:
	arm_timer(d);
}

static void on_event(struct bmx_daemon *d, struct loop_op *op, int res)
{
	int n;

	(void)op;
	d->sensor_event_armed = false;
	if (res > 0 && d->sensors) {
		n = sensors_handle_events(d->sensors);
		if (n < 0)
			log_warning_errno(n, "reading sensor events");
		else
			d->sensor_events += (uint64_t)n;
		/* A thermal event changes the temperature now, not a period later. */
		if (n > 0 && sensors_sample(d->sensors, now_ns(), &d->reading) == 0) {
			d->sensor_samples++;
			daemon_governor_tick(d);
		}
	} else if (res < 0 && res != -ECANCELED) {
		log_warning_errno(res, "polling the sensors' events");
	}
	arm_event(d);
}

int sensor_loop_prepare_reload(struct bmx_daemon *d, const struct bmx_config *next,
			       struct sensors **out, struct bmx_config_error *err)
{
	char why[1024] = "";
	int r;

	*out = NULL;
	if (d->sensors && memcmp(&next->sensors, &d->config->sensors, sizeof(next->sensors)) == 0)
		return 0; /* unchanged: keep the running sensors and their state */
	r = sensors_open_why(&next->sensors, out, why, sizeof(why));
	if (r < 0)
		snprintf(err->msg, sizeof(err->msg), "%s: sensors.source: %s cannot open: %s",
			 d->config_path, sensors_source_name(next->sensors.source), why);
	return r;
}

void sensor_loop_swap(struct bmx_daemon *d, struct sensors *next, const struct bmx_config *config)
{
	if (!next)
		return;
	/* The old poll holds its own reference to the file; its cancelled completion re-arms. */
	if (d->sensor_event_armed)
		event_loop_cancel(d, &d->sensor_event_op);
	sensors_close(d->sensors);
	d->sensors = next;
	set_period(d, config);
	log_explanation(next);
	arm_event(d);
}

void sensor_loop_stop(struct bmx_daemon *d)
{
	if (d->sensor_timer_armed)
		event_loop_cancel(d, &d->sensor_timer_op);
	if (d->sensor_event_armed)
		event_loop_cancel(d, &d->sensor_event_op);
}

void sensor_loop_close(struct bmx_daemon *d)
{
	sensors_close(d->sensors);
	d->sensors = NULL;
}
