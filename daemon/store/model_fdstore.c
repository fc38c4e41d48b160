/* SPDX-License-Identifier: MIT */
/*
 * model_fdstore.c — model memfds kept in systemd's file descriptor store, so that a restarted
 * bitmixd (systemctl restart, a watchdog kill, a crash) serves at once without reading its
 * model files again.
 *
 * Every model loaded is pushed with FDSTORE=1 under a name that identifies what it holds:
 *
 *     model/NAME/PATHHASH/SIZE/MTIME_NS/KERNELS/C2.C3.C4.C5.C6.C7.C8
 *
 * (NAME the config's model name, PATHHASH the FNV-1a 64 hash of the file's path in hex, SIZE
 * and MTIME_NS what stat said when it was read, KERNELS the engine's compute path and C2..C8
 * the measured engine time per sample at each uniform bit-width, in ns: the cost table, so a
 * restart need not measure it again; every character is one $LISTEN_FDNAMES allows, and the
 * name stays below its 255). At start systemd hands the descriptors back;
 * a model whose name and path the config still names is served from its memfd when the file
 * is gone, unreadable, or unchanged (same size and mtime), and read again only when the file
 * was replaced. The memfd is re-checked as if new: its seals, then the whole loader's
 * validation. A model that leaves the store (reload, replacement) is removed with FDSTOREREMOVE.
 * Without systemd (no NOTIFY_SOCKET) sd_pid_notify_with_fds() does nothing.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

static uint64_t path_hash(const char *path)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (const unsigned char *c = (const unsigned char *)path; *c; c++)
		h = (h ^ *c) * 0x100000001b3ull;
	return h;
}

static void fdname(char *buf, size_t size, const struct served_model *m)
{
	uint64_t c[9];

	for (int b = 2; b <= 8; b++)
		c[b] = (uint64_t)(m->uniform_ns[b] + 0.5);
	snprintf(buf, size,
		 "model/%s/%016" PRIx64 "/%" PRIu64 "/%" PRIu64 "/%s/%" PRIu64 ".%" PRIu64
		 ".%" PRIu64 ".%" PRIu64 ".%" PRIu64 ".%" PRIu64 ".%" PRIu64,
		 m->name, path_hash(m->path), m->size, m->mtime_ns,
		 bmx_kernels_name(bmx_engine_path(m->engine)), c[2], c[3], c[4], c[5], c[6], c[7],
		 c[8]);
}

void model_fdstore_remove(const char *name)
{
	char msg[64 + BMX_FDNAME_MAX];

	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	sd_notify(0, msg);
}

int model_fdstore_adopt(struct model_store *store, const char *name, int fd)
{
	struct stored_model *s;
	char model[BMX_FDNAME_MAX], kernels[16] = "";
	uint64_t hash, size, mtime, c[9] = { 0 };
	int n;

	if (strlen(name) >= BMX_FDNAME_MAX || store->n_stored == BMX_MAX_STORED_MODELS)
		return -EINVAL;
	n = sscanf(name,
		   "model/%63[A-Za-z0-9._-]/%" SCNx64 "/%" SCNu64 "/%" SCNu64
		   "/%15[a-z0-9]/%" SCNu64 ".%" SCNu64 ".%" SCNu64 ".%" SCNu64 ".%" SCNu64
		   ".%" SCNu64 ".%" SCNu64,
		   model, &hash, &size, &mtime, kernels, &c[2], &c[3], &c[4], &c[5], &c[6], &c[7],
		   &c[8]);
	if (n < 4)
		return -EINVAL;
	s = &store->stored[store->n_stored++];
	memset(s, 0, sizeof(*s));
	if (n == 12) { /* with its cost table */
		snprintf(s->kernels, sizeof(s->kernels), "%s", kernels);
		for (int b = 2; b <= 8; b++)
			s->uniform_ns[b] = (double)c[b];
	}
	snprintf(s->fdname, sizeof(s->fdname), "%s", name);
	snprintf(s->model, sizeof(s->model), "%.47s", model);
	s->path_hash = hash;
	s->size = size;
	s->mtime_ns = mtime;
	s->fd = fd;
	return 0;
}

/*
 * The stored memfd for model NAME read from PATH, if it may stand in for the file: -ENOENT
 * when there is none or the file changed since (then the stale copy is dropped).
 */
int model_fdstore_take(struct model_store *store, const char *name, const char *path,
		       struct stored_model *out)
{
	struct stat st;

	for (size_t i = 0; i < store->n_stored; i++) {
		struct stored_model *s = &store->stored[i];

		if (s->fd < 0 || strcmp(s->model, name) != 0 || s->path_hash != path_hash(path))
			continue;
		if (stat(path, &st) == 0 &&
		    ((uint64_t)st.st_size != s->size ||
		     (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec !=
			     s->mtime_ns)) {
			log_info("model %s: %s changed since it was stored; reading it again", name,
				 path);
			model_fdstore_remove(s->fdname);
			close(s->fd);
			s->fd = -1;
			return -ENOENT;
		}
		*out = *s;
		s->fd = -1;
		return 0;
	}
	return -ENOENT;
}

/* After the first load: stored models the config no longer names are dropped. */
void model_fdstore_release_unused(struct model_store *store)
{
	for (size_t i = 0; i < store->n_stored; i++) {
		struct stored_model *s = &store->stored[i];

		if (s->fd < 0)
			continue;
		log_info("fd store: dropping %s, which the configuration no longer names",
			 s->fdname);
		model_fdstore_remove(s->fdname);
		close(s->fd);
		s->fd = -1;
	}
	store->n_stored = 0;
}

void model_fdstore_push(struct served_model *m)
{
	char msg[64 + BMX_FDNAME_MAX];
	int r;

	fdname(m->fdname, sizeof(m->fdname), m);
	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", m->fdname);
	r = sd_pid_notify_with_fds(0, 0, msg, &m->memfd, 1);
	if (r < 0)
		log_warning_errno(r, "model %s: handing its memfd to systemd's fd store", m->name);
	else if (r > 0)
		log_debug("model %s: stored in systemd's fd store as %s", m->name, m->fdname);
}

void model_fdstore_drop(struct served_model *m)
{
	if (m->fdname[0])
		model_fdstore_remove(m->fdname);
}
