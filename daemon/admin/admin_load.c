/* SPDX-License-Identifier: MIT */
/*
 * admin_load.c — the admin core's loading and unloading of models at run time.
 *
 * A model is loaded only from a file the caller proves it may read: a descriptor it opened with
 * its own rights, or a path beneath one of the configured model_folders, which the daemon opens
 * relative to that folder with openat2(RESOLVE_BENEATH) and O_NOFOLLOW | O_NONBLOCK, so no
 * symlink or ".." leads out and a FIFO cannot block; a path outside every folder is refused
 * before the file system is asked anything, so errors never tell what exists elsewhere. The
 * load itself (copy, validate, first cost measurements) runs in the transport's thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "admin.h"
#include "admin_internal.h"
#include "log.h"

int admin_load_check(struct bmx_daemon *d, const struct admin_caller *c, const char *name,
		     bool being_loaded, struct admin_error *err)
{
	int r = admin_require(d, c, "load models", err);

	if (r < 0)
		return r;
	if (!bmx_config_name_ok(name))
		return admin_fail(
			err, -EINVAL, ADMIN_FAULT_ARGS,
			"\"%s\" is not a model name (1-%d characters of A-Z a-z 0-9 . _ -)", name,
			BMX_CONFIG_NAME_MAX - 1);
	if (model_store_find(&d->store, name) || being_loaded)
		return admin_fail(err, -EEXIST, ADMIN_FAULT_EXISTS,
				  "a model called \"%s\" is served or being loaded already "
				  "(unload it first)",
				  name);
	if (d->store.count >= BMX_CONFIG_MAX_MODELS)
		return admin_fail(err, -ENOSPC, ADMIN_FAULT_LIMIT, "%d models are served already",
				  BMX_CONFIG_MAX_MODELS);
	return 0;
}

/* FILE beneath model folder F (REL: FILE past F), opened relative to it. */
static int open_in(const char *name, const char *file, const char *f, const char *rel,
		   struct admin_error *err)
{
	struct open_how how = {
		.flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	int dir, fd, e;

	dir = open(f, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return admin_fail(err, -errno, ADMIN_FAULT_LOAD, "model %s: model folder %s: %s",
				  name, f, strerror(errno));
	fd = (int)syscall(SYS_openat2, dir, *rel ? rel : ".", &how, sizeof(how));
	e = errno;
	close(dir);
	if (fd >= 0)
		return fd;
	return admin_fail(err, -e, ADMIN_FAULT_LOAD, "model %s: %s: %s", name, file,
			  e == ELOOP   ? "a symbolic link (not followed)"
			  : e == EXDEV ? "leads out of its model folder"
				       : strerror(e));
}

int admin_load_open(struct bmx_daemon *d, const char *name, const char *file,
		    struct admin_error *err)
{
	const struct bmx_config *c = d->config;

	if (file[0] != '/')
		return admin_fail(err, -EINVAL, ADMIN_FAULT_ARGS, "\"%s\" is not an absolute path",
				  file);
	for (size_t i = 0; i < c->n_model_folders; i++) {
		const char *f = c->model_folders[i], *rel;
		size_t n = strlen(f);

		while (n > 1 && f[n - 1] == '/')
			n--;
		if (strncmp(file, f, n) != 0 || (file[n] != '/' && n > 1))
			continue;
		for (rel = file + n; *rel == '/'; rel++)
			;
		return open_in(name, file, f, rel, err);
	}
	return admin_fail(err, -EACCES, ADMIN_FAULT_ACCESS,
			  "model %s: %s is not beneath a folder of model_folders in %s (or pass "
			  "the file itself: LoadModelFd, as bitmixctl load does)",
			  name, file, c->source_path);
}

int admin_unload(struct bmx_daemon *d, const struct admin_caller *c, const char *name,
		 struct admin_error *err)
{
	struct served_model *model;
	int r;

	r = admin_require(d, c, "unload models", err);
	if (r < 0)
		return r;
	model = admin_model(d, name, err);
	if (!model)
		return err->code;
	/* Requests in flight hold their own references and finish; new ones get -ENODEV. */
	model->retired = true;
	daemon_governor_remove_model(d, model);
	model_fdstore_drop(model); /* a restart must not bring it back from the store either */
	model_store_remove(&d->store, model);
	log_info("model %s: unloaded by %s", name, c->who);
	return 0;
}
