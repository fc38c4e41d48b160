/* SPDX-License-Identifier: MIT */
/*
 * dbus_load.c — D-Bus LoadModel and LoadModelFd: a model is loaded only from a file the caller
 * proves it may read, and never on the event loop.
 *
 * LoadModelFd takes the file as a descriptor the caller opened with its own rights. LoadModel
 * takes a path, which the admin core (admin_load.c) opens only beneath one of the configured
 * model_folders; the core also checks who may load and whether the name is free.
 *
 * The descriptor must be a regular file. Copying, validating and the first cost measurements
 * run in a thread per load; the loop replies when the thread is done (an eventfd wakes it), or
 * with a timeout error after BMX_LOAD_TIMEOUT_S, in which case the late result is dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "dbus_internal.h"
#include "log.h"

#define BMX_LOAD_TIMEOUT_S 120

struct model_load {
	struct model_load *next;
	struct bmx_dbus *b;
	sd_bus_message *call; /* the method call, answered once (answered) */
	char name[BMX_CONFIG_NAME_MAX];
	char label[300]; /* the path, or "the descriptor passed" */
	int fd;		 /* the file; the thread closes it */
	unsigned kernels;
	uint64_t deadline_ns;
	pthread_t thread;
	bool done;     /* atomic: the thread is over, r/model/why are set */
	bool answered; /* loop thread */
	int r;
	struct served_model *model;
	char why[512];
};

static void *load_thread(void *arg)
{
	struct model_load *l = arg;

	l->r = served_model_load_fd(l->name, l->label, l->fd, l->kernels, &l->model, l->why,
				    sizeof(l->why));
	close(l->fd);
	l->fd = -1;
	__atomic_store_n(&l->done, true, __ATOMIC_RELEASE);
	(void)eventfd_write(l->b->load_efd, 1);
	return NULL;
}

static bool loading(const struct bmx_dbus *b, const char *name)
{
	for (const struct model_load *l = b->loads; l; l = l->next)
		if (!l->answered && strcmp(l->name, name) == 0)
			return true;
	return false;
}

/* The checks both methods make before anything is opened (admin_load_check). 1: go on. */
static int load_precheck(struct bmx_dbus *b, sd_bus_message *m, const char *name,
			 sd_bus_error *error)
{
	struct admin_error err = { 0 };
	struct admin_caller c;
	char who[96];
	int r = dbus_caller(b, m, DBUS_CALLER_ADMIN, &c, who, sizeof(who));

	if (r < 0)
		return r;
	if (admin_load_check(b->d, &c, name, loading(b, name), &err) < 0)
		return dbus_admin_error(error, &err);
	return 1;
}

/* Hand FD (ours now) to a thread; the reply comes from dbus_loads_pass(). */
static int load_start(struct bmx_dbus *b, sd_bus_message *m, const char *name, const char *label,
		      int fd, sd_bus_error *error)
{
	struct model_load *l;
	int r;

	r = model_fd_check(name, label, fd);
	if (r < 0) {
		close(fd);
		return sd_bus_error_setf(error, DBUS_ERROR_LOAD_FAILED,
					 "model %s: %s is not a regular file", name, label);
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		close(fd);
		return -ENOMEM;
	}
	*l = (struct model_load){ .b = b,
				  .call = sd_bus_message_ref(m),
				  .fd = fd,
				  .kernels = b->d->config->kernels,
				  .deadline_ns = now_ns() + BMX_LOAD_TIMEOUT_S * 1000000000ull };
	snprintf(l->name, sizeof(l->name), "%s", name);
	snprintf(l->label, sizeof(l->label), "%s", label);
	r = -pthread_create(&l->thread, NULL, load_thread, l);
	if (r < 0) {
		sd_bus_message_unref(l->call);
		close(fd);
		free(l);
		return r;
	}
	l->next = b->loads;
	b->loads = l;
	dbus_loads_arm(b);
	return 1; /* answered later */
}

int dbus_method_load_model(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	struct admin_error err = { 0 };
	const char *name, *file;
	int r, fd;

	r = sd_bus_message_read(m, "ss", &name, &file);
	if (r < 0)
		return r;
	r = load_precheck(b, m, name, error);
	if (r <= 0)
		return r;
	fd = admin_load_open(b->d, name, file, &err);
	if (fd < 0)
		return dbus_admin_error(error, &err);
	return load_start(b, m, name, file, fd, error);
}

int dbus_method_load_model_fd(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct bmx_dbus *b = userdata;
	const char *name;
	int r, fd, fl;

	r = sd_bus_message_read(m, "sh", &name, &fd);
	if (r < 0)
		return r;
	r = load_precheck(b, m, name, error);
	if (r <= 0)
		return r;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || (fl & O_ACCMODE) == O_WRONLY || (fl & O_PATH))
		return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
					 "model %s: the descriptor is not open for reading", name);
	fd = fcntl(fd, F_DUPFD_CLOEXEC, 3); /* the message owns its descriptor */
	if (fd < 0)
		return -errno;
	return load_start(b, m, name, "the descriptor passed", fd, error);
}

/* On the loop: the load's model joins the store and its caller hears about it. */
static void load_finish(struct bmx_dbus *b, struct model_load *l)
{
	struct bmx_daemon *d = b->d;
	_cleanup_(freep) char *path = NULL;
	int r = l->r;

	if (r == 0 &&
	    (model_store_find(&d->store, l->name) || d->store.count >= BMX_CONFIG_MAX_MODELS)) {
		snprintf(l->why, sizeof(l->why), "a model called \"%s\" was loaded meanwhile",
			 l->name);
		r = -EEXIST;
	}
	if (r == 0 && (r = model_store_add(&d->store, l->model)) == 0) {
		l->model = NULL; /* the store's now */
		daemon_governor_add_model(d, model_store_find(&d->store, l->name));
		log_info("model %s: loaded over D-Bus from %s (until the next reload or restart)",
			 l->name, l->label);
		path = dbus_model_path(l->name);
		(void)sd_bus_reply_method_return(l->call, "o", path ? path : DBUS_PATH);
		return;
	}
	(void)sd_bus_reply_method_errorf(
		l->call, r == -EEXIST ? SD_BUS_ERROR_FILE_EXISTS : DBUS_ERROR_LOAD_FAILED,
		"model %s: %s", l->name, l->why);
}

/* After every loop pass: answer finished loads and overdue ones, free what is over. */
void dbus_loads_pass(struct bmx_dbus *b)
{
	uint64_t now = now_ns();

	for (struct model_load **p = &b->loads, *l; (l = *p);) {
		bool done = __atomic_load_n(&l->done, __ATOMIC_ACQUIRE);

		if (!l->answered && (done || now > l->deadline_ns)) {
			if (done)
				load_finish(b, l);
			else
				(void)sd_bus_reply_method_errorf(
					l->call, DBUS_ERROR_LOAD_FAILED,
					"model %s: loading %s took more than %d s", l->name,
					l->label, BMX_LOAD_TIMEOUT_S);
			l->answered = true;
			l->call = sd_bus_message_unref(l->call);
		}
		if (!done) {
			p = &l->next;
			continue;
		}
		pthread_join(l->thread, NULL);
		if (l->model)
			served_model_unref(l->model);
		*p = l->next;
		free(l);
	}
	dbus_loads_arm(b);
}

/* Keep the loop waking for loads in progress: the eventfd, and a 1 s tick for the deadline. */
void dbus_loads_arm(struct bmx_dbus *b)
{
	if (!b->loads || b->d->stopping)
		return;
	if (!b->load_armed && event_loop_arm_poll(b->d, &b->load_op, b->load_efd) == 0)
		b->load_armed = true;
	if (!b->load_tick_armed) {
		b->load_tick = (struct __kernel_timespec){ .tv_sec = 1 };
		if (event_loop_arm_timeout(b->d, &b->load_tick_op, &b->load_tick) == 0)
			b->load_tick_armed = true;
	}
}

void dbus_on_load(struct bmx_daemon *d, struct loop_op *op, int res)
{
	struct bmx_dbus *b = d->dbus;
	eventfd_t v;

	(void)res;
	if (!b)
		return;
	if (op == &b->load_op) {
		b->load_armed = false;
		(void)eventfd_read(b->load_efd, &v);
	} else {
		b->load_tick_armed = false;
	}
}

/* Shutdown: cancel the loop's waits; dbus_loads_free() joins the threads. */
void dbus_loads_stop(struct bmx_dbus *b)
{
	if (b->load_armed)
		event_loop_cancel(b->d, &b->load_op);
	if (b->load_tick_armed)
		event_loop_cancel(b->d, &b->load_tick_op);
}

void dbus_loads_free(struct bmx_dbus *b)
{
	while (b->loads) {
		struct model_load *l = b->loads;

		pthread_join(l->thread, NULL);
		if (l->model)
			served_model_unref(l->model);
		if (l->call)
			sd_bus_message_unref(l->call);
		b->loads = l->next;
		free(l);
	}
	if (b->load_efd >= 0)
		close(b->load_efd);
	b->load_efd = -1;
}
