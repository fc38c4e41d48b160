/* SPDX-License-Identifier: MIT */
/*
 * soak.c — bitmixd under everything at once for a bounded time, every output checked.
 *
 * Client processes connect, infer batches of 1-4 on one of two models, check every sample bit
 * for bit against the reference engine (kernels/) at the bits of the generation the request ran
 * at, reconnect now and then, and abandon queued work by exiting; the soak SIGKILLs one of them
 * every second or so (mostly mid-request) and starts another. Meanwhile the governor is switched
 * among all governors (and, under userspace, bits are set at random), the configuration is
 * reloaded, alternately good (with and without the second model: models load and unload) and
 * bad (syntax, schema, a missing model file; each must be refused and change nothing), and the
 * daemon's descriptors and RSS are sampled every second.
 *
 * Pass: no wrong output, the daemon alive and exiting 0 (sanitizers report in its exit status),
 * every good reload taken and every bad one refused, descriptors back to where they were with
 * no clients, and RSS with no clients at the end close to the lowest RSS seen under load after
 * warm-up (within generous bounds: a leak of one request's memory per request would break them
 * at once, allocator noise does not). Under load RSS swings with the batches in flight (ASan
 * runs saw 37 to 183 MiB within seconds), so no single sample under load is a baseline.
 *
 * Usage: soak BITMIXD MODEL.bmx MODEL2.bmx [--seconds N] [--clients N]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bitmix.h"
#include "bmx_engine.h"
#include "daemon_harness.h"
#include "soak_stats.h"

#define MAX_CLIENTS 16
#define MAX_BATCH 4
#define MAX_SAMPLES 7200 /* one a second: two hours */

struct reference {
	const char *path;
	struct bmx_model *model;
	struct bmx_engine *engine;
	uint32_t in_size, out_size;
};

static const char *const governors[] = { "performance",	 "powersave", "ondemand",
					 "conservative", "step_wise", "power_allocator",
					 "userspace" };

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static uint64_t next_random(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* The input of sample SEED: deterministic, so a wrong output can be reproduced. */
static void make_input(uint64_t seed, float *in, uint32_t n)
{
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;

	for (uint32_t i = 0; i < n; i++)
		in[i] = (float)(next_random(&s) % 2001) / 1000.0f - 1.0f;
}

/*
 * The config: "fmnist" always, "fmnist2" when WITH_SECOND, a hot simulated machine so that
 * thermal governors act, and GOVERNOR. Written through the harness (which adds socket,
 * workers and ipc).
 */
static int write_config(struct daemon_harness *h, const struct reference *ref, bool with_second,
			const char *governor, const char *bad)
{
	char extra[1024];
	int n;

	n = snprintf(extra, sizeof(extra),
		     "%s%s%s" HARNESS_HOT_MACHINE_YAML "governor:\n  name: %s\n%s",
		     with_second ? "  fmnist2: " : "", with_second ? ref[1].path : "",
		     with_second ? "\n" : "", governor, bad ? bad : "");
	if (n < 0 || (size_t)n >= sizeof(extra))
		return -ENAMETOOLONG;
	return harness_write_config(h, ref[0].path, extra);
}

/* Check one completed request of BATCH samples against the reference at its generation. */
static void check_outputs(struct soak_stats *st, const struct reference *ref, uint64_t seed,
			  uint32_t batch, const float *out, uint64_t generation, uint64_t g1,
			  const struct bitmix_layer_bits *b1, uint64_t g2,
			  const struct bitmix_layer_bits *b2, float *in, float *expect,
			  void *scratch)
{
	const struct bitmix_layer_bits *b = generation == g1 ? b1 : generation == g2 ? b2 : NULL;
	struct bmx_layer_bits bits[BMX_MAX_LAYERS];

	if (!b) { /* published and replaced between our two reads: nothing to check it against */
		__atomic_add_fetch(&st->unverified, batch, __ATOMIC_RELAXED);
		return;
	}
	for (uint32_t i = 0; i < ref->model->layer_count; i++)
		bits[i] = (struct bmx_layer_bits){ b[i].w_bits, b[i].a_bits };
	for (uint32_t k = 0; k < batch; k++)
		make_input(seed + k, in + (size_t)k * ref->in_size, ref->in_size);
	if (bmx_engine_run(ref->engine, bits, batch, in, expect, scratch) < 0) {
		fprintf(stderr, "soak: the reference refuses the bits of generation %llu\n",
			(unsigned long long)generation);
		__atomic_add_fetch(&st->wrong, batch, __ATOMIC_RELAXED);
		return;
	}
	for (uint32_t k = 0; k < batch; k++) {
		size_t at = (size_t)k * ref->out_size;

		if (memcmp(out + at, expect + at, ref->out_size * sizeof(float)) != 0) {
			__atomic_add_fetch(&st->wrong, 1, __ATOMIC_RELAXED);
			fprintf(stderr,
				"soak: WRONG output: model %s, sample seed %llu, generation %llu\n",
				ref->path, (unsigned long long)(seed + k),
				(unsigned long long)generation);
		}
	}
	__atomic_add_fetch(&st->checked, batch, __ATOMIC_RELAXED);
}

/* Queue as much work as the connection takes and leave without reaping it. */
static void abandon(struct bitmix *bm, struct bitmix_model *m, const struct reference *ref)
{
	float *in = bitmix_tensor_alloc(bm, (size_t)MAX_BATCH * ref->in_size * sizeof(float));
	float *out = bitmix_tensor_alloc(bm, (size_t)MAX_BATCH * ref->out_size * sizeof(float));

	if (!in || !out)
		_exit(0);
	memset(in, 0, (size_t)MAX_BATCH * ref->in_size * sizeof(float));
	for (int i = 0; i < 64 && bitmix_prep_infer(m, in, out, MAX_BATCH, (uint64_t)i) == 0; i++)
		;
	bitmix_submit(bm);
	_exit(0);
}

/* One connection's life: open the models, run COUNT requests, checked. 0, or -errno to retry. */
static int client_session(struct soak_stats *st, const char *socket, const struct reference *ref,
			  uint64_t *rnd, float *in, float *expect, void *scratch)
{
	struct bitmix_layer_bits b1[BMX_MAX_LAYERS], b2[BMX_MAX_LAYERS];
	struct bitmix_model *models[2] = { NULL, NULL };
	unsigned count = 20 + (unsigned)(next_random(rnd) % 200);
	struct bitmix *bm;
	float *tin[2], *tout[2];
	int r;

	if ((r = bitmix_connect(socket, &bm)) < 0) {
		__atomic_add_fetch(&st->connect_failed, 1, __ATOMIC_RELAXED);
		return r;
	}
	__atomic_add_fetch(&st->connections, 1, __ATOMIC_RELAXED);
	if (bitmix_open_model(bm, "fmnist", &models[0]) < 0) {
		fprintf(stderr, "soak: open fmnist: %s\n", bitmix_strerror(bm));
		__atomic_add_fetch(&st->errors, 1, __ATOMIC_RELAXED);
		bitmix_close(bm);
		return -EIO;
	}
	bitmix_open_model(bm, "fmnist2", &models[1]); /* loaded only by some configs */
	for (int i = 0; i < 2; i++) {
		tin[i] =
			bitmix_tensor_alloc(bm, (size_t)MAX_BATCH * ref[i].in_size * sizeof(float));
		tout[i] = bitmix_tensor_alloc(bm,
					      (size_t)MAX_BATCH * ref[i].out_size * sizeof(float));
		if (!tin[i] || !tout[i]) {
			bitmix_close(bm);
			return -ENOMEM;
		}
	}
	if (next_random(rnd) % 16 == 0)
		abandon(bm, models[0], &ref[0]);
	for (unsigned n = 0; n < count && !__atomic_load_n(&st->stop, __ATOMIC_RELAXED); n++) {
		int which = models[1] && next_random(rnd) % 3 == 0;
		const struct reference *rf = &ref[which];
		uint32_t batch = 1 + (uint32_t)(next_random(rnd) % MAX_BATCH);
		uint64_t seed = next_random(rnd) & ((1ull << 48) - 1), g1, g2;
		struct bitmix_result res;

		for (uint32_t k = 0; k < batch; k++)
			make_input(seed + k, tin[which] + (size_t)k * rf->in_size, rf->in_size);
		bitmix_get_bits(models[which], b1, &g1);
		r = bitmix_infer_precision(models[which], tin[which], tout[which], batch,
					   BITMIX_INFER_FIXED, &res);
		bitmix_get_bits(models[which], b2, &g2);
		if (r == -ENODEV || r == -EBADF) { /* fmnist2 was unloaded by a reload */
			__atomic_add_fetch(&st->refused_unloaded, 1, __ATOMIC_RELAXED);
			break;
		}
		if (r < 0) {
			fprintf(stderr, "soak: infer: %s\n", bitmix_strerror(bm));
			__atomic_add_fetch(&st->errors, 1, __ATOMIC_RELAXED);
			break;
		}
		__atomic_add_fetch(&st->requests, 1, __ATOMIC_RELAXED);
		check_outputs(st, rf, seed, batch, tout[which], res.generation, g1, b1, g2, b2, in,
			      expect, scratch);
	}
	bitmix_close(bm);
	return 0;
}

static void client_main(struct soak_stats *st, const char *socket, const struct reference *ref,
			uint64_t seed)
{
	size_t in_max = (size_t)MAX_BATCH *
			(ref[0].in_size > ref[1].in_size ? ref[0].in_size : ref[1].in_size);
	size_t out_max = (size_t)MAX_BATCH *
			 (ref[0].out_size > ref[1].out_size ? ref[0].out_size : ref[1].out_size);
	size_t scratch_size = bmx_engine_scratch_size(ref[0].engine, MAX_BATCH);
	float *in = malloc(in_max * sizeof(float)), *expect = malloc(out_max * sizeof(float));
	uint64_t rnd = seed | 1;
	void *scratch;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (bmx_engine_scratch_size(ref[1].engine, MAX_BATCH) > scratch_size)
		scratch_size = bmx_engine_scratch_size(ref[1].engine, MAX_BATCH);
	scratch = aligned_alloc(64, (scratch_size + 63) / 64 * 64);
	if (!in || !expect || !scratch)
		_exit(2);
	while (!__atomic_load_n(&st->stop, __ATOMIC_RELAXED))
		if (client_session(st, socket, ref, &rnd, in, expect, scratch) < 0)
			sleep_ms(20);
	_exit(0);
}

struct soak {
	struct daemon_harness h;
	struct reference ref[2];
	struct soak_stats *st;
	pid_t clients[MAX_CLIENTS];
	unsigned n_clients;
	uint64_t rnd;
	struct bitmix *ctl; /* the soak's own connection: governor, bits, reload */
	unsigned reload_step, governor_step;
	bool second_loaded;
	int fds[MAX_SAMPLES];
	long rss[MAX_SAMPLES];
	unsigned n_samples;
	unsigned warm; /* the first sample after warm-up, 0 while warming up */
	int failed;
};

static pid_t spawn_client(struct soak *s)
{
	uint64_t seed = next_random(&s->rnd);
	pid_t pid = fork();

	if (pid == 0)
		client_main(s->st, s->h.socket, s->ref, seed);
	return pid;
}

/* Reap clients that ended (abandoners, killed ones) and start others in their place. */
static void tend_clients(struct soak *s)
{
	for (unsigned i = 0; i < s->n_clients; i++) {
		int status;

		if (waitpid(s->clients[i], &status, WNOHANG) != s->clients[i])
			continue;
		if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
			fprintf(stderr, "soak: a client exited with %d\n", WEXITSTATUS(status));
			s->failed = 1;
		}
		s->clients[i] = spawn_client(s);
	}
}

static void kill_one(struct soak *s)
{
	unsigned i = (unsigned)(next_random(&s->rnd) % s->n_clients);

	if (kill(s->clients[i], SIGKILL) == 0)
		s->st->killed++;
	waitpid(s->clients[i], NULL, 0);
	s->clients[i] = spawn_client(s);
}

/* The next governor, and under userspace random bits for fmnist. */
static void switch_governor(struct soak *s)
{
	const char *name =
		governors[s->governor_step++ % (sizeof(governors) / sizeof(governors[0]))];
	struct bitmix_governor_info info;
	struct bitmix_layer_bits bits[BMX_MAX_LAYERS];
	struct bitmix_model *m;

	if (bitmix_governor(s->ctl, name, &info) < 0 || strcmp(info.name, name) != 0) {
		fprintf(stderr, "soak: switching to %s: %s (running %s)\n", name,
			bitmix_strerror(s->ctl), info.name);
		s->failed = 1;
		return;
	}
	s->st->governor_switches++;
	if (strcmp(name, "userspace") != 0 || bitmix_open_model(s->ctl, "fmnist", &m) < 0)
		return;
	for (uint32_t i = 0; i < bitmix_model_get_info(m)->layer_count; i++) {
		uint16_t mask = bitmix_model_layer_bits_mask(m, i);
		uint8_t b;

		do
			b = (uint8_t)(2 + next_random(&s->rnd) % 7);
		while (!(mask & (1u << b)));
		bits[i] = (struct bitmix_layer_bits){ b, b };
	}
	if (bitmix_set_bits(m, bits, NULL) == 0)
		s->st->bits_set++;
}

/* Reload: good configs (the second model in or out) and bad ones, in turn. */
static void reload(struct soak *s)
{
	static const char *const bad[] = {
		"limits: {in_flight: [\n",    /* YAML syntax */
		"no_such_block: 1\n",	      /* schema */
		"limits:\n  in_flight: -5\n", /* range */
	};
	unsigned step = s->reload_step++;
	bool good = step % 2 == 0, second = (step / 2) % 2 == 0;
	char why[BITMIX_RELOAD_WHY_MAX];
	int r;

	if (good)
		r = write_config(&s->h, s->ref, second, "performance", NULL);
	else if (step % 6 == 5) /* a model file that is not there */
		r = harness_write_config(&s->h, "/nonexistent/fmnist.bmx",
					 "governor:\n  name: performance\n");
	else
		r = write_config(&s->h, s->ref, s->second_loaded, "performance",
				 bad[(step / 2) % 3]);
	if (r < 0) {
		fprintf(stderr, "soak: cannot write the config: %s\n", strerror(-r));
		s->failed = 1;
		return;
	}
	r = bitmix_reload(s->ctl, why, sizeof(why));
	if (good && r < 0) {
		fprintf(stderr, "soak: a good reload failed: %s\n", why);
		s->failed = 1;
	} else if (!good && r == 0) {
		fprintf(stderr, "soak: a bad config was accepted (step %u)\n", step);
		s->failed = 1;
	}
	if (good && r == 0) {
		s->second_loaded = second;
		s->st->reloads_good++;
	} else if (!good && r < 0) {
		s->st->reloads_bad++;
	}
}

/* Are the cost tables of the models served now complete (their measuring threads done)? */
static bool costs_complete(struct soak *s)
{
	const char *models[] = { "fmnist", s->second_loaded ? "fmnist2" : NULL };

	for (int i = 0; i < 2 && models[i]; i++) {
		struct bitmix_cost_info info = { 0 };

		if (bitmix_get_cost(s->ctl, models[i], &info, NULL, 0) < 0 || !info.complete)
			return false;
	}
	return true;
}

/*
 * Warm-up ends at a quarter of the run once every cost table is complete: a model's table is
 * measured by a thread at idle priority that runs large batches (its scratch is RSS), which on
 * a busy machine may take minutes; afterwards reloads read the tables from the cache.
 */
static void sample(struct soak *s, uint64_t elapsed, uint64_t total)
{
	if (s->n_samples == MAX_SAMPLES)
		return;
	if (!s->warm && elapsed >= total / 4 && costs_complete(s))
		s->warm = s->n_samples;
	s->fds[s->n_samples] = harness_fd_count(&s->h);
	s->rss[s->n_samples] = harness_rss_kib(&s->h);
	s->n_samples++;
}

static int load_reference(struct reference *ref, const char *path)
{
	struct bmx_error err;
	int r;

	ref->path = realpath(path, NULL);
	if (!ref->path)
		return -errno;
	r = bmx_model_load_file(ref->path, &ref->model, &err);
	if (r < 0) {
		fprintf(stderr, "soak: %s: %s\n", path, err.msg);
		return r;
	}
	r = bmx_engine_new(ref->model, &ref->engine);
	ref->in_size = (uint32_t)bmx_model_input_size(ref->model);
	ref->out_size = (uint32_t)bmx_model_output_size(ref->model);
	return r;
}

/* The daemon's descriptors and RSS with no clients: the fewest over a second (closing and
 * freeing are asynchronous). */
static void quiet_counts(struct soak *s, int *fds, long *rss)
{
	long best = -1;

	*fds = 1 << 30;
	for (int i = 0; i < 20; i++) {
		int n = harness_fd_count(&s->h);
		long r = harness_rss_kib(&s->h);

		if (n >= 0 && n < *fds)
			*fds = n;
		if (r >= 0 && (best < 0 || r < best))
			best = r;
		sleep_ms(50);
	}
	if (rss)
		*rss = best;
}

static void run(struct soak *s, unsigned seconds)
{
	uint64_t start = now_ns(), end = start + (uint64_t)seconds * 1000000000u;
	uint64_t next_kill = start, next_gov = start, next_reload = start, next_sample = start;

	for (unsigned i = 0; i < s->n_clients; i++)
		s->clients[i] = spawn_client(s);
	while (now_ns() < end && !s->failed) {
		uint64_t t = now_ns();
		int status;

		if (waitpid(s->h.pid, &status, WNOHANG) == s->h.pid) {
			fprintf(stderr, "soak: bitmixd died (status %#x)\n", status);
			s->h.pid = 0;
			s->st->daemon_died = 1;
			s->failed = 1;
			break;
		}
		tend_clients(s);
		if (t >= next_kill) {
			kill_one(s);
			next_kill = t + 300000000u + next_random(&s->rnd) % 1000000000u;
		}
		if (t >= next_gov) {
			switch_governor(s);
			next_gov = t + 2000000000u;
		}
		if (t >= next_reload && t > start + 1000000000u) {
			reload(s);
			next_reload = t + 3000000000u;
		}
		if (t >= next_sample) {
			sample(s, t - start, end - start);
			next_sample = t + 1000000000u;
		}
		sleep_ms(50);
	}
	__atomic_store_n(&s->st->stop, 1, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < s->n_clients; i++) {
		for (int w = 0; w < 600 && waitpid(s->clients[i], NULL, WNOHANG) == 0; w++)
			sleep_ms(
				100); /* a request under sanitizers on a busy machine: a minute at most */
		kill(s->clients[i], SIGKILL);
		waitpid(s->clients[i], NULL, 0);
	}
}

/*
 * Flat: with no clients left, the descriptors are what they were before the clients came, and
 * the RSS is within 25% + 128 MiB of the lowest RSS seen under load after warm-up (the workers
 * keep their scratch, sized for the batches they last ran).
 */
static int check_flat(struct soak *s, int fds_start, int fds_end, long rss_quiet)
{
	unsigned warm = s->warm, n = s->n_samples;
	long rss_floor = -1, rss_peak = 0;
	int fds_peak = 0, bad = 0;

	printf("soak: RSS (KiB) every 10 s:");
	for (unsigned i = 0; i < n; i += 10)
		printf(" %ld", s->rss[i]);
	printf("\n");
	for (unsigned i = 0; i < n; i++) {
		if (s->rss[i] > rss_peak)
			rss_peak = s->rss[i];
		if (i >= warm && s->rss[i] >= 0 && (rss_floor < 0 || s->rss[i] < rss_floor))
			rss_floor = s->rss[i];
		if (s->fds[i] > fds_peak)
			fds_peak = s->fds[i];
	}
	printf("soak: daemon fds: %d before the clients, %d after them (peak %d under load)\n",
	       fds_start, fds_end, fds_peak);
	printf("soak: daemon RSS: %ld KiB at start, lowest %ld KiB under load after warm-up, "
	       "%ld KiB with no clients at the end (peak %ld KiB)\n",
	       n ? s->rss[0] : 0, rss_floor, rss_quiet, rss_peak);
	if (fds_end > fds_start + 2) {
		fprintf(stderr,
			"soak: the daemon holds %d descriptors with no clients, %d at start\n",
			fds_end, fds_start);
		bad = 1;
	}
	if (!warm || rss_floor < 0) {
		printf("soak: RSS flatness not checked: the cost tables were still being measured at "
		       "the end (a busy machine; run longer)\n");
		return bad;
	}
	printf("soak: warm-up ended at %u s\n", warm);
	if (rss_quiet < 0 || rss_quiet > rss_floor + rss_floor / 4 + 131072) {
		fprintf(stderr,
			"soak: RSS with no clients at the end is %ld KiB, the lowest after "
			"warm-up was %ld KiB\n",
			rss_quiet, rss_floor);
		bad = 1;
	}
	return bad;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "seconds", required_argument, NULL, 's' },
					      { "clients", required_argument, NULL, 'c' },
					      { NULL, 0, NULL, 0 } };
	struct soak *s = calloc(1, sizeof(*s));
	unsigned seconds = 60;
	int c, fds_start, fds_end, status;
	long rss_end;
	char cache[64], cmd[128];

	s->n_clients = 3;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 's')
			seconds = (unsigned)atoi(optarg);
		else if (c == 'c')
			s->n_clients = (unsigned)atoi(optarg);
		else
			return 2;
	}
	if (argc - optind != 3 || s->n_clients < 1 || s->n_clients > MAX_CLIENTS) {
		fprintf(stderr,
			"Usage: soak BITMIXD MODEL.bmx MODEL2.bmx [--seconds N] [--clients N]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	/* Under ASan the daemon's freed memory waits in a quarantine (256 MiB by default) that
	 * would read as RSS growth: keep it small. */
	if (getenv("ASAN_OPTIONS")) {
		char asan[512];

		snprintf(asan, sizeof(asan), "%s:quarantine_size_mb=8", getenv("ASAN_OPTIONS"));
		setenv("ASAN_OPTIONS", asan, 1);
	} else {
		setenv("ASAN_OPTIONS", "quarantine_size_mb=8", 1);
	}
	s->rnd = 0x5eed5eedull ^ (uint64_t)getpid();
	s->st = mmap(NULL, sizeof(*s->st), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		     0);
	if (s->st == MAP_FAILED || load_reference(&s->ref[0], argv[optind + 1]) < 0 ||
	    load_reference(&s->ref[1], argv[optind + 2]) < 0)
		return 1;
	/* Cost tables measured once and read back on every reload, as CacheDirectory= gives. */
	snprintf(cache, sizeof(cache), "/tmp/bitmix-soak-cache-XXXXXX");
	if (!mkdtemp(cache))
		return 1;
	setenv("CACHE_DIRECTORY", cache, 1);
	memset(&s->h, 0, sizeof(s->h));
	/* The first config as the harness starts it, then ours, with the second model. */
	if (harness_start(&s->h, argv[optind], s->ref[0].path,
			  "governor:\n  name: performance\n" HARNESS_HOT_MACHINE_YAML) < 0 ||
	    write_config(&s->h, s->ref, true, "performance", NULL) < 0 ||
	    bitmix_connect(s->h.socket, &s->ctl) < 0 || bitmix_reload(s->ctl, NULL, 0) < 0) {
		fprintf(stderr, "soak: cannot start bitmixd (log: %s)\n", s->h.log);
		harness_cleanup(&s->h);
		return 1;
	}
	s->second_loaded = true;
	quiet_counts(s, &fds_start, NULL);
	run(s, seconds);

	if (s->h.pid > 0) {
		/* Back to the first state (second model loaded), then count with no clients. */
		write_config(&s->h, s->ref, true, "performance", NULL);
		if (bitmix_reload(s->ctl, NULL, 0) < 0)
			s->failed = 1;
		bitmix_close(s->ctl);
		s->ctl = NULL;
		sleep_ms(500);
		quiet_counts(s, &fds_end, &rss_end);
		s->failed |= check_flat(s, fds_start, fds_end, rss_end);
	}
	if (s->ctl)
		bitmix_close(s->ctl);
	status = s->h.pid > 0 ? harness_stop(&s->h) : -1;
	printf("soak: %u s, %u clients: %llu requests, %llu outputs checked, %llu wrong, %llu not "
	       "checkable (generation replaced meanwhile), %llu refused (model unloaded), %llu other "
	       "errors\n",
	       seconds, s->n_clients, (unsigned long long)s->st->requests,
	       (unsigned long long)s->st->checked, (unsigned long long)s->st->wrong,
	       (unsigned long long)s->st->unverified, (unsigned long long)s->st->refused_unloaded,
	       (unsigned long long)s->st->errors);
	printf("soak: %llu connections (%llu refused), %llu clients killed, %llu governor switches, "
	       "%llu bit settings, reloads %llu good / %llu bad refused; bitmixd exit status %d\n",
	       (unsigned long long)s->st->connections, (unsigned long long)s->st->connect_failed,
	       (unsigned long long)s->st->killed, (unsigned long long)s->st->governor_switches,
	       (unsigned long long)s->st->bits_set, (unsigned long long)s->st->reloads_good,
	       (unsigned long long)s->st->reloads_bad, status);
	if (status != 0) {
		fprintf(stderr, "soak: bitmixd exited with %d (log: %s)\n", status, s->h.log);
		setenv("BITMIX_KEEP_TEST_DIR", "1", 1);
		s->failed = 1;
	}
	if (s->st->wrong || s->st->checked == 0 || s->st->errors)
		s->failed = 1;
	harness_cleanup(&s->h);
	printf("soak: %s\n", s->failed ? "FAILED" : "passed");
	c = s->failed ? 1 : 0;
	for (int i = 0; i < 2; i++) {
		bmx_engine_free(s->ref[i].engine);
		bmx_model_free(s->ref[i].model);
		free((char *)s->ref[i].path);
	}
	munmap(s->st, sizeof(*s->st));
	free(s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cache);
	if (system(cmd) != 0)
		fprintf(stderr, "soak: could not remove %s\n", cache);
	return c;
}
