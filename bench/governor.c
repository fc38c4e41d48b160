/* SPDX-License-Identifier: MIT */
/*
 * governor.c — the closed-loop governor benchmark on the simulator, and the governor's own costs.
 *
 * A simulated machine (the RC model of sensors/, with the bundled configuration's parameters)
 * serves one model. Idle for the first 60 s, then a saturating step: clients ask for 1.5x the
 * samples per second two CPUs serve at 8 bits; from 330 s an unsaturated load of 0.8x of it, so
 * that the CPUs can idle. Each 100 ms period the served work (within the governor's work cap)
 * heats the package, the governor reads the temperature and the daemon's busy CPUs and
 * publishes bits and the cap, and they set the next period's work. The same trace runs under power_allocator, step_wise, fixed 8 bits
 * (performance) and fixed 2 bits (userspace), and step_wise once more with its trips moved to
 * the control temperature (control - 5 and control) for a comparison at equal peak temperature; the table shows temperature, average bits and
 * expected accuracy (interpolated in the model's accuracy table by average bits) over time.
 * Engine time per sample is the engine's measured cost table (--cost measured, the default), or,
 * as a labelled what-if, BitOps-proportional (--cost bitops: 2 bits 1/16 of 8 bits, which no
 * kernel path delivers). Then: the allocator's time per decision on a 50-layer model
 * and the core's time from a reading to published bits.
 *
 * Usage: governor [--config YAML] [--model BMX] [--cost bitops|measured]
 *                 [--accuracy 8=A,6=A,4=A,3=A,2=A] [--json]
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bmx_util.h"
#include "bmx_engine.h"
#include "bmx_model.h"
#include "config.h"
#include "cost_table.h"
#include "governor.h"
#include "sensor_simulator.h"

#define PERIOD_NS 100000000ull
#define DURATION_S 600
#define STEP_AT_S 60
#define UNSATURATED_AT_S 330
#define CPUS 2.0

struct run {
	const char *governor;
	unsigned fixed_bits; /* userspace at these bits (each layer the nearest it allows), or 0 */
	const char *label;   /* the table's name for it */
	bool trips_at_control; /* step_wise with its trips moved to control - 5 and control */
	double temp[DURATION_S * 10], bits[DURATION_S * 10], acc[DURATION_S * 10],
		rate[DURATION_S * 10];
	double cap[DURATION_S * 10], busy[DURATION_S * 10];
};

static double accuracy_at[9]; /* by uniform bits; interpolated in between */

static double expected_accuracy(double avg_bits)
{
	int lo = (int)floor(avg_bits), hi;

	while (lo > 2 && accuracy_at[lo] == 0)
		lo--;
	hi = lo + 1;
	while (hi < 8 && accuracy_at[hi] == 0)
		hi++;
	if (lo >= 8 || hi > 8 || accuracy_at[hi] == 0)
		return accuracy_at[8];
	return accuracy_at[lo] + (accuracy_at[hi] - accuracy_at[lo]) * (avg_bits - lo) / (hi - lo);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct model_tables {
	uint32_t n;
	const char **names;
	uint16_t *masks;
	uint64_t *macs;
	const float **sens;
	struct bmx_layer_bits *initial;
	double uniform_ns[9];
	struct gov_layer_cost *layer_costs; /* --cost measured: the per-layer cost table */
};

/*
 * The per-layer cost table as bitmixd measures it (cost_table.h), at batch 1 (the simulated
 * clients' cost per sample), complete: into T's layer costs and its uniform 8-bit cost.
 */
static int measure_costs(const struct bmx_model *m, struct model_tables *t)
{
	struct cost_table table;
	struct bmx_engine *e;
	int r;

	if (bmx_engine_new(m, &e) < 0 || cost_table_init(&table, m, 1) < 0)
		return -ENOMEM;
	r = cost_measure(&table, e, 0, 9, 0, NULL);
	bmx_engine_free(e);
	t->layer_costs = calloc(t->n, sizeof(*t->layer_costs));
	if (r < 0 || !t->layer_costs) {
		cost_table_free(&table);
		return r < 0 ? r : -ENOMEM;
	}
	for (uint32_t l = 0; l < t->n; l++)
		for (int bi = 0; bi < 2; bi++) { /* one batch measured: the same row for both */
			memcpy(t->layer_costs[l].ns[bi], table.layers[l].ns[0], sizeof(double) * 9);
			memcpy(t->layer_costs[l].rel_error[bi], table.layers[l].rel_error[0],
			       sizeof(double) * 9);
		}
	for (unsigned b = 2; b <= 8; b++)
		t->uniform_ns[b] = cost_table_uniform_ns(&table, 0, b);
	cost_table_free(&table);
	return 0;
}

static int load_model(const char *path, const char *cost, struct model_tables *t,
		      struct bmx_model **out_model)
{
	struct bmx_error err;
	struct bmx_model *m;
	int r = bmx_model_load_file(path, &m, &err);

	if (r < 0) {
		fprintf(stderr, "governor: %s: %s\n", path, err.msg);
		return r;
	}
	t->n = m->layer_count;
	t->names = calloc(t->n, sizeof(*t->names));
	t->masks = calloc(t->n, sizeof(*t->masks));
	t->macs = calloc(t->n, sizeof(*t->macs));
	t->sens = calloc(t->n, sizeof(*t->sens));
	t->initial = calloc(t->n, sizeof(*t->initial));
	for (uint32_t l = 0; l < t->n; l++) {
		t->names[l] = m->layers[l].name;
		t->masks[l] = m->layers[l].bits_mask;
		t->macs[l] = m->layers[l].macs;
		t->sens[l] = m->views[l].sensitivity;
		t->initial[l] = (struct bmx_layer_bits){ 8, 8 };
		if (!(t->masks[l] & 0x100))
			t->initial[l].w_bits = t->initial[l].a_bits =
				(uint8_t)(31 - __builtin_clz(t->masks[l]));
	}
	memset(t->uniform_ns, 0, sizeof(t->uniform_ns));
	/* BitOps-proportional: 8 bits at 100 us per sample, b bits at (b/8)^2 of it. */
	t->uniform_ns[8] = 100000;
	t->layer_costs = NULL;
	if (strcmp(cost, "measured") == 0 && measure_costs(m, t) < 0)
		return -ENOMEM;
	*out_model = m;
	return 0;
}

static void publish(void *userdata, const struct bmx_layer_bits *bits)
{
	(void)userdata;
	(void)bits;
}

/* A core running GOVERNOR over one policy for the model of T, limits 2..8. */
static struct gov_core *governed(const struct bmx_config *cfg, const struct model_tables *t,
				 const char *governor, bool trips_at_control, struct gov_policy **p)
{
	struct bmx_governor_config gc = cfg->governor;

	if (trips_at_control) {
		double c = gc.power_allocator.control_temp_c;

		gc.step_wise.trips[0] =
			(struct bmx_config_trip){ .temp_c = c - 5, .hysteresis_c = 2 };
		gc.step_wise.trips[1] = (struct bmx_config_trip){ .temp_c = c, .hysteresis_c = 2 };
		gc.step_wise.n_trips = 2;
	}
	struct gov_model_desc d = { .name = "m",
				    .layer_count = t->n,
				    .layer_names = t->names,
				    .bits_mask = t->masks,
				    .macs = t->macs,
				    .sensitivity = t->sens,
				    .uniform_ns = t->uniform_ns,
				    .initial = t->initial,
				    .layer_costs = t->layer_costs,
				    .large_batch = 1 };
	struct bmx_governor_policy_config lim = { .min_bits = 2, .max_bits = 8 };
	struct gov_core *core;
	char why[256];

	snprintf(gc.name, sizeof(gc.name), "%s", governor);
	if (gov_core_new(&gc, &core) < 0 ||
	    gov_core_add_policy(core, &d, &lim, publish, NULL, PERIOD_NS, p, why, sizeof(why)) <
		    0) {
		fprintf(stderr, "governor: %s\n", why);
		exit(1);
	}
	gov_core_set_governor(core, governor, PERIOD_NS, why, sizeof(why));
	return core;
}

/* One governor over the whole trace. */
static void simulate(const struct bmx_config *cfg, const struct model_tables *t, struct run *run)
{
	struct thermal_sim sim;
	struct gov_policy *p;
	struct gov_core *core = governed(cfg, t, run->governor, run->trips_at_control, &p);
	uint64_t now = PERIOD_NS, served = 0, work = 0, throttled = 0;
	double demand, max_rate;
	char why[256];

	gov_core_set_capacity(core, CPUS);
	thermal_sim_init(&sim, &cfg->sensors.simulator, now);
	struct sensor_reading r = { .time_ns = now,
				    .have = SENSOR_HAVE_TEMP | SENSOR_HAVE_LOAD,
				    .temp_mc = (int32_t)lround(sim.temp_c * 1000) };
	gov_core_update(core, &r);
	gov_core_set_governor(core, run->governor, now, why, sizeof(why));
	if (run->fixed_bits) {
		struct bmx_layer_bits fixed[t->n];

		for (uint32_t l = 0; l < t->n; l++)
			fixed[l] = (struct bmx_layer_bits){ (uint8_t)run->fixed_bits,
							    (uint8_t)run->fixed_bits };
		gov_policy_set_user_bits(p, fixed);
	}
	/* The saturating step asks for 1.5x what two CPUs serve at 8 bits, the later one 0.8x. */
	max_rate = CPUS * 1e9 / t->uniform_ns[8];
	for (int i = 0; i < DURATION_S * 10; i++) {
		double cost = gov_policy_cost(p), rate, busy, cap = gov_core_work_cap(core);

		demand = i >= UNSATURATED_AT_S * 10 ? 0.8 * max_rate
			 : i >= STEP_AT_S * 10	    ? 1.5 * max_rate
						    : 0;
		rate = fmin(demand, (cap > 0 ? fmin(cap, CPUS) : CPUS) * 1e9 / cost);
		busy = rate * cost * 1e-9;
		served += (uint64_t)(rate * PERIOD_NS * 1e-9);
		work += (uint64_t)(busy * PERIOD_NS);
		thermal_sim_add_work(&sim, (uint64_t)(busy * PERIOD_NS));
		now += PERIOD_NS;
		thermal_sim_advance(&sim, now);
		gov_policy_observe(p, served, now);
		/* No other process takes the CPUs; a worker waits all along when the cap binds. */
		if (cap > 0 && demand * cost * 1e-9 > fmin(cap, CPUS))
			throttled += PERIOD_NS;
		gov_core_observe_work(core, work, work, throttled, now);
		r = (struct sensor_reading){ .time_ns = now,
					     .have = SENSOR_HAVE_TEMP | SENSOR_HAVE_LOAD,
					     .temp_mc = (int32_t)lround(sim.temp_c * 1000),
					     .load_permille =
						     (uint32_t)lround(busy / CPUS * 1000) };
		gov_core_update(core, &r);
		run->temp[i] = sim.temp_c;
		run->bits[i] = gov_policy_average_bits(p);
		run->acc[i] = expected_accuracy(run->bits[i]);
		run->rate[i] = rate;
		run->cap[i] = gov_core_work_cap(core);
		run->busy[i] = busy;
	}
	gov_core_free(core);
}

struct summary {
	double peak, over_after_settling, mean_acc, mean_rate, mean_busy, mean_cap;
};

/*
 * One load phase [FROM_S, TO_S): the peak temperature, the largest excess over the control
 * temperature once settled (from 30 s after the phase starts or the first crossing, whichever is
 * later), and the means of expected accuracy, served rate, busy CPUs and the work cap (none
 * counts as every CPU).
 */
static struct summary summarize(const struct run *run, double control, int from_s, int to_s)
{
	struct summary s = { .over_after_settling = -INFINITY };
	int n = 0, first = -1;

	for (int i = from_s * 10; i < to_s * 10; i++) {
		s.peak = fmax(s.peak, run->temp[i]);
		if (first < 0 && run->temp[i] >= control)
			first = i;
		s.mean_acc += run->acc[i];
		s.mean_rate += run->rate[i];
		s.mean_busy += run->busy[i];
		s.mean_cap += run->cap[i] > 0 ? run->cap[i] : CPUS;
		n++;
	}
	first = first < from_s * 10 + 300 ? from_s * 10 + 300 : first;
	for (int i = first; i < to_s * 10; i++)
		s.over_after_settling = fmax(s.over_after_settling, run->temp[i] - control);
	s.mean_acc /= n;
	s.mean_rate /= n;
	s.mean_busy /= n;
	s.mean_cap /= n;
	return s;
}

static void print_phase(const struct run *runs, int n_runs, double control, const char *what,
			int from_s, int to_s)
{
	printf("\n%d-%d s, %s\n%-18s %8s %16s %10s %12s %10s %10s %12s\n", from_s, to_s, what,
	       "governor", "peak C", "settled over C", "accuracy", "samples/s", "busy CPUs",
	       "work cap", "us CPU/smp");
	for (int i = 0; i < n_runs; i++) {
		struct summary s = summarize(&runs[i], control, from_s, to_s);
		char over[32];

		if (isinf(s.over_after_settling))
			snprintf(over, sizeof(over), "never reached");
		else
			snprintf(over, sizeof(over), "%+.2f", s.over_after_settling);
		printf("%-18s %8.2f %16s %10.2f %12.0f %10.2f %10.2f %12.2f\n", runs[i].label,
		       s.peak, over, s.mean_acc, s.mean_rate, s.mean_busy, s.mean_cap,
		       s.mean_rate > 0 ? s.mean_busy / s.mean_rate * 1e6 : 0);
	}
}

static int cmp(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

/* The allocator on a random 50-layer model, and the core's reading-to-publication time. */
static void costs(const struct model_tables *t, const struct bmx_config *cfg, bool json)
{
	struct alloc_layer layers[50];
	struct bit_allocator *a;
	struct alloc_result res;
	double lo, hi, times[2][2000];
	uint64_t seed = 42;

	for (int l = 0; l < 50; l++) {
		layers[l].allowed = 0x1fc;
		for (int b = 2; b <= 8; b++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			layers[l].cost[b] = (1 + (seed >> 40) % 100) * b * b;
			layers[l].sensitivity[b] = (1 + (seed >> 20) % 1000) * ldexp(1, -2 * b);
		}
	}
	bit_allocator_cost_range(layers, 50, &lo, &hi);
	bit_allocator_new(50, 512, &a);
	for (int m = 0; m < 2; m++)
		for (int i = 0; i < 2000; i++) {
			uint64_t t0 = mono_ns();
			bit_allocator_solve(a, layers, lo + (hi - lo) * (i % 97) / 97.0,
					    m ? ALLOC_EXACT : ALLOC_GREEDY, &res);
			times[m][i] = (double)(mono_ns() - t0);
		}
	bit_allocator_free(a);

	/* Reading to publication: gov_core_update under power_allocator, hot, on the real model. */
	struct gov_policy *p;
	struct gov_core *core = governed(cfg, t, "power_allocator", false, &p);
	static double upd[2000];
	for (int i = 0; i < 2000; i++) {
		struct sensor_reading r = { .time_ns = (uint64_t)(i + 2) * PERIOD_NS,
					    .have = SENSOR_HAVE_TEMP | SENSOR_HAVE_LOAD,
					    .temp_mc = 70000 + (i % 50) * 300 };
		gov_policy_observe(p, (uint64_t)i * 1000, r.time_ns);
		uint64_t t0 = mono_ns();
		gov_core_update(core, &r);
		upd[i] = (double)(mono_ns() - t0);
	}
	gov_core_free(core);

	qsort(times[0], 2000, sizeof(double), cmp);
	qsort(times[1], 2000, sizeof(double), cmp);
	qsort(upd, 2000, sizeof(double), cmp);
	if (json) {
		printf("{\"case\":\"allocator_50_layers\",\"greedy_p50_us\":%.2f,\"greedy_p99_us\":%.2f,"
		       "\"exact_p50_us\":%.2f,\"exact_p99_us\":%.2f}\n",
		       times[0][1000] / 1e3, times[0][1980] / 1e3, times[1][1000] / 1e3,
		       times[1][1980] / 1e3);
		printf("{\"case\":\"reading_to_bits\",\"p50_us\":%.2f,\"p99_us\":%.2f,\"max_us\":%.2f}\n",
		       upd[1000] / 1e3, upd[1980] / 1e3, upd[1999] / 1e3);
		return;
	}
	printf("\nGovernor costs (2000 decisions each)\n");
	printf("%-44s %10s %10s\n", "", "p50 us", "p99 us");
	printf("%-44s %10.2f %10.2f\n", "allocator, 50 layers, greedy", times[0][1000] / 1e3,
	       times[0][1980] / 1e3);
	printf("%-44s %10.2f %10.2f\n", "allocator, 50 layers, exact DP (512 units)",
	       times[1][1000] / 1e3, times[1][1980] / 1e3);
	printf("%-44s %10.2f %10.2f\n", "reading -> published bits (power_allocator)",
	       upd[1000] / 1e3, upd[1980] / 1e3);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "model", required_argument, NULL, 'm' },
		{ "cost", required_argument, NULL, 'k' },
		{ "accuracy", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	const char *config = "config/bitmixd.yaml", *model = "models/fmnist-resnet.bmx";
	const char *cost = "measured", *acc = "8=100,2=100";
	static struct run runs[] = {
		{ .governor = "power_allocator", .label = "power_allocator" },
		{ .governor = "step_wise", .label = "step_wise" },
		{ .governor = "step_wise", .label = "step_wise@control", .trips_at_control = true },
		{ .governor = "performance", .label = "fixed 8 bits" },
		{ .governor = "userspace", .label = "fixed 2 bits", .fixed_bits = 2 },
	};
	const int n_runs = sizeof(runs) / sizeof(runs[0]);
	struct bmx_config_error err;
	struct bmx_config *cfg;
	struct model_tables t;
	struct bmx_model *m;
	bool json = false;
	int c;

	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'm':
			model = optarg;
			break;
		case 'k':
			cost = optarg;
			break;
		case 'a':
			acc = optarg;
			break;
		case 'j':
			json = true;
			break;
		default:
			return 2;
		}
	}
	for (const char *s = acc; *s;) {
		unsigned b;
		double v;
		int n;

		if (sscanf(s, "%u=%lf%n", &b, &v, &n) != 2 || b < 2 || b > 8) {
			fprintf(stderr, "governor: --accuracy wants BITS=PERCENT,...\n");
			return 2;
		}
		accuracy_at[b] = v;
		s += n + (s[n] == ',');
	}
	if (bmx_config_load(config, &cfg, &err) < 0) {
		fprintf(stderr, "governor: %s\n", err.msg);
		return 1;
	}
	if (load_model(model, cost, &t, &m) < 0)
		return 1;
	for (int i = 0; i < n_runs; i++)
		simulate(cfg, &t, &runs[i]);

	double control = cfg->governor.power_allocator.control_temp_c;
	if (json) {
		for (int i = 0; i < n_runs; i++)
			for (int k = 0; k < DURATION_S * 10; k += 5)
				printf("{\"governor\":\"%s\",\"t_s\":%.1f,\"temp_c\":%.3f,\"avg_bits\":%.3f,"
				       "\"expected_accuracy\":%.3f,\"rate\":%.1f,\"busy_cpus\":%.3f,"
				       "\"work_cap\":%.3f}\n",
				       runs[i].label, (k + 1) / 10.0, runs[i].temp[k],
				       runs[i].bits[k], runs[i].acc[k], runs[i].rate[k],
				       runs[i].busy[k], runs[i].cap[k]);
	} else {
		printf("Closed loop on the simulator (%s, cost %s%s): idle, then at %d s a load of "
		       "1.5x what 2 CPUs serve at 8 bits, at %d s 0.8x\ncontrol temperature %.1f C; each "
		       "cell: temperature C / average bits / expected accuracy %%\n\n%6s",
		       model, cost,
		       strcmp(cost, "bitops") == 0 ? ", a what-if: no kernel path costs "
						     "BitOps"
						   : "",
		       STEP_AT_S, UNSATURATED_AT_S, control, "t s");
		for (int i = 0; i < n_runs; i++)
			printf(" %24s", runs[i].label);
		printf("\n");
		for (int k = 0; k < DURATION_S * 10; k += k < STEP_AT_S * 10 + 200 ? 100 : 500) {
			printf("%6.0f", (k + 1) / 10.0);
			for (int i = 0; i < n_runs; i++)
				printf("    %5.1f / %4.2f / %6.2f", runs[i].temp[k],
				       runs[i].bits[k], runs[i].acc[k]);
			printf("\n");
		}
		print_phase(runs, n_runs, control, "saturating: 1.5x what 2 CPUs serve at 8 bits",
			    STEP_AT_S, UNSATURATED_AT_S);
		print_phase(runs, n_runs, control, "unsaturated: 0.8x what 2 CPUs serve at 8 bits",
			    UNSATURATED_AT_S, DURATION_S);
	}
	costs(&t, cfg, json);
	bmx_model_free(m);
	bmx_config_free(cfg);
	return 0;
}
