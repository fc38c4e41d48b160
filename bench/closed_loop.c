/* SPDX-License-Identifier: MIT */
/*
 * closed_loop.c — the governor's closed loop on the real daemon and real CPUs: what the daemon's
 * own CPU time per sample does when the governor acts.
 *
 * For each model, a bitmixd of its own (bench_daemon.c) serves it on the simulator, which the
 * daemon heats with the CPU time its workers really spend. First the most two clients sending
 * back-to-back batch-1 requests get at fixed 8 bits (the capacity); then they offer LOAD_SHARE
 * of it, paced, so that the CPUs can idle, under fixed 8 bits (performance), fixed 2 bits
 * (userspace, every layer at the nearest bits it allows) and power_allocator. Its control point is set where the machine sustains HALF the
 * power fixed 8 bits draws at that load (simulated package: control = ambient + R x (idle +
 * per_cpu x busy_8 / 2)), so that the governor must find half the CPU time somewhere. Each run
 * settles, then the window measures the daemon's CPU time (/proc/PID/stat, every thread), the
 * samples served, the average bits the governor chose (with the expected accuracy where the
 * model's accuracy table is given), the temperature and the work cap.
 *
 * Where fewer bits cost measurably less (the LINEAR-heavy model, `bmx-gen --arch mlp4096`:
 * batch-1 GEMVs that read w/8 of its 37 MB of weight bytes), power_allocator meets the budget with precision at the full rate; where they do
 * not (small convolutions on VNNI), it keeps the bits and the work cap cuts the rate.
 *
 * Usage: closed-loop BITMIXD MODEL.bmx[=ACCURACY_TABLE] ... [--seconds S] [--settle S]
 *        ACCURACY_TABLE: 8=A,6=A,4=A,3=A,2=A (expected accuracy by uniform bits)
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_daemon.h"
#include "bitmix.h"

#define CLIENTS 2
#define LOAD_SHARE 0.8
/* The simulated package (the bundled configuration's, with a 3 s time constant). */
#define AMBIENT_C 25.0
#define R_C_PER_W 1.5
#define C_J_PER_C 2.0
#define IDLE_W 5.0
#define PER_CPU_W 20.0

struct load {
	const char *socket, *model;
	double period_s; /* between one client's requests; 0: back to back */
	uint64_t until_ns;
	uint64_t served; /* atomic */
	int error;
};

static void *client_main(void *arg)
{
	struct load *l = arg;
	struct bitmix *bm = NULL;
	struct bitmix_model *m;
	const struct bitmix_model_info *info;
	float *in, *out;
	uint64_t next = bench_now_ns(), period = (uint64_t)(l->period_s * 1e9);
	size_t n_in;

	if (bitmix_connect(l->socket, &bm) < 0 || bitmix_open_model(bm, l->model, &m) < 0) {
		l->error = 1;
		bitmix_close(bm);
		return NULL;
	}
	info = bitmix_model_get_info(m);
	n_in = (size_t)info->input_h * info->input_w * info->input_c;
	in = bitmix_tensor_alloc(bm, n_in * sizeof(float));
	out = bitmix_tensor_alloc(bm, info->output_size * sizeof(float));
	if (!in || !out) {
		l->error = 1;
		bitmix_close(bm);
		return NULL;
	}
	for (size_t i = 0; i < n_in; i++)
		in[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;
	for (;;) {
		uint64_t now = bench_now_ns();

		if (now >= l->until_ns)
			break;
		if (period && now < next) {
			struct timespec ts = { 0, (long)(next - now) };

			nanosleep(&ts, NULL);
		}
		if (bitmix_infer(m, in, out, 1, NULL) < 0) {
			l->error = 1;
			break;
		}
		__atomic_add_fetch(&l->served, 1, __ATOMIC_RELAXED);
		next += period;
		if (bench_now_ns() >
		    next + 100000000ull) /* more than 0.1 s behind: offer no backlog */
			next = bench_now_ns();
	}
	bitmix_close(bm);
	return NULL;
}

/* The CPU time of every thread of PID so far, in seconds. */
static double process_cpu_s(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long utime, stime;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return NAN;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')'); /* the command may hold spaces */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
			 &stime) != 2)
		return NAN;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

struct result {
	const char *label;
	double offered, served, cpu_us, busy, bits, accuracy, temp, cap;
};

struct model_case {
	const char *path, *name;
	double accuracy_at[9]; /* 0: unknown */
};

static double expected_accuracy(const struct model_case *mc, double bits)
{
	int lo = (int)floor(bits), hi;

	while (lo > 2 && mc->accuracy_at[lo] == 0)
		lo--;
	for (hi = lo + 1; hi < 8 && mc->accuracy_at[hi] == 0; hi++)
		;
	if (mc->accuracy_at[8] == 0)
		return NAN;
	if (lo >= 8 || hi > 8 || mc->accuracy_at[lo] == 0 || mc->accuracy_at[hi] == 0)
		return mc->accuracy_at[8];
	return mc->accuracy_at[lo] +
	       (mc->accuracy_at[hi] - mc->accuracy_at[lo]) * (bits - lo) / (hi - lo);
}

/*
 * Offer RATE samples/s (0: as many as two clients get) for SETTLE_S + SECONDS and measure the
 * last SECONDS. Returns 0 or -errno.
 */
static int measure(const struct bench_daemon *d, const struct model_case *mc, double rate,
		   double settle_s, double seconds, struct result *r)
{
	struct load l = { .socket = d->socket,
			  .model = mc->name,
			  .period_s = rate > 0 ? CLIENTS / rate : 0 };
	pthread_t threads[CLIENTS];
	struct bitmix_policy_info pol;
	struct bitmix_governor_info gov;
	struct bitmix_sensors se;
	struct bitmix *ctl;
	uint64_t t0, t1, s0, s1;
	double c0, c1;

	l.until_ns = bench_now_ns() + (uint64_t)((settle_s + seconds) * 1e9);
	for (int i = 0; i < CLIENTS; i++)
		pthread_create(&threads[i], NULL, client_main, &l);
	usleep((useconds_t)(settle_s * 1e6));
	t0 = bench_now_ns();
	s0 = __atomic_load_n(&l.served, __ATOMIC_RELAXED);
	c0 = process_cpu_s(d->pid);
	usleep((useconds_t)(seconds * 1e6));
	t1 = bench_now_ns();
	s1 = __atomic_load_n(&l.served, __ATOMIC_RELAXED);
	c1 = process_cpu_s(d->pid);
	if (bitmix_connect(d->socket, &ctl) < 0)
		return -ECONNREFUSED;
	if (bitmix_get_policy(ctl, mc->name, &pol) < 0 || bitmix_get_sensors(ctl, &se) < 0 ||
	    bitmix_governor(ctl, NULL, &gov) < 0) {
		bitmix_close(ctl);
		return -EIO;
	}
	bitmix_close(ctl);
	for (int i = 0; i < CLIENTS; i++)
		pthread_join(threads[i], NULL);
	if (l.error)
		return -EIO;
	r->offered = rate;
	r->served = (double)(s1 - s0) / ((double)(t1 - t0) * 1e-9);
	r->busy = (c1 - c0) / ((double)(t1 - t0) * 1e-9);
	r->cpu_us = s1 > s0 ? (c1 - c0) / (double)(s1 - s0) * 1e6 : NAN;
	r->bits = pol.average_bits;
	r->accuracy = expected_accuracy(mc, pol.average_bits);
	r->temp = se.have & 1 ? se.temp_c : NAN;
	r->cap = gov.work_cap_cpus;
	return 0;
}

/* Every layer of the model at B bits, or the nearest it allows (userspace must run). */
static int set_all_bits(const struct bench_daemon *d, const struct model_case *mc, unsigned b)
{
	struct bitmix_layer_bits bits[1024];
	struct bitmix_model *m;
	struct bitmix *bm;
	uint32_t n;
	int r;

	if ((r = bitmix_connect(d->socket, &bm)) < 0)
		return r;
	r = bitmix_open_model(bm, mc->name, &m);
	n = r == 0 ? bitmix_model_get_info(m)->layer_count : 0;
	for (uint32_t l = 0; l < n && l < 1024; l++) {
		uint16_t mask = bitmix_model_layer_bits_mask(m, l);
		unsigned best = 8;

		for (unsigned c = 8; c >= 2; c--)
			if ((mask & (1u << c)) && abs((int)c - (int)b) <= abs((int)best - (int)b))
				best = c;
		bits[l] = (struct bitmix_layer_bits){ (uint8_t)best, (uint8_t)best };
	}
	if (r == 0)
		r = bitmix_set_bits(m, bits, NULL);
	bitmix_close(bm);
	return r;
}

/* One run: a daemon with GOVERNOR (and its control point), LOAD offered, measured. */
static int run(const char *bitmixd, const struct model_case *mc, const char *governor,
	       double control_c, double rate, double settle_s, double seconds, struct result *r)
{
	struct bench_daemon d;
	char yaml[1024];
	int ret;

	snprintf(
		yaml, sizeof(yaml),
		"governor:\n  name: %s\n  power_allocator:\n    control_temp_c: %.2f\n"
		"    switch_on_temp_c: %.2f\n    sustainable_power_w: %.3f\n"
		"    dynamic_power_w: %.1f\n"
		"sensors:\n  source: simulator\n  period_ms: 100\n  simulator:\n"
		"    ambient_c: %.1f\n    thermal_resistance_c_per_w: %.2f\n"
		"    heat_capacity_j_per_c: %.1f\n    idle_power_w: %.1f\n    power_per_cpu_w: %.1f\n",
		governor, control_c, control_c - 10, (control_c - AMBIENT_C) / R_C_PER_W - IDLE_W,
		PER_CPU_W, AMBIENT_C, R_C_PER_W, C_J_PER_C, IDLE_W, PER_CPU_W);
	ret = bench_daemon_start_yaml(&d, bitmixd, mc->name, mc->path, yaml);
	if (ret < 0) {
		fprintf(stderr, "closed-loop: starting bitmixd on %s: %s\n", mc->path,
			strerror(-ret));
		return ret;
	}
	ret = strcmp(governor, "userspace") == 0 ? set_all_bits(&d, mc, 2) : 0;
	if (ret == 0)
		ret = measure(&d, mc, rate, settle_s, seconds, r);
	bench_daemon_stop(&d);
	if (ret < 0)
		fprintf(stderr, "closed-loop: %s on %s: %s\n", governor, mc->path, strerror(-ret));
	return ret;
}

static void print_row(const struct result *r, double control_c)
{
	char acc[16] = "-", control[16] = "-", cap[16] = "none";

	if (!isnan(r->accuracy))
		snprintf(acc, sizeof(acc), "%.2f", r->accuracy);
	if (!isnan(control_c))
		snprintf(control, sizeof(control), "%.1f", control_c);
	if (r->cap > 0)
		snprintf(cap, sizeof(cap), "%.2f", r->cap);
	printf("  %-22s %10.0f %10.0f %12.1f %10.2f %7.2f %9s %7.1f %8s %9s\n", r->label,
	       r->offered, r->served, r->cpu_us, r->busy, r->bits, acc, r->temp, control, cap);
}

static int bench_model(const char *bitmixd, const struct model_case *mc, double settle_s,
		       double seconds)
{
	struct result cap = { 0 }, rs[3] = { 0 };
	const char *govs[3] = { "performance", "userspace", "power_allocator" };
	double rate, control;

	/* The capacity at 8 bits: back-to-back requests from both clients, no thermal limit. */
	if (run(bitmixd, mc, "performance", 90, 0, 1, 3, &cap) < 0)
		return 1;
	rate = LOAD_SHARE * cap.served;
	control = 0;
	for (int i = 0; i < 3; i++) {
		if (i == 2) /* power_allocator: the control point sustains half of 8 bits' power */
			control = AMBIENT_C + R_C_PER_W * (IDLE_W + PER_CPU_W * rs[0].busy / 2);
		if (run(bitmixd, mc, govs[i], i == 2 ? control : 90, rate, settle_s, seconds,
			&rs[i]) < 0)
			return 1;
		rs[i].label = i == 0 ? "fixed 8 bits" : i == 1 ? "fixed 2 bits" : "power_allocator";
	}
	printf("\n%s: capacity at 8 bits %.0f samples/s (%d clients, batch 1, %.2f CPUs); offered "
	       "%.0f%% of it\n",
	       mc->path, cap.served, CLIENTS, cap.busy, LOAD_SHARE * 100);
	printf("  %-22s %10s %10s %12s %10s %7s %9s %7s %8s %9s\n", "run", "offered/s", "served/s",
	       "CPU us/smp", "busy CPUs", "bits", "accuracy", "temp C", "control", "work cap");
	for (int i = 0; i < 3; i++)
		print_row(&rs[i], i == 2 ? control : NAN);
	printf("  power_allocator vs fixed 8 bits: CPU time per sample %+.0f%%, served rate %+.0f%%\n",
	       (rs[2].cpu_us / rs[0].cpu_us - 1) * 100, (rs[2].served / rs[0].served - 1) * 100);
	return 0;
}

int main(int argc, char **argv)
{
	struct model_case cases[8];
	double seconds = 10, settle = 15;
	const char *bitmixd = NULL;
	int n = 0, status = 0;
	char cpu[128] = "";
	FILE *f;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
			seconds = atof(argv[++i]);
		} else if (strcmp(argv[i], "--settle") == 0 && i + 1 < argc) {
			settle = atof(argv[++i]);
		} else if (!bitmixd) {
			bitmixd = argv[i];
		} else if (n < 8) {
			struct model_case *mc = &cases[n++];
			char *eq = strchr(argv[i], '=');

			memset(mc, 0, sizeof(*mc));
			mc->path = argv[i];
			mc->name = "m";
			if (eq) {
				*eq = 0;
				for (char *s = eq + 1; *s;) {
					unsigned b;
					double v;
					int k;

					if (sscanf(s, "%u=%lf%n", &b, &v, &k) != 2 || b < 2 ||
					    b > 8) {
						fprintf(stderr,
							"closed-loop: %s: expected BITS=ACCURACY,...\n",
							eq + 1);
						return 2;
					}
					mc->accuracy_at[b] = v;
					s += k + (s[k] == ',');
				}
			}
		}
	}
	if (!bitmixd || !n) {
		fputs("usage: closed-loop BITMIXD MODEL.bmx[=8=A,6=A,4=A,3=A,2=A] ... [--seconds S] "
		      "[--settle S]\n",
		      stderr);
		return 2;
	}
	f = fopen("/proc/cpuinfo", "r");
	while (f && fgets(cpu, sizeof(cpu), f))
		if (strncmp(cpu, "model name", 10) == 0)
			break;
	if (f)
		fclose(f);
	cpu[strcspn(cpu, "\n")] = 0;
	printf("Closed loop on the real daemon (%s; kernels: bitmixd's choice, BITMIX_KERNELS=%s)\n",
	       strchr(cpu, ':') ? strchr(cpu, ':') + 2 : "unknown CPU",
	       getenv("BITMIX_KERNELS") ? getenv("BITMIX_KERNELS") : "auto");
	printf("each run: %.0f s to settle, %.0f s measured; CPU time is bitmixd's own (every thread)\n",
	       settle, seconds);
	for (int i = 0; i < n; i++)
		status |= bench_model(bitmixd, &cases[i], settle, seconds);
	return status;
}
