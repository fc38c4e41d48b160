/* SPDX-License-Identifier: MIT */
/*
 * main.c — bitmixd's entry point: options, configuration, the listening socket, start-up and
 * shutdown order. The work itself happens in event_loop.c (I/O) and workers.c (inference).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bmx_util.h"
#include "bitmix-config.h"
#include "daemon.h"
#include "log.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bitmixd [--config FILE] [--check] [--version]\n"
		"Serve meta-quantized models to libbitmix clients.\n\n"
		"  -c, --config FILE  configuration (default %s/bitmixd.yaml)\n"
		"  -t, --check        load the configuration and every model, report, and exit\n"
		"  -V, --version      print the version and exit\n",
		BITMIX_SYSCONFDIR);
}

static void mkdir_parent(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			log_warning_errno(errno, "creating %s", dir);
	}
}

/* Bind the control socket; a socket file left by a dead daemon is replaced, a live one is not. */
static int listen_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return log_error_errno(ENAMETOOLONG, "socket path %s", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return log_error_errno(errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		log_error("another bitmixd is serving %s", path);
		return -EADDRINUSE;
	}
	mkdir_parent(path);
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0666) < 0 ||
	    listen(fd, 128) < 0) {
		r = log_error_errno(errno, "listening on %s", path);
		close(fd);
		return r;
	}
	return fd;
}

static int setup_signals(struct bmx_daemon *d)
{
	sigset_t mask;

	/* Blocked before any thread starts, so only the signalfd ever sees them. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	test_hooks_init(d, &mask);
	if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0)
		return -EINVAL;
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &mask, SFD_CLOEXEC);
}

/* Each client holds four descriptors: take the hard limit, as systemd's services do. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warning_errno(errno, "raising the descriptor limit");
	}
}

static int run(struct bmx_daemon *d, bool check_only)
{
	struct bmx_config_error err;
	int r;

	/* Before the models: systemd's fd store may hold them already. */
	d->listen_fd = check_only ? -ENOENT : daemon_systemd_take_fds(d);
	if (d->listen_fd < 0 && d->listen_fd != -ENOENT)
		return d->listen_fd;
	r = model_store_load(&d->store, d->config);
	if (r < 0)
		return log_error_errno(r, "loading the models named in %s", d->config_path);
	r = daemon_governor_check(d->config, d->store.models, d->store.count, &err);
	if (r < 0) {
		log_error("%s", err.msg);
		return r;
	}
	if (check_only) {
		printf("%s: configuration and %zu model(s) are valid\n", d->config_path,
		       d->store.count);
		return 0;
	}
	raise_fd_limit();
	r = sensor_loop_open(d);
	if (r < 0)
		return r;
	r = daemon_governor_start(d);
	if (r < 0)
		return r;
	d->signal_fd = setup_signals(d);
	if (d->signal_fd < 0)
		return log_error_errno(errno, "signalfd");
	r = io_uring_queue_init(256, &d->ring, 0);
	if (r < 0)
		return log_error_errno(r, "io_uring_queue_init");
	r = doorbell_probe(d);
	if (r < 0) {
		io_uring_queue_exit(&d->ring);
		return r;
	}
	if (d->listen_fd < 0)
		d->listen_fd = listen_socket(d->config->socket_path);
	if (d->listen_fd < 0) {
		io_uring_queue_exit(&d->ring);
		return d->listen_fd;
	}
	r = worker_pool_new(d, d->config->workers, &d->pool);
	if (r == 0)
		r = dbus_open(d);
	if (r == 0) {
		log_info("bitmixd %s serving %zu model(s) on %s with %u worker(s)", BITMIX_VERSION,
			 d->store.count, d->config->socket_path, d->config->workers);
		daemon_systemd_ready(d);
		r = event_loop_run(d);
	}
	daemon_systemd_stopping();
	worker_pool_free(d->pool);
	dbus_close(d);
	close(d->listen_fd);
	if (!d->socket_activated) /* systemd's socket outlives us: it starts the next bitmixd */
		unlink(d->config->socket_path);
	io_uring_queue_exit(&d->ring);
	daemon_governor_stop(d);
	sensor_loop_close(d);
	log_info("stopped after %llu request(s)", (unsigned long long)d->requests_completed);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct bmx_daemon d = { .listen_fd = -1, .signal_fd = -1, .start_ns = now_ns() };
	struct bmx_config_error err;
	const char *config_path = BITMIX_SYSCONFDIR "/bitmixd.yaml";
	bool check_only = false;
	int c, r;

	while ((c = getopt_long(argc, argv, "c:tVh", options, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 't':
			check_only = true;
			break;
		case 'V':
			printf("bitmixd %s\n", BITMIX_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	d.config_path = realpath(config_path, NULL);
	if (!d.config_path)
		d.config_path = strdup(config_path);
	r = bmx_config_load(d.config_path, &d.config, &err);
	if (r < 0) {
		log_error("%s", err.msg);
		free(d.config_path);
		return 1;
	}
	bmx_log_set_level(d.config->log_level);
	r = run(&d, check_only);
	served_cost_join_at_exit();
	model_store_clear(&d.store);
	if (d.signal_fd >= 0)
		close(d.signal_fd);
	bmx_config_free(d.config);
	free(d.config_path);
	return r < 0 ? 1 : 0;
}
