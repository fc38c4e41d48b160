/* SPDX-License-Identifier: MIT */
/*
 * bench_daemon.c — a benchmark's own bitmixd (bench/ipc starts one per doorbell and spin
 * setting, bench/closed-loop one per run), on a private socket in a temporary folder, stopped and
 * removed afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bitmix.h"
#include "bench_daemon.h"

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int bench_daemon_start(struct bench_daemon *d, const char *bitmixd, const char *model,
		       const char *doorbell, unsigned spin_us)
{
	char ipc[96];

	snprintf(ipc, sizeof(ipc), "ipc:\n  doorbell: %s\n  spin_us: %u\n", doorbell, spin_us);
	return bench_daemon_start_yaml(d, bitmixd, "fmnist", model, ipc);
}

int bench_daemon_start_yaml(struct bench_daemon *d, const char *bitmixd, const char *name,
			    const char *model, const char *extra_yaml)
{
	char config[128], log[128];
	char *abs = realpath(model, NULL);
	FILE *f;

	memset(d, 0, sizeof(*d));
	snprintf(d->dir, sizeof(d->dir), "/tmp/bitmix-bench-XXXXXX");
	if (!abs || !mkdtemp(d->dir)) {
		free(abs);
		return -errno;
	}
	snprintf(d->socket, sizeof(d->socket), "%s/bitmixd.sock", d->dir);
	snprintf(config, sizeof(config), "%s/bitmixd.yaml", d->dir);
	snprintf(log, sizeof(log), "%s/bitmixd.log", d->dir);
	f = fopen(config, "w");
	if (!f) {
		free(abs);
		return -errno;
	}
	fprintf(f, "socket: %s\nworkers: 2\nlog_level: warning\nmodels:\n  %s: %s\n%s", d->socket,
		name, abs, extra_yaml ? extra_yaml : "");
	fclose(f);
	free(abs);
	d->pid = fork();
	if (d->pid < 0)
		return -errno;
	if (d->pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		if (fd >= 0)
			dup2(fd, STDERR_FILENO);
		execl(bitmixd, "bitmixd", "--config", config, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 3000; i++) { /* 30 s: a large model is read and timed first */
		struct bitmix *bm;
		int status;

		if (bitmix_connect(d->socket, &bm) == 0) {
			bitmix_close(bm);
			return 0;
		}
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			fprintf(stderr, "bitmixd exited; its log is %s\n", log);
			d->pid = 0;
			return -ECHILD;
		}
		usleep(10000);
	}
	return -ETIMEDOUT;
}

void bench_daemon_stop(struct bench_daemon *d)
{
	char cmd[128];

	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		waitpid(d->pid, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", d->dir);
}
