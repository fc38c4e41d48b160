/* SPDX-License-Identifier: MIT */
/*
 * daemon_harness.c — start a real bitmixd on a private socket for a test, and stop it; and the
 * set-up the integration tests share around it (daemon_harness.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <liburing.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bitmix.h"
#include "daemon_harness.h"

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int harness_write_config(struct daemon_harness *h, const char *model_path, const char *extra_yaml)
{
	char tmp[160];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", h->config);
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	/* The daemon resolves relative paths against the config's folder: hand it an absolute one. */
	char *abs = realpath(model_path, NULL);

	fprintf(f, "socket: %s\nworkers: 2\nlog_level: debug\nmodels:\n  fmnist: %s\n%s", h->socket,
		abs ? abs : model_path, extra_yaml ? extra_yaml : "");
	/* Tests that set bits themselves run the userspace governor unless they name another. */
	if (!extra_yaml || !strstr(extra_yaml, "governor:"))
		fprintf(f, "governor:\n  name: userspace\n");
	/* The suite runs the integration tests once per doorbell (tests/integration/meson.build). */
	if (getenv("BITMIX_TEST_DOORBELL") || getenv("BITMIX_TEST_SPIN_US"))
		fprintf(f, "ipc:\n  doorbell: %s\n  spin_us: %s\n",
			getenv("BITMIX_TEST_DOORBELL") ? getenv("BITMIX_TEST_DOORBELL") : "auto",
			getenv("BITMIX_TEST_SPIN_US") ? getenv("BITMIX_TEST_SPIN_US") : "20");
	free(abs);
	fclose(f);
	return rename(tmp, h->config) < 0 ? -errno : 0;
}

int harness_start(struct daemon_harness *h, const char *bitmixd, const char *model_path,
		  const char *extra_yaml)
{
	return harness_start_limited(h, bitmixd, model_path, extra_yaml, 0);
}

int harness_start_limited(struct daemon_harness *h, const char *bitmixd, const char *model_path,
			  const char *extra_yaml, unsigned nofile)
{
	memset(h, 0, sizeof(*h));
	snprintf(h->dir, sizeof(h->dir), "/tmp/bitmix-test-XXXXXX");
	if (!mkdtemp(h->dir) || chmod(h->dir, 0755) < 0) /* other uids connect in some tests */
		return -errno;
	snprintf(h->config, sizeof(h->config), "%s/bitmixd.yaml", h->dir);
	snprintf(h->socket, sizeof(h->socket), "%s/bitmixd.sock", h->dir);
	snprintf(h->log, sizeof(h->log), "%s/bitmixd.log", h->dir);
	if (harness_write_config(h, model_path, extra_yaml) < 0)
		return -EIO;
	h->pid = fork();
	if (h->pid < 0)
		return -errno;
	if (h->pid == 0) {
		int fd = open(h->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL); /* no stray daemon if the test itself dies */

		if (fd >= 0) {
			dup2(fd, STDERR_FILENO);
			dup2(fd, STDOUT_FILENO);
		}
		if (nofile) {
			struct rlimit rl = { nofile, nofile };

			if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
				_exit(126);
		}
		execl(bitmixd, "bitmixd", "--config", h->config, (char *)NULL);
		_exit(127);
	}
	/* Ready when a client can connect. */
	for (int i = 0; i < 1000; i++) {
		struct bitmix *bm;
		int status;

		if (bitmix_connect(h->socket, &bm) == 0) {
			bitmix_close(bm);
			return 0;
		}
		if (waitpid(h->pid, &status, WNOHANG) == h->pid) {
			h->pid = 0;
			return -ECHILD;
		}
		sleep_ms(10);
	}
	return -ETIMEDOUT;
}

int harness_stop(struct daemon_harness *h)
{
	int status;

	if (h->pid <= 0)
		return -ECHILD;
	kill(h->pid, SIGTERM);
	if (waitpid(h->pid, &status, 0) < 0)
		return -errno;
	h->pid = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void harness_finish(struct daemon_harness *h)
{
	assert_int_equal(harness_stop(h), 0);
	harness_cleanup(h);
}

bool harness_log_contains(const struct daemon_harness *h, const char *needle, int timeout_ms)
{
	for (int waited = 0;; waited += 20) {
		char buf[65536];
		size_t n = 0;
		FILE *f = fopen(h->log, "r");

		if (f) {
			n = fread(buf, 1, sizeof(buf) - 1, f);
			fclose(f);
		}
		buf[n] = 0;
		if (strstr(buf, needle))
			return true;
		if (waited >= timeout_ms)
			return false;
		sleep_ms(20);
	}
}

int harness_fd_count(const struct daemon_harness *h)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)h->pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

long harness_rss_kib(const struct daemon_harness *h)
{
	char path[64], line[256];
	long kib = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)h->pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

void harness_wait_cost_complete(const struct daemon_harness *h, const char *model)
{
	struct bitmix_cost_info info = { 0 };
	struct bitmix *bm;

	assert_int_equal(bitmix_connect(h->socket, &bm), 0);
	for (int i = 0; i < 6000; i++) { /* 600 s: a net for sanitizers on a busy machine */
		assert_int_equal(bitmix_get_cost(bm, model, &info, NULL, 0), 0);
		if (info.complete)
			break;
		usleep(100000);
	}
	bitmix_close(bm);
	assert_true(info.complete);
}

long harness_cpu_ticks(const struct daemon_harness *h)
{
	char path[64], buf[1024], *p;
	unsigned long utime, stime;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)h->pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* Fields 14 and 15, counted after the parenthesized command name. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
			 &stime) != 2)
		return -EIO;
	return (long)(utime + stime);
}

int harness_fd_baseline(const struct daemon_harness *h)
{
	int low = harness_fd_count(h);

	for (int i = 0; i < 30; i++, usleep(10 * 1000))
		if (harness_fd_count(h) < low)
			low = harness_fd_count(h);
	assert_true(low > 0);
	return low;
}

void harness_assert_fds(const struct daemon_harness *h, int n)
{
	for (int i = 0; i < 300 && harness_fd_count(h) != n; i++)
		usleep(10 * 1000);
	assert_int_equal(harness_fd_count(h), n);
}

const char *harness_bitmixd, *harness_model, *harness_bitmixctl, *harness_yaml;

int harness_args(int argc, char **argv, bool with_bitmixctl)
{
	if (argc != (with_bitmixctl ? 4 : 3)) {
		fprintf(stderr, "usage: %s BITMIXD MODEL.bmx%s\n", argv[0],
			with_bitmixctl ? " BITMIXCTL" : "");
		return -EINVAL;
	}
	harness_bitmixd = argv[1];
	harness_model = argv[2];
	harness_bitmixctl = with_bitmixctl ? argv[3] : NULL;
	return 0;
}

static void *harness_load_main(void *arg)
{
	struct harness_load *l = arg;
	struct bitmix_model *m;
	struct bitmix *bm;
	float *in, *out;

	if (bitmix_connect(l->socket, &bm) < 0 || bitmix_open_model(bm, "fmnist", &m) < 0)
		return NULL;
	in = bitmix_tensor_alloc(bm, 8 * 28 * 28 * sizeof(float));
	out = bitmix_tensor_alloc(bm, 8 * 10 * sizeof(float));
	for (int i = 0; i < 8 * 28 * 28; i++)
		in[i] = (float)((i * 37) % 255) / 255.0f;
	while (!l->stop && bitmix_infer(m, in, out, 8, NULL) == 0)
		__atomic_add_fetch(&l->requests, 1, __ATOMIC_RELAXED);
	bitmix_close(bm);
	return NULL;
}

void harness_load_start(struct harness_load *l, const char *socket)
{
	*l = (struct harness_load){ .socket = socket };
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&l->threads[i], NULL, harness_load_main, l), 0);
}

void harness_load_stop(struct harness_load *l)
{
	l->stop = 1;
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(l->threads[i], NULL), 0);
}

int harness_memfd(size_t size, unsigned seals)
{
	int fd = memfd_create("test-region", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	if (seals)
		assert_int_equal(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

int harness_run(const char *cmd, char *out, size_t size)
{
	FILE *p = popen(cmd, "r");
	size_t n = 0;
	int status;

	if (!p)
		return -errno;
	while (n + 1 < size && !feof(p) && !ferror(p))
		n += fread(out + n, 1, size - 1 - n, p);
	out[n] = 0;
	status = pclose(p);
	if (status < 0)
		return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int harness_ctl(const struct daemon_harness *h, char *out, size_t size, const char *args)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "%s --socket %s %s 2>&1", harness_bitmixctl, h->socket, args);
	return harness_run(cmd, out, size);
}

void harness_run_as_nobody(int (*body)(void *arg), void *arg)
{
	int status;
	pid_t pid;

	if (geteuid() != 0)
		skip();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0)
			_exit(10);
		_exit(body(arg));
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int harness_group_setup(void **state)
{
	struct daemon_harness *h = calloc(1, sizeof(*h));

	if (!h || harness_start(h, harness_bitmixd, harness_model, harness_yaml) < 0) {
		fprintf(stderr, "could not start %s on %s\n", harness_bitmixd, harness_model);
		free(h);
		return -1;
	}
	*state = h;
	return 0;
}

int harness_group_teardown(void **state)
{
	struct daemon_harness *h = *state;
	int status = 0;

	if (!h)
		return 0;
	if (h->pid > 0)
		status = harness_stop(h);
	harness_cleanup(h);
	free(h);
	return status == 0 ? 0 : -1;
}

void harness_cleanup(struct daemon_harness *h)
{
	char cmd[128];

	if (h->pid > 0) {
		kill(h->pid, SIGKILL);
		waitpid(h->pid, NULL, 0);
	}
	if (h->dir[0] && !getenv("BITMIX_KEEP_TEST_DIR")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", h->dir);
	}
}

/* io_uring's futex wait (IORING_OP_FUTEX_WAIT, kernel UAPI number 51). */
#define HARNESS_OP_FUTEX_WAIT 51

void harness_skip_without_doorbell(void)
{
	const char *want = getenv("BITMIX_TEST_DOORBELL");
	struct io_uring_probe *probe;
	bool have;

	if (!want || strcmp(want, "futex") != 0)
		return;
	probe = io_uring_get_probe();
	have = probe && io_uring_opcode_supported(probe, HARNESS_OP_FUTEX_WAIT);
	if (probe)
		io_uring_free_probe(probe);
	if (!have) {
		printf("SKIP: this kernel's io_uring has no futex operations (Linux 6.7+); the "
		       "eventfd variant of this test covers the fallback\n");
		exit(77);
	}
}
