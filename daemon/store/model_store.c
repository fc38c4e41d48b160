/* SPDX-License-Identifier: MIT */
/*
 * model_store.c — the models bitmixd serves, each in a sealed memfd with its control page.
 *
 * A model file is copied once into a memfd, sealed so that nobody (the daemon included) can
 * change it, and validated from that sealed copy, so what was checked is what runs. Its operating
 * point lives in a separate control page that clients map read-only; the daemon publishes new
 * bits there under a sequence count (see struct bitmix_control_page).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

/*
 * Open PATH to read a model without ever blocking the caller in open(): O_NONBLOCK (a FIFO
 * nobody writes to opens at once), then only a regular file is accepted. FLAGS adds to
 * O_RDONLY | O_NONBLOCK | O_CLOEXEC (O_NOFOLLOW for D-Bus LoadModel). Returns the fd or -errno.
 */
int model_file_open(const char *name, const char *path, int flags)
{
	_cleanup_(closep) int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY | flags);
	int r;

	if (fd < 0)
		return log_error_errno(errno, "model %s: cannot open %s", name, path);
	r = model_fd_check(name, path, fd);
	return r < 0 ? r : take_fd(&fd);
}

/* FD (a model file, or a descriptor a D-Bus caller passed) must be a regular file. */
int model_fd_check(const char *name, const char *label, int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return log_error_errno(errno, "model %s: %s", name, label);
	if (!S_ISREG(st.st_mode)) {
		log_error("model %s: %s is not a regular file", name, label);
		return -EINVAL;
	}
	return 0;
}

/* Copy the model file SRC_FD (or PATH, opened here when SRC_FD < 0) into a sealed memfd. */
static int copy_file_to_memfd(const char *name, const char *path, int src_fd, int *out_fd,
			      uint64_t *out_size, uint64_t *out_mtime_ns)
{
	_cleanup_(closep) int fd = src_fd >= 0 ? dup(src_fd) : model_file_open(name, path, 0);
	_cleanup_(closep) int memfd = -1;
	struct stat st;

	if (fd < 0)
		return src_fd >= 0 ? -errno : fd;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		int r = errno ? -errno : -EINVAL;

		log_error("model %s: %s is not a regular file", name, path);
		return r;
	}
	memfd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (memfd < 0)
		return log_error_errno(errno, "model %s: memfd_create", name);
	for (off_t done = 0; done < st.st_size;) {
		/* sendfile: copy_file_range refuses to cross into the memfd's filesystem. */
		/* At an explicit offset: a caller's descriptor keeps its own file position. */
		ssize_t n = sendfile(memfd, fd, &done, (size_t)(st.st_size - done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return log_error_errno(errno, "model %s: copying %s", name, path);
		if (n == 0) {
			log_error("model %s: %s shrank while being read", name, path);
			return -EIO;
		}
	}
	if (fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
		return log_error_errno(errno, "model %s: sealing its memfd", name);
	*out_fd = take_fd(&memfd);
	*out_size = (uint64_t)st.st_size;
	*out_mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec;
	return 0;
}

static int control_page_create(struct served_model *m)
{
	struct bmx_layer_bits bits[BMX_MAX_LAYERS];
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t size = (sizeof(struct bitmix_control_page) + page - 1) / page * page;
	_cleanup_(closep) int fd = memfd_create("bitmix-control", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	void *p;

	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		return -errno;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	/* Future write mappings are refused; ours, made before the seal, keeps working. */
	if (fcntl(fd, F_ADD_SEALS,
		  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) < 0) {
		int r = -errno;

		munmap(p, size);
		return r;
	}
	m->control = p;
	m->control_fd = take_fd(&fd);
	m->control_size = size;
	m->control->layer_count = m->model->layer_count;
	m->control->model_id = m->id;
	bmx_engine_default_bits(m->engine, bits);
	for (uint32_t i = 0; i < m->model->layer_count; i++)
		m->control->bits[i] = (struct bitmix_bits){ bits[i].w_bits, bits[i].a_bits };
	return 0;
}

void served_model_release(struct served_model *m)
{
	bmx_engine_free(m->engine);
	bmx_model_free(m->model);
	free(m->path);
	free(m);
}

/* What clients see goes at once; the engine waits for a cost thread still timing it. */
static void served_model_free(struct served_model *m)
{
	if (!m)
		return;
	if (m->control)
		munmap(m->control, m->control_size);
	if (m->control_fd >= 0)
		close(m->control_fd);
	if (m->memfd >= 0) /* the model's mapping stays until bmx_model_free() */
		close(m->memfd);
	if (served_cost_stop(m) == -EINPROGRESS)
		return;
	served_model_release(m);
}

/* A memfd from systemd's fd store is trusted no more than a file: sealed, its size, then loaded. */
static int check_stored_memfd(const char *name, int fd, uint64_t size)
{
	const int want = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);

	if (seals < 0 || (seals & want) != want || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != size) {
		log_warning(
			"model %s: the memfd in the fd store is not a sealed copy of %llu bytes",
			name, (unsigned long long)size);
		return -EBADF;
	}
	return 0;
}

/*
 * Serve NAME from PATH, or from STORED (a memfd a previous bitmixd left in systemd's fd store,
 * which this takes over) when not NULL.
 */
static int served_model_open(const char *name, const char *path, int src_fd, uint32_t id,
			     unsigned kernels, const struct stored_model *stored,
			     struct served_model **out, char *why, size_t why_size)
{
	struct served_model *m;
	struct bmx_error err;
	uint64_t t0 = now_ns();
	int r;

	m = calloc(1, sizeof(*m));
	if (!m) {
		if (stored)
			close(stored->fd);
		return -ENOMEM;
	}
	m->memfd = m->control_fd = -1;
	m->refs = 1;
	m->id = id;
	snprintf(m->name, sizeof(m->name), "%s", name);
	if (stored) {
		m->memfd = stored->fd;
		m->size = stored->size;
		m->mtime_ns = stored->mtime_ns;
		m->from_fdstore = true;
	}
	m->path = strdup(path);
	if (!m->path) {
		r = -ENOMEM;
		goto fail;
	}
	if (stored)
		r = check_stored_memfd(name, m->memfd, m->size);
	else
		r = copy_file_to_memfd(name, path, src_fd, &m->memfd, &m->size, &m->mtime_ns);
	if (r < 0) {
		if (why)
			snprintf(why, why_size, "%s could not be read: %s", path,
				 r == -EINVAL ? "not a regular file" : strerror(-r));
		goto fail;
	}
	r = bmx_model_load_fd(m->memfd, &m->model, &err);
	if (r < 0) {
		log_error("model %s: %s is not a valid model: %s", name, path, err.msg);
		if (why)
			snprintf(why, why_size, "%s is not a valid model: %s", path, err.msg);
		goto fail;
	}
	r = bmx_engine_new_path(m->model, (enum bmx_kernels_path)kernels, &m->engine);
	if (r < 0) {
		log_error_errno(r, "model %s: preparing the engine", name);
		goto fail;
	}
	r = control_page_create(m);
	if (r < 0) {
		log_error_errno(r, "model %s: creating its control page", name);
		goto fail;
	}
	r = served_cost_start(m);
	if (r < 0) {
		log_error_errno(r, "model %s: its cost table", name);
		goto fail;
	}
	log_info(
		"model %s: loaded %s%s (%u layers, %llu MACs/sample, %llu bytes, %s kernels) in %.2f ms",
		name, path, stored ? " from systemd's fd store" : "", m->model->layer_count,
		(unsigned long long)m->model->total_macs, (unsigned long long)m->size,
		bmx_kernels_name(bmx_engine_path(m->engine)), (double)(now_ns() - t0) / 1e6);
	*out = m;
	return 0;
fail:
	served_model_free(m);
	return r;
}

int served_model_load(const char *name, const char *path, uint32_t id, unsigned kernels,
		      struct served_model **out)
{
	return served_model_open(name, path, -1, id, kernels, NULL, out, NULL, 0);
}

int served_model_load_fd(const char *name, const char *label, int fd, unsigned kernels,
			 struct served_model **out, char *why, size_t why_size)
{
	snprintf(why, why_size, "%s could not be loaded", label);
	return served_model_open(name, label, fd, 0, kernels, NULL, out, why, why_size);
}

/* The stored copy if systemd kept one that still stands for PATH, else the file. */
static int load_model(struct model_store *store, const struct bmx_config_model *cm, uint32_t id,
		      unsigned kernels, struct served_model **out)
{
	struct stored_model stored;

	if (model_fdstore_take(store, cm->name, cm->path, &stored) == 0) {
		if (served_model_open(cm->name, cm->path, -1, id, kernels, &stored, out, NULL, 0) ==
		    0)
			return 0;
		/* Not a copy to trust: out of the store, and the file read instead. */
		model_fdstore_remove(stored.fdname);
	}
	return served_model_open(cm->name, cm->path, -1, id, kernels, NULL, out, NULL, 0);
}

void served_model_ref(struct served_model *m)
{
	__atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
}

void served_model_unref(struct served_model *m)
{
	if (m && __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0)
		served_model_free(m);
}

/*
 * Publish new bits (already checked against the layers' masks). Only the loop thread writes, so
 * writers need no lock. Returns the generation that carries the new bits.
 */
uint64_t served_model_set_bits(struct served_model *m, const struct bitmix_bits *bits)
{
	struct bitmix_control_page *page = m->control;
	uint64_t g = __atomic_load_n(&page->generation, __ATOMIC_RELAXED);

	__atomic_store_n(&page->generation, g + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE); /* the odd count is visible before any new bit */
	for (uint32_t i = 0; i < page->layer_count; i++) {
		__atomic_store_n(&page->bits[i].w_bits, bits[i].w_bits, __ATOMIC_RELAXED);
		__atomic_store_n(&page->bits[i].a_bits, bits[i].a_bits, __ATOMIC_RELAXED);
	}
	bitmix_store_release(&page->generation, g + 2);
	if (m->daemon)
		dbus_bits_changed(m->daemon, m, g + 2);
	return g + 2;
}

/* Copy one consistent snapshot of the operating point; returns its generation. */
uint64_t served_model_snapshot(const struct served_model *m, struct bmx_layer_bits *bits)
{
	static_assert(sizeof(struct bmx_layer_bits) == sizeof(struct bitmix_bits) &&
			      offsetof(struct bmx_layer_bits, a_bits) ==
				      offsetof(struct bitmix_bits, a_bits),
		      "engine and protocol bits share a layout");
	return bitmix_control_snapshot(m->control, m->model->layer_count,
				       (struct bitmix_bits *)bits);
}

struct served_model *model_store_find(const struct model_store *store, const char *name)
{
	for (size_t i = 0; i < store->count; i++)
		if (strcmp(store->models[i]->name, name) == 0)
			return store->models[i];
	return NULL;
}

struct served_model *model_store_find_id(const struct model_store *store, uint32_t id)
{
	for (size_t i = 0; i < store->count; i++)
		if (store->models[i]->id == id)
			return store->models[i];
	return NULL;
}

bool model_store_contains(const struct model_store *store, const struct served_model *m)
{
	for (size_t i = 0; i < store->count; i++)
		if (store->models[i] == m)
			return true;
	return false;
}

/*
 * The models CONFIG names, in *NEXT: those whose name and path are unchanged are the running
 * ones (with their operating point); new or changed ones are loaded now, while the old ones keep
 * serving. If any load fails, nothing was changed and the error is returned.
 */
int model_store_prepare(struct model_store *store, const struct bmx_config *config,
			struct served_model ***out, size_t *failed)
{
	struct served_model **next = calloc(config->n_models ? config->n_models : 1, sizeof(*next));
	uint32_t id = store->next_id;
	int r = 0;

	if (!next)
		return -ENOMEM;
	for (size_t i = 0; i < config->n_models; i++) {
		const struct bmx_config_model *cm = &config->models[i];
		struct served_model *old = model_store_find(store, cm->name);

		if (old && strcmp(old->path, cm->path) == 0) {
			served_model_ref(old);
			next[i] = old;
			continue;
		}
		r = load_model(store, cm, id++, config->kernels, &next[i]);
		if (r < 0) {
			if (failed)
				*failed = i;
			break;
		}
	}
	if (r < 0) {
		model_store_abort(next, config->n_models);
		return r;
	}
	*out = next;
	return 0;
}

void model_store_abort(struct served_model **next, size_t count)
{
	for (size_t i = 0; next && i < count; i++)
		served_model_unref(next[i]);
	free(next);
}

static bool in_list(struct served_model *const *list, size_t n, const struct served_model *m)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == m)
			return true;
	return false;
}

/*
 * Serve NEXT (from model_store_prepare). Models that leave the store live on until the last
 * session that opened them lets go; systemd's fd store follows the served set.
 */
void model_store_commit(struct model_store *store, struct served_model **next, size_t count)
{
	uint32_t next_id = store->next_id;

	for (size_t i = 0; i < store->count; i++)
		if (!in_list(next, count, store->models[i]))
			model_fdstore_drop(store->models[i]);
	for (size_t i = 0; i < count; i++) {
		if (!in_list(store->models, store->count, next[i]))
			model_fdstore_push(next[i]);
		if (next[i]->id >= next_id)
			next_id = next[i]->id + 1;
	}
	model_store_clear(store);
	store->models = next;
	store->count = count;
	store->next_id = next_id;
}

/* Make the store hold exactly the models CONFIG names; on error the running set stays. */
int model_store_reload(struct model_store *store, const struct bmx_config *config)
{
	struct served_model **next;
	int r = model_store_prepare(store, config, &next, NULL);

	if (r < 0)
		return r;
	model_store_commit(store, next, config->n_models);
	return 0;
}

int model_store_load(struct model_store *store, const struct bmx_config *config)
{
	int r;

	store->next_id = 1;
	r = model_store_reload(store, config);
	model_fdstore_release_unused(store);
	return r;
}

void model_store_clear(struct model_store *store)
{
	for (size_t i = 0; i < store->count; i++)
		served_model_unref(store->models[i]);
	free(store->models);
	store->models = NULL;
	store->count = 0;
}

/*
 * A model loaded at run time (D-Bus LoadModel) joins the store, which takes the reference. It
 * gets its number here, on the loop thread: loads run in threads, side by side with reloads.
 */
int model_store_add(struct model_store *store, struct served_model *m)
{
	struct served_model **models = realloc(store->models, (store->count + 1) * sizeof(*models));

	if (!models)
		return -ENOMEM;
	m->id = store->next_id++;
	m->control->model_id = m->id; /* no client has mapped it yet */
	store->models = models;
	store->models[store->count++] = m;
	return 0;
}

/* The store lets go of M (D-Bus UnloadModel); requests and sessions holding it keep theirs. */
void model_store_remove(struct model_store *store, struct served_model *m)
{
	for (size_t i = 0; i < store->count; i++)
		if (store->models[i] == m) {
			memmove(&store->models[i], &store->models[i + 1],
				(store->count - i - 1) * sizeof(*store->models));
			store->count--;
			served_model_unref(m);
			return;
		}
}
