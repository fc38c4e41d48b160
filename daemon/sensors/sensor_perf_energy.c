/* SPDX-License-Identifier: MIT */
/*
 * sensor_perf_energy.c — package energy through perf's power/energy-pkg event: the PMU's type,
 * event code and scale come from sysfs (as `perf stat -e power/energy-pkg/` finds them), the
 * count from a perf event on CPU 0. Needs CAP_PERFMON (or root) like any system-wide counter.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sensor_perf_energy.h"

static int read_line(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	int r = 0;

	if (!f)
		return -errno;
	if (!fgets(buf, (int)size, f))
		r = -ENODATA;
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return r;
}

int perf_energy_describe(const char *sysfs_root, struct perf_energy *pe, char *why, size_t why_size)
{
	char dir[320], path[400], line[128], *end;
	unsigned long long v;
	int r;

	snprintf(dir, sizeof(dir), "%s/bus/event_source/devices/power", sysfs_root);
	snprintf(path, sizeof(path), "%s/type", dir);
	if ((r = read_line(path, line, sizeof(line))) < 0)
		goto missing;
	errno = 0;
	v = strtoull(line, &end, 10);
	if (errno || end == line || *end || v > UINT32_MAX)
		goto malformed;
	pe->type = (uint32_t)v;

	/* "event=0x02" (possibly with more terms, which energy-pkg does not have). */
	snprintf(path, sizeof(path), "%s/events/energy-pkg", dir);
	if ((r = read_line(path, line, sizeof(line))) < 0)
		goto missing;
	if (strncmp(line, "event=", 6) != 0)
		goto malformed;
	errno = 0;
	v = strtoull(line + 6, &end, 0);
	if (errno || end == line + 6 || (*end && *end != ','))
		goto malformed;
	pe->config = v;

	snprintf(path, sizeof(path), "%s/events/energy-pkg.scale", dir);
	if ((r = read_line(path, line, sizeof(line))) < 0)
		goto missing;
	pe->joules_per_count = strtod(line, &end);
	if (end == line || *end || !(pe->joules_per_count > 0))
		goto malformed;
	return 0;
missing:
	snprintf(why, why_size, "no perf power/energy-pkg (%s: %s)", path, strerror(-r));
	return r;
malformed:
	snprintf(why, why_size, "%s: \"%s\" is not what perf writes there", path, line);
	return -EINVAL;
}

int perf_energy_open(const char *sysfs_root, struct perf_energy *pe, char *why, size_t why_size)
{
	struct perf_event_attr attr;
	int r;

	pe->fd = -1;
	r = perf_energy_describe(sysfs_root, pe, why, why_size);
	if (r < 0)
		return r;
	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = pe->type;
	attr.config = pe->config;
	pe->fd = (int)syscall(SYS_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
	if (pe->fd < 0) {
		r = -errno;
		snprintf(why, why_size, "perf power/energy-pkg (type %u, event 0x%" PRIx64 "): %s",
			 pe->type, pe->config, strerror(-r));
		return r;
	}
	return 0;
}

double perf_energy_read_joules(const struct perf_energy *pe)
{
	uint64_t count;

	if (pe->fd < 0 || read(pe->fd, &count, sizeof(count)) != (ssize_t)sizeof(count))
		return -1;
	return (double)count * pe->joules_per_count;
}

void perf_energy_close(struct perf_energy *pe)
{
	if (pe->fd >= 0)
		close(pe->fd);
	pe->fd = -1;
}
