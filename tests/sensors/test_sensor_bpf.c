/* SPDX-License-Identifier: MIT */
/*
 * test_sensor_bpf.c — the eBPF probe in the running kernel: every program loads and passes the
 * verifier; the thermal hook's real bytecode, executed with BPF_PROG_TEST_RUN on a zone image
 * crafted from the kernel's BTF, delivers its event through the ring buffer; a busy loop pinned
 * to one CPU reads >= 80% busy, and another CPU reads what /proc/stat says over the same window.
 * Without root or BPF it skips (exit 77) and says why.
 */
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "sensor_bpf.h"
#include "sensors.h"

static struct bmx_sensors_config cfg;

static void test_every_program_verified(void **state)
{
	static const char *expected[] = { "on_sched_switch", "on_cpu_idle", "on_cpu_frequency",
					  "on_thermal_temperature" };
	struct sensor_bpf *b;
	char why[512];
	unsigned n = 0;
	const char *name;
	int fd;

	(void)state;
	assert_int_equal(sensor_bpf_open(&cfg, &b, why, sizeof(why)), 0);
	while ((fd = sensor_bpf_prog_at(b, n, &name)) != -ENOENT) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);

		assert_true(fd >= 0);
		memset(&info, 0, sizeof(info));
		assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
		/* The verifier walked it (verified_insns) and the kernel holds its bytecode. */
		assert_true(info.verified_insns > 0);
		assert_true(info.xlated_prog_len > 0);
		printf("# %-24s %5u instructions verified\n", name, info.verified_insns);
		n++;
	}
	assert_int_equal(n, sizeof(expected) / sizeof(expected[0]));
	for (unsigned i = 0; i < n; i++)
		assert_true(sensor_bpf_prog_fd(b, expected[i]) >= 0);
	sensor_bpf_close(b);
}

/* The byte offset of MEMBER in the kernel's struct NAME, from its BTF. */
static size_t btf_offset(const struct btf *btf, const struct btf_type *t, const char *member)
{
	const struct btf_member *m = btf_members(t);

	for (unsigned i = 0; i < btf_vlen(t); i++, m++)
		if (strcmp(btf__name_by_offset(btf, m->name_off), member) == 0)
			return btf_member_bit_offset(t, i) / 8;
	fail_msg("struct thermal_zone_device has no member %s in this kernel's BTF", member);
	return 0;
}

static void test_thermal_event_by_test_run(void **state)
{
	struct btf *btf = btf__load_vmlinux_btf();
	const struct btf_type *t;
	struct sensor_bpf_stats st;
	struct sensor_reading r;
	struct sensor_bpf *b;
	char why[512], *zone;
	__s32 id, size;
	__u64 args[1];
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = args, .ctx_size_in = sizeof(args));

	(void)state;
	assert_non_null(btf);
	id = btf__find_by_name_kind(btf, "thermal_zone_device", BTF_KIND_STRUCT);
	assert_true(id > 0);
	t = btf__type_by_id(btf, id);
	size = btf__resolve_size(btf, id);
	assert_true(size > 0);
	/* A zone as the kernel lays it out: id 7, 87.5 C now, 86 C before. */
	zone = calloc(1, (size_t)size);
	assert_non_null(zone);
	*(int *)(zone + btf_offset(btf, t, "id")) = 7;
	*(int *)(zone + btf_offset(btf, t, "temperature")) = 87500;
	*(int *)(zone + btf_offset(btf, t, "last_temperature")) = 86000;
	strcpy(zone + btf_offset(btf, t, "type"), "x86_pkg_temp");
	args[0] = (__u64)(uintptr_t)zone;

	assert_int_equal(sensor_bpf_open(&cfg, &b, why, sizeof(why)), 0);
	assert_int_equal(
		bpf_prog_test_run_opts(sensor_bpf_prog_fd(b, "on_thermal_temperature"), &opts), 0);
	assert_int_equal(opts.retval, 0);
	/* The ring buffer's descriptor wakes a poller, and the event is what the program read. */
	struct pollfd pfd = { .fd = sensor_bpf_event_fd(b), .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	assert_int_equal(sensor_bpf_consume(b), 1);
	sensor_bpf_stats(b, &st);
	assert_int_equal(st.events, 1);
	assert_int_equal(st.last.kind, PROBE_EVENT_THERMAL);
	assert_int_equal(st.last.zone_id, 7);
	assert_int_equal(st.last.temp_mc, 87500);
	assert_int_equal(st.last.prev_temp_mc, 86000);
	assert_string_equal(st.last.zone_type, "x86_pkg_temp");
	assert_true(st.last_seen_ns >= st.last.time_ns);
	/* The reading now has that zone's temperature. */
	memset(&r, 0, sizeof(r));
	assert_int_equal(sensor_bpf_sample(b, &r), 0);
	assert_true(r.have & SENSOR_HAVE_TEMP);
	assert_int_equal(r.temp_mc, 87500);
	assert_int_equal(sensor_bpf_consume(b), 0); /* nothing else waiting */
	sensor_bpf_close(b);
	free(zone);
	btf__free(btf);
}

/* Per-CPU busy share from /proc/stat between two snapshots. */
struct stat_snap {
	unsigned long long busy[SENSORS_MAX_CPUS], total[SENSORS_MAX_CPUS];
};

static void proc_stat(struct stat_snap *s)
{
	char line[512];
	FILE *f = fopen("/proc/stat", "re");

	assert_non_null(f);
	memset(s, 0, sizeof(*s));
	while (fgets(line, sizeof(line), f)) {
		unsigned long long v[8] = { 0 };
		unsigned cpu;

		if (sscanf(line, "cpu%u %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0],
			   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 5 ||
		    cpu >= SENSORS_MAX_CPUS)
			continue;
		s->total[cpu] = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
		s->busy[cpu] = s->total[cpu] - v[3] - v[4];
	}
	fclose(f);
}

static unsigned stat_permille(const struct stat_snap *a, const struct stat_snap *b, unsigned cpu)
{
	unsigned long long t = b->total[cpu] - a->total[cpu];

	return t ? (unsigned)((b->busy[cpu] - a->busy[cpu]) * 1000 / t) : 0;
}

static atomic_bool spin_stop;

static void *spin(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&spin_stop, memory_order_relaxed))
		;
	return NULL;
}

static void test_busy_loop_pinned(void **state)
{
	struct sensor_reading r;
	struct stat_snap s0, s1;
	struct sensor_bpf *b;
	pthread_t thread;
	pthread_attr_t attr;
	cpu_set_t set;
	char why[512];
	unsigned busy_cpu = 0, other = 1, ref;

	(void)state;
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		skip();
	assert_int_equal(sensor_bpf_open(&cfg, &b, why, sizeof(why)), 0);
	pthread_attr_init(&attr);
	CPU_ZERO(&set);
	CPU_SET(busy_cpu, &set);
	assert_int_equal(pthread_attr_setaffinity_np(&attr, sizeof(set), &set), 0);
	atomic_store(&spin_stop, false);
	assert_int_equal(pthread_create(&thread, &attr, spin, NULL), 0);
	usleep(100000); /* the spinner is on its CPU */
	memset(&r, 0, sizeof(r));
	assert_int_equal(sensor_bpf_sample(b, &r), 0);
	proc_stat(&s0);
	usleep(1500000);
	assert_int_equal(sensor_bpf_sample(b, &r), 0);
	proc_stat(&s1);
	atomic_store(&spin_stop, true);
	pthread_join(thread, NULL);
	pthread_attr_destroy(&attr);

	ref = stat_permille(&s0, &s1, other);
	printf("# probe: cpu%u %u permille busy, cpu%u %u; /proc/stat: cpu%u %u, cpu%u %u\n",
	       busy_cpu, r.cpu_load_permille[busy_cpu], other, r.cpu_load_permille[other], busy_cpu,
	       stat_permille(&s0, &s1, busy_cpu), other, ref);
	assert_true(r.have & SENSOR_HAVE_LOAD);
	assert_true(r.cpu_load_permille[busy_cpu] >= 800);
	/* The other CPU runs whatever else the machine runs: the probe agrees with /proc/stat. */
	assert_true(abs((int)r.cpu_load_permille[other] - (int)ref) <= 150);
	sensor_bpf_close(b);
}

/* Through the front: `auto` takes the probe, and the temperature is never missing. */
static void test_auto_takes_probe(void **state)
{
	struct sensor_reading r;
	struct sensors *s;

	(void)state;
	assert_int_equal(sensors_open(&cfg, &s), 0);
	assert_int_equal(sensors_source(s), SENSOR_SOURCE_BPF);
	assert_true(sensors_event_fd(s) >= 0);
	assert_non_null(strstr(sensors_explain(s), "bpf: active"));
	usleep(20000);
	assert_int_equal(sensors_sample(s, 1, &r), 0);
	assert_true(r.have & SENSOR_HAVE_LOAD);
	assert_true(r.have & SENSOR_HAVE_TEMP);
	assert_true(sensors_handle_events(s) >= 0);
	printf("# %s", sensors_explain(s));
	sensors_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_program_verified),
		cmocka_unit_test(test_thermal_event_by_test_run),
		cmocka_unit_test(test_busy_loop_pinned),
		cmocka_unit_test(test_auto_takes_probe),
	};
	struct sensor_bpf *b;
	char why[512];
	int r;

	bmx_sensors_config_defaults(&cfg);
	if (geteuid() != 0) {
		printf("SKIP: the eBPF probe needs root (or CAP_BPF and CAP_PERFMON); running as uid %u\n",
		       (unsigned)geteuid());
		return 77;
	}
	libbpf_set_print(NULL);
	r = sensor_bpf_open(&cfg, &b, why, sizeof(why));
	if (r < 0) {
		printf("SKIP: BPF does not work here: %s\n", why);
		return 77;
	}
	sensor_bpf_close(b);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
