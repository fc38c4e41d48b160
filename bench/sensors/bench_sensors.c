/* SPDX-License-Identifier: MIT */
/*
 * bench_sensors.c — what sensing costs and how fast it is: the eBPF probe's cost per event
 * (the kernel's own BPF run-time statistics), each source's cost per sample beside its peers,
 * and the latency from a kernel event (the thermal program run in the kernel) to user space
 * seeing it, for io_uring poll (bitmixd's way) beside epoll and busy polling. Prints tables.
 * Needs root (BPF). Usage: bench_sensors [SECONDS_OF_LOAD] [LATENCY_EVENTS]
 */
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bmx_util.h"
#include "config.h"
#include "sensor_bpf.h"
#include "sensor_source.h"
#include "sensors.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* --- load: two threads on two CPUs passing a byte back and forth (switches, idle entries) --- */

struct pingpong {
	int to_b[2], to_a[2];
	atomic_bool stop;
	uint64_t round_trips;
};

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu % (int)sysconf(_SC_NPROCESSORS_ONLN), &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *pong(void *arg)
{
	struct pingpong *p = arg;
	char c;

	pin(1);
	while (read(p->to_b[0], &c, 1) == 1 && c)
		if (write(p->to_a[1], &c, 1) != 1)
			break;
	return NULL;
}

static void run_pingpong(double seconds)
{
	struct pingpong p = { 0 };
	uint64_t end = mono_ns() + (uint64_t)(seconds * 1e9);
	pthread_t t;
	char c = 1;

	if (pipe(p.to_b) < 0 || pipe(p.to_a) < 0)
		return;
	pthread_create(&t, NULL, pong, &p);
	pin(0);
	while (mono_ns() < end) {
		if (write(p.to_b[1], &c, 1) != 1 || read(p.to_a[0], &c, 1) != 1)
			break;
		p.round_trips++;
	}
	c = 0;
	if (write(p.to_b[1], &c, 1) != 1)
		perror("pingpong");
	pthread_join(t, NULL);
	close(p.to_b[0]);
	close(p.to_b[1]);
	close(p.to_a[0]);
	close(p.to_a[1]);
}

/* --- the thermal program, executed in the kernel on a zone image crafted from BTF --- */

struct zone_image {
	char *bytes;
	__u64 args[1];
};

static int zone_image_make(struct zone_image *z)
{
	struct btf *btf = btf__load_vmlinux_btf();
	const struct btf_type *t;
	const struct btf_member *m;
	__s32 id, size;

	if (!btf)
		return -errno;
	id = btf__find_by_name_kind(btf, "thermal_zone_device", BTF_KIND_STRUCT);
	if (id <= 0 || (size = btf__resolve_size(btf, id)) <= 0) {
		btf__free(btf);
		return -ENOENT;
	}
	t = btf__type_by_id(btf, id);
	z->bytes = calloc(1, (size_t)size);
	m = btf_members(t);
	for (unsigned i = 0; z->bytes && i < btf_vlen(t); i++, m++)
		if (strcmp(btf__name_by_offset(btf, m->name_off), "temperature") == 0)
			*(int *)(z->bytes + btf_member_bit_offset(t, i) / 8) = 85000;
	btf__free(btf);
	z->args[0] = (__u64)(uintptr_t)z->bytes;
	return z->bytes ? 0 : -ENOMEM;
}

static int fire_thermal(int prog_fd, struct zone_image *z)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = z->args, .ctx_size_in = sizeof(z->args));

	return bpf_prog_test_run_opts(prog_fd, &opts);
}

/* --- table 1: the probe's cost per event --- */

struct prog_stats {
	const char *name;
	uint64_t run_ns, runs;
};

static void read_prog_stats(struct sensor_bpf *b, struct prog_stats *out, unsigned *n)
{
	const char *name;
	int fd;

	for (*n = 0; (fd = sensor_bpf_prog_at(b, *n, &name)) >= 0; (*n)++) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);

		memset(&info, 0, sizeof(info));
		bpf_obj_get_info_by_fd(fd, &info, &len);
		out[*n] = (struct prog_stats){ name, info.run_time_ns, info.run_cnt };
	}
}

static void table_probe_cost(struct sensor_bpf *b, struct zone_image *z, double seconds)
{
	struct prog_stats before[8], after[8];
	unsigned n, thermal_runs = 20000;
	int thermal_fd = sensor_bpf_prog_fd(b, "on_thermal_temperature");
	uint64_t t0, wall;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	read_prog_stats(b, before, &n);
	t0 = mono_ns();
	run_pingpong(seconds);
	for (unsigned i = 0; i < thermal_runs; i++) {
		fire_thermal(thermal_fd, z);
		if (i % 256 == 255)
			sensor_bpf_consume(b); /* keep the ring buffer from filling */
	}
	sensor_bpf_consume(b);
	wall = mono_ns() - t0;
	read_prog_stats(b, after, &n);

	printf("\nTable 1. eBPF probe cost per event (kernel BPF run-time statistics, "
	       "BPF_STATS_RUN_TIME), %.1f s of a pipe ping-pong between CPU 0 and 1 "
	       "plus %u thermal events run with BPF_PROG_TEST_RUN\n\n",
	       seconds, thermal_runs);
	printf("| program | hook | events | events/s | ns per event | CPU share of %ld CPUs |\n",
	       cpus);
	printf("| --- | --- | ---: | ---: | ---: | ---: |\n");
	for (unsigned i = 0; i < n; i++) {
		uint64_t runs = after[i].runs - before[i].runs,
			 ns = after[i].run_ns - before[i].run_ns;
		const char *hook = strstr(after[i].name, "thermal")  ? "raw_tp/thermal_temperature"
				   : strstr(after[i].name, "switch") ? "tp_btf/sched_switch"
				   : strstr(after[i].name, "idle")   ? "tp_btf/cpu_idle"
								     : "tp_btf/cpu_frequency";

		char per_event[32] = "n/a";

		if (runs)
			snprintf(per_event, sizeof(per_event), "%.1f", (double)ns / (double)runs);
		printf("| %s | %s | %llu | %.0f | %s | %.4f%% |\n", after[i].name, hook,
		       (unsigned long long)runs, runs * 1e9 / (double)wall, per_event,
		       100.0 * (double)ns / ((double)wall * (double)cpus));
	}
}

/* --- table 2: cost per sample of each source, side by side --- */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void make_fake_sysfs(char *root)
{
	char p[512];
	const char *dirs[] = { "class",
			       "class/thermal",
			       "class/thermal/thermal_zone0",
			       "class/thermal/thermal_zone1",
			       "class/powercap",
			       "class/powercap/intel-rapl:0" };

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", root, dirs[i]);
		mkdir(p, 0755);
	}
	snprintf(p, sizeof(p), "%s/class/thermal/thermal_zone0/temp", root);
	write_file(p, "45000\n");
	snprintf(p, sizeof(p), "%s/class/thermal/thermal_zone1/temp", root);
	write_file(p, "51000\n");
	snprintf(p, sizeof(p), "%s/class/powercap/intel-rapl:0/energy_uj", root);
	write_file(p, "123456789\n");
	snprintf(p, sizeof(p), "%s/class/powercap/intel-rapl:0/max_energy_range_uj", root);
	write_file(p, "262143328850\n");
}

static double ns_per_sample(const struct sensor_source_ops *ops,
			    const struct bmx_sensors_config *cfg, unsigned iters, char *why,
			    size_t why_size)
{
	struct sensor_reading r;
	unsigned provides;
	void *state;
	uint64_t t0;

	if (ops->open(cfg, &state, &provides, why, why_size) < 0)
		return -1;
	t0 = mono_ns();
	for (unsigned i = 0; i < iters; i++) {
		memset(&r, 0, sizeof(r));
		ops->sample(state, t0 + (i + 1) * 100000000ull, 1000000, &r);
	}
	t0 = mono_ns() - t0;
	ops->close(state);
	return (double)t0 / iters;
}

static void table_sample_cost(void)
{
	struct bmx_sensors_config cfg;
	char root[] = "/tmp/bench-sensors-XXXXXX", why[512];
	struct {
		const char *name;
		const struct sensor_source_ops *ops;
		const char *what;
		unsigned iters;
	} rows[] = {
		{ "bpf", &sensor_bpf_ops, "probe counters from the mapped .bss, all CPUs", 200000 },
		{ "procstat", &sensor_procstat_ops, "read and parse /proc/stat", 20000 },
		{ "sysfs", &sensor_sysfs_ops, "2 zones + 1 RAPL package, fake tree on tmpfs",
		  20000 },
		{ "simulator", &sensor_simulator_ops, "one RC step (exp) from the work", 2000000 },
	};

	bmx_sensors_config_defaults(&cfg);
	if (!mkdtemp(root))
		return;
	make_fake_sysfs(root);
	snprintf(cfg.sysfs_root, sizeof(cfg.sysfs_root), "%s", root);
	printf("\nTable 2. Cost of one sample per source (user space, wall time per call)\n\n");
	printf("| source | what one sample does | samples | ns per sample |\n");
	printf("| --- | --- | ---: | ---: |\n");
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		double ns = ns_per_sample(rows[i].ops, &cfg, rows[i].iters, why, sizeof(why));

		if (ns < 0)
			printf("| %s | %s | - | not available: %s |\n", rows[i].name, rows[i].what,
			       why);
		else
			printf("| %s | %s | %u | %.0f |\n", rows[i].name, rows[i].what,
			       rows[i].iters, ns);
	}
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root);
}

/* --- table 3: kernel event to user space --- */

enum wait_mode { WAIT_URING, WAIT_EPOLL, WAIT_SPIN };

struct latency_run {
	struct sensor_bpf *b;
	struct zone_image *z;
	unsigned events;
	atomic_bool waiting;
	atomic_uint fired;
};

static void *generator(void *arg)
{
	struct latency_run *l = arg;
	int fd = sensor_bpf_prog_fd(l->b, "on_thermal_temperature");
	struct timespec gap = { 0, 2000000 }; /* 2 ms: the waiter is asleep again by then */

	pin(1);
	for (unsigned i = 0; i < l->events; i++) {
		nanosleep(&gap, NULL);
		fire_thermal(fd, l->z);
		atomic_fetch_add(&l->fired, 1);
	}
	return NULL;
}

static int wait_one(struct latency_run *l, enum wait_mode mode, struct io_uring *ring, int epfd)
{
	struct io_uring_cqe *cqe;
	struct epoll_event ev;
	int n;

	switch (mode) {
	case WAIT_URING: {
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

		io_uring_prep_poll_add(sqe, sensor_bpf_event_fd(l->b), POLLIN);
		io_uring_submit_and_wait(ring, 1);
		if (io_uring_peek_cqe(ring, &cqe) == 0)
			io_uring_cqe_seen(ring, cqe);
		break;
	}
	case WAIT_EPOLL:
		epoll_wait(epfd, &ev, 1,
			   1000); /* the ring's own epoll set, as ring_buffer__poll() */
		break;
	case WAIT_SPIN:
		break;
	}
	do
		n = sensor_bpf_consume(l->b);
	while (n == 0 && (mode == WAIT_SPIN || mode == WAIT_EPOLL));
	return n;
}

static void latency_row(struct sensor_bpf *b, struct zone_image *z, enum wait_mode mode,
			const char *name, unsigned events)
{
	struct latency_run l = { .b = b, .z = z, .events = events };
	uint64_t *lat = calloc(events, sizeof(*lat));
	unsigned got = 0, recorded = 0, batched = 0;
	struct io_uring ring;
	int epfd = sensor_bpf_event_fd(b);
	pthread_t t;

	io_uring_queue_init(8, &ring, 0);
	sensor_bpf_consume(b);
	pin(0);
	pthread_create(&t, NULL, generator, &l);
	/* When several events wait at once only the last one's latency is known: it is kept. */
	while (got < events) {
		struct sensor_bpf_stats st;
		int n = wait_one(&l, mode, &ring, epfd);

		if (n <= 0)
			continue;
		sensor_bpf_stats(b, &st);
		lat[recorded++] = st.last_latency_ns;
		got += (unsigned)n;
		batched += (unsigned)n - 1;
	}
	pthread_join(t, NULL);
	qsort(lat, recorded, sizeof(*lat), cmp_u64);
	printf("| %s | %u | %.1f | %.1f | %.1f | %.1f | %u |\n", name, got, lat[recorded / 2] / 1e3,
	       lat[recorded * 9 / 10] / 1e3, lat[recorded * 99 / 100] / 1e3,
	       lat[recorded - 1] / 1e3, batched);
	io_uring_queue_exit(&ring);
	free(lat);
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 3.0;
	unsigned events = argc > 2 ? (unsigned)atoi(argv[2]) : 2000;
	struct bmx_sensors_config cfg;
	struct zone_image z;
	struct sensor_bpf *b;
	char why[512];
	int stats_fd, r;

	if (geteuid() != 0) {
		fprintf(stderr, "bench_sensors: the eBPF probe needs root\n");
		return 77;
	}
	libbpf_set_print(NULL);
	bmx_sensors_config_defaults(&cfg);
	stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (stats_fd < 0) {
		fprintf(stderr, "bench_sensors: BPF_ENABLE_STATS: %s\n", strerror(errno));
		return 1;
	}
	r = sensor_bpf_open(&cfg, &b, why, sizeof(why));
	if (r < 0 || zone_image_make(&z) < 0) {
		fprintf(stderr, "bench_sensors: %s\n",
			r < 0 ? why : "no thermal_zone_device in BTF");
		return 1;
	}
	printf("bench_sensors: %ld CPUs, kernel event -> user space over the probe's BPF ring buffer\n",
	       sysconf(_SC_NPROCESSORS_ONLN));
	table_probe_cost(b, &z, seconds);
	table_sample_cost();
	printf("\nTable 3. Latency from the thermal program's bpf_ktime_get_ns() in the kernel to user "
	       "space holding the event (%u events, one every 2 ms from CPU 1, waiter on CPU 0), us\n\n",
	       events);
	printf("| waiter | events | p50 | p90 | p99 | max | consumed in batches |\n");
	printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
	latency_row(b, &z, WAIT_URING, "io_uring poll on the ring buffer (bitmixd)", events);
	latency_row(b, &z, WAIT_EPOLL, "epoll_wait (libbpf ring_buffer__poll's way)", events);
	latency_row(b, &z, WAIT_SPIN, "busy polling ring_buffer__consume", events);
	printf("\nA sampling-only design sees an event after half a period on average: 50 ms at the "
	       "default 100 ms period.\n");
	sensor_bpf_close(b);
	free(z.bytes);
	close(stats_fd);
	return 0;
}
