/* SPDX-License-Identifier: MIT */
/*
 * log.c — bitmixd's log: one line per message on stderr. Under systemd (JOURNAL_STREAM set)
 * each line starts with the "<N>" syslog prefix journald reads as the priority; elsewhere it
 * reads "bitmixd: warning: ...". The level is the one process-wide setting outside the daemon's
 * context struct, as in systemd's log.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

static int log_level = LOG_INFO;

void bmx_log_set_level(int level)
{
	__atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

int bmx_log_get_level(void)
{
	return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

int bmx_log_level_from_string(const char *s)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = {
		{ "error", LOG_ERR },
		{ "warning", LOG_WARNING },
		{ "info", LOG_INFO },
		{ "debug", LOG_DEBUG },
	};

	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcasecmp(s, levels[i].name) == 0)
			return levels[i].level;
	return -EINVAL;
}

static const char *level_name(int level)
{
	switch (level) {
	case LOG_EMERG:
	case LOG_ALERT:
	case LOG_CRIT:
	case LOG_ERR:
		return "error";
	case LOG_WARNING:
		return "warning";
	case LOG_NOTICE:
	case LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

static void log_line(int level, const char *fmt, va_list ap, const char *suffix)
{
	char line[1024];
	int n;

	if (getenv("JOURNAL_STREAM"))
		n = snprintf(line, sizeof(line), "<%d>", level);
	else
		n = snprintf(line, sizeof(line), "bitmixd: %s: ", level_name(level));
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	/* One fputs of one whole line: lines from different threads never interleave. */
	fprintf(stderr, "%s%s\n", line, suffix ? suffix : "");
}

void bmx_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (level > bmx_log_get_level())
		return;
	va_start(ap, fmt);
	log_line(level, fmt, ap, NULL);
	va_end(ap);
}

int bmx_log_errno(int level, int err, const char *fmt, ...)
{
	char suffix[160];
	va_list ap;

	err = err < 0 ? -err : err;
	if (level <= bmx_log_get_level()) {
		snprintf(suffix, sizeof(suffix), ": %s", strerror(err));
		va_start(ap, fmt);
		log_line(level, fmt, ap, suffix);
		va_end(ap);
	}
	return -err;
}
