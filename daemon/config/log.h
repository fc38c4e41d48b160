/* SPDX-License-Identifier: MIT */
/*
 * log.h — bitmixd's log: one line per message on stderr with a syslog priority prefix
 * ("<6>"), which journald turns into the priority when the daemon runs under systemd.
 */
#ifndef BITMIX_LOG_H
#define BITMIX_LOG_H

#include <syslog.h>

void bmx_log_set_level(int level);
int bmx_log_get_level(void);

/* Parse "error", "warning", "info", "debug". Returns the syslog priority or -EINVAL. */
int bmx_log_level_from_string(const char *s);

void bmx_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Log FMT followed by ": strerror(ERR)" and return -|ERR|, for `return log_error_errno(r, ...)`. */
int bmx_log_errno(int level, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_debug(...) bmx_log(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) bmx_log(LOG_INFO, __VA_ARGS__)
#define log_warning(...) bmx_log(LOG_WARNING, __VA_ARGS__)
#define log_error(...) bmx_log(LOG_ERR, __VA_ARGS__)
#define log_error_errno(err, ...) bmx_log_errno(LOG_ERR, (err), __VA_ARGS__)
#define log_warning_errno(err, ...) bmx_log_errno(LOG_WARNING, (err), __VA_ARGS__)

#endif
