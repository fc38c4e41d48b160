/* SPDX-License-Identifier: MIT */
/*
 * session_region.c — client memfds registered once and then named by (region, offset, length),
 * so tensors of any size travel between a client and bitmixd without a copy.
 *
 * A region is accepted only if it cannot hurt the daemon: a memfd (not a file, pipe or socket)
 * sealed against shrinking and growing (so the daemon's mapping can never fault), opened
 * read-write, exactly as large as the client says, and within limits.regions and
 * limits.mapped_bytes. Jobs hold a reference, so an unregistered region stays mapped until the
 * requests that name it complete.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

struct region *session_region(const struct session *s, uint32_t id)
{
	return id >= 1 && id <= BMX_MAX_REGIONS ? s->regions[id - 1] : NULL;
}

void region_unref(struct region *r)
{
	if (__atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		munmap(r->base, r->size);
		free(r);
	}
}

void session_regions_clear(struct session *s)
{
	for (unsigned i = 0; i < BMX_MAX_REGIONS; i++) {
		if (s->regions[i])
			region_unref(s->regions[i]);
		s->regions[i] = NULL;
	}
	s->n_regions = 0;
}

/* What kind of file FD is, for messages: "/memfd:name (deleted)", "pipe:[123]", a path. */
static void fd_describe(int fd, char *buf, size_t size)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, buf, size - 1);
	buf[n < 0 ? 0 : n] = 0;
}

/* Everything about FD a client could get wrong, checked before the daemon maps it. */
static int region_check(const struct session *s, int fd, uint64_t size, char *why, size_t why_size)
{
	const struct bmx_config_limits *lim = &s->daemon->config->limits;
	char what[128];
	struct stat st;
	int seals, fl;

	fd_describe(fd, what, sizeof(what));
	if (s->n_regions >= lim->regions) {
		snprintf(why, why_size, "this connection has %u regions, limits.regions allows %u",
			 s->n_regions, lim->regions);
		return -EMFILE;
	}
	if (what[0] && strncmp(what, "/memfd:", 7) != 0) { /* no /proc: the seals decide alone */
		snprintf(why, why_size, "the descriptor is not a memfd (it is %s)",
			 what[0] ? what : "unknown");
		return -EINVAL;
	}
	/* Seals before size: once sealed, the size we read next cannot change. */
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW)) {
		snprintf(why, why_size,
			 "the memfd is not sealed with F_SEAL_SHRINK and F_SEAL_GROW "
			 "(its seals: %#x)",
			 seals < 0 ? 0 : seals);
		return -EINVAL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, why_size, "the descriptor is not a memfd (it is %s)", what);
		return -EINVAL;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || (fl & O_ACCMODE) != O_RDWR) {
		snprintf(why, why_size, "the memfd is not open read-write");
		return -EACCES;
	}
	if (size == 0 || (uint64_t)st.st_size != size) {
		snprintf(why, why_size,
			 "the memfd is %lld bytes, the request says %llu (expected equal, > 0)",
			 (long long)st.st_size, (unsigned long long)size);
		return -EINVAL;
	}
	if (size > lim->mapped_bytes || s->mapped_bytes > lim->mapped_bytes - size) {
		snprintf(why, why_size,
			 "%llu more bytes would map %llu, limits.mapped_bytes allows %llu",
			 (unsigned long long)size, (unsigned long long)(s->mapped_bytes + size),
			 (unsigned long long)lim->mapped_bytes);
		return -ENOSPC;
	}
	return 0;
}

/* Takes FD (closes it on every path). On success *id is the new region's number. */
int session_register_region(struct session *s, int fd, uint64_t size, uint32_t *id, char *why,
			    size_t why_size)
{
	struct region *r;
	unsigned slot;
	int err;

	err = region_check(s, fd, size, why, why_size);
	if (err < 0)
		goto out;
	for (slot = 0; slot < BMX_MAX_REGIONS && s->regions[slot]; slot++)
		;
	r = calloc(1, sizeof(*r));
	if (slot == BMX_MAX_REGIONS || !r) {
		free(r);
		snprintf(why, why_size, "out of memory");
		err = -ENOMEM;
		goto out;
	}
	r->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r->base == MAP_FAILED) {
		err = -errno;
		snprintf(why, why_size, "cannot map the memfd read-write: %s", strerror(-err));
		free(r);
		goto out;
	}
	r->refs = 1;
	r->size = size;
	r->id = slot + 1;
	s->regions[slot] = r;
	s->n_regions++;
	s->mapped_bytes += size;
	*id = r->id;
	log_debug("client %u: region %u registered, %llu bytes", s->id, r->id,
		  (unsigned long long)size);
out:
	close(fd);
	return err;
}

int session_unregister_region(struct session *s, uint32_t id, char *why, size_t why_size)
{
	struct region *r = session_region(s, id);

	if (!r) {
		snprintf(why, why_size, "no region %u on this connection", id);
		return -ENXIO;
	}
	s->regions[id - 1] = NULL;
	s->n_regions--;
	s->mapped_bytes -= r->size;
	region_unref(r);
	return 0;
}
