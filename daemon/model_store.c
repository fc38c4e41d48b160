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

static int copy_file_to_memfd(const char *name, const char *path, int *out_fd, uint64_t *out_size)
{
	struct stat st;
	int fd, memfd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return log_error_errno(errno, "model %s: cannot open %s", name, path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = errno ? -errno : -EINVAL;
		log_error("model %s: %s is not a regular file", name, path);
		close(fd);
		return r;
	}
	memfd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (memfd < 0) {
		r = log_error_errno(errno, "model %s: memfd_create", name);
		close(fd);
		return r;
	}
	for (off_t done = 0; done < st.st_size;) {
		/* sendfile: copy_file_range refuses to cross into the memfd's filesystem. */
		ssize_t n = sendfile(memfd, fd, NULL, (size_t)(st.st_size - done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? log_error_errno(errno, "model %s: copying %s", name, path) : -EIO;
			if (n == 0)
				log_error("model %s: %s shrank while being read", name, path);
			goto fail;
		}
		done += n;
	}
	if (fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
		r = log_error_errno(errno, "model %s: sealing its memfd", name);
		goto fail;
	}
	close(fd);
	*out_fd = memfd;
	*out_size = (uint64_t)st.st_size;
	return 0;
fail:
	close(fd);
	close(memfd);
	return r;
}

static int control_page_create(struct served_model *m)
{
	struct bmx_layer_bits bits[BMX_MAX_LAYERS];
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t size = (sizeof(struct bitmix_control_page) + page - 1) / page * page;
	void *p;
	int fd;

	fd = memfd_create("bitmix-control", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0)
		goto fail;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		goto fail;
	/* Future write mappings are refused; ours, made before the seal, keeps working. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) < 0) {
		munmap(p, size);
		goto fail;
	}
	m->control = p;
	m->control_fd = fd;
	m->control_size = size;
	m->control->layer_count = m->model->layer_count;
	m->control->model_id = m->id;
	bmx_engine_default_bits(m->engine, bits);
	for (uint32_t i = 0; i < m->model->layer_count; i++)
		m->control->bits[i] = (struct bitmix_bits){ bits[i].w_bits, bits[i].a_bits };
	return 0;
fail:;
	int r = -errno;
	close(fd);
	return r;
}

static void served_model_free(struct served_model *m)
{
	if (!m)
		return;
	if (m->control)
		munmap(m->control, m->control_size);
	if (m->control_fd >= 0)
		close(m->control_fd);
	bmx_engine_free(m->engine);
	bmx_model_free(m->model);
	if (m->memfd >= 0)
		close(m->memfd);
	free(m->path);
	free(m);
}

int served_model_load(const char *name, const char *path, uint32_t id, unsigned kernels,
		      struct served_model **out)
{
	struct served_model *m;
	struct bmx_error err;
	uint64_t t0 = now_ns();
	int r;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->memfd = m->control_fd = -1;
	m->refs = 1;
	m->id = id;
	snprintf(m->name, sizeof(m->name), "%s", name);
	m->path = strdup(path);
	if (!m->path) {
		r = -ENOMEM;
		goto fail;
	}
	r = copy_file_to_memfd(name, path, &m->memfd, &m->size);
	if (r < 0)
		goto fail;
	r = bmx_model_load_fd(m->memfd, &m->model, &err);
	if (r < 0) {
		log_error("model %s: %s is not a valid model: %s", name, path, err.msg);
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
	served_model_measure(m);
	log_info("model %s: loaded %s (%u layers, %llu MACs/sample, %llu bytes, %s kernels) in %.2f ms",
		 name, path, m->model->layer_count, (unsigned long long)m->model->total_macs,
		 (unsigned long long)m->size, bmx_kernels_name(bmx_engine_path(m->engine)),
		 (double)(now_ns() - t0) / 1e6);
	*out = m;
	return 0;
fail:
	served_model_free(m);
	return r;
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
			      offsetof(struct bmx_layer_bits, a_bits) == offsetof(struct bitmix_bits, a_bits),
		      "engine and protocol bits share a layout");
	return bitmix_control_snapshot(m->control, m->model->layer_count, (struct bitmix_bits *)bits);
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

/*
 * Make the store hold exactly the models CONFIG names. Models whose name and path are unchanged
 * are kept as they are (with their operating point); new or changed ones are loaded first. If
 * any load fails, nothing changes and the error is returned: the daemon keeps its last good set.
 * Models that leave the store live on until the last session that opened them lets go.
 */
int model_store_reload(struct model_store *store, const struct bmx_config *config)
{
	struct served_model **next = calloc(config->n_models ? config->n_models : 1, sizeof(*next));
	uint32_t next_id = store->next_id;
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
		r = served_model_load(cm->name, cm->path, next_id++, config->kernels, &next[i]);
		if (r < 0)
			break;
	}
	if (r < 0) {
		for (size_t i = 0; i < config->n_models; i++)
			served_model_unref(next[i]);
		free(next);
		return r;
	}
	model_store_clear(store);
	store->models = next;
	store->count = config->n_models;
	store->next_id = next_id;
	return 0;
}

int model_store_load(struct model_store *store, const struct bmx_config *config)
{
	store->next_id = 1;
	return model_store_reload(store, config);
}

void model_store_clear(struct model_store *store)
{
	for (size_t i = 0; i < store->count; i++)
		served_model_unref(store->models[i]);
	free(store->models);
	store->models = NULL;
	store->count = 0;
}
