/* SPDX-License-Identifier: MIT */
/*
 * bitmixctl_governor.c — bitmixctl's governor commands: `governor [NAME]`, `stats MODEL` (as
 * cpufreq_stats shows them: time in state, transitions, the transition table) and
 * `hold MODEL ...`, which keeps a QoS hold for as long as bitmixctl runs.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bitmixctl.h"

static int fail(const struct bitmix *bm, const char *what)
{
	fprintf(stderr, "bitmixctl: %s: %s\n", what, bitmix_strerror(bm));
	return 1;
}

void ctl_print_work_cap(const struct bitmix_governor_info *g)
{
	printf("    work: %.2f of %.0f CPUs busy%s", g->busy_cpus, g->capacity_cpus,
	       g->saturated ? " (saturated)" : "");
	if (g->work_cap_cpus > 0)
		printf(", capped at %.2f CPUs", g->work_cap_cpus);
	else
		printf(", no cap");
	printf(" (%.1f s capped so far)\n", (double)g->capped_ns * 1e-9);
}

int ctl_status_governor(struct bitmix *bm)
{
	struct bitmix_governor_info g;

	if (bitmix_governor(bm, NULL, &g) < 0)
		return fail(bm, "status (governor)");
	printf("  governor:  %s (%u model(s))\n", g.name, g.policies);
	if (g.fallback[0])
		printf("    %s\n", g.fallback);
	ctl_print_work_cap(&g);
	struct bitmix_model_info infos[64];
	int n = bitmix_list_models(bm, infos, 64);

	for (int i = 0; i < n && i < 64; i++) {
		struct bitmix_policy_info p;

		if (bitmix_get_policy(bm, infos[i].name, &p) < 0)
			continue;
		printf("    %s: average %.2f bits, %.0f ns/sample", infos[i].name, p.average_bits,
		       p.cost_ns);
		if (p.holds)
			printf(", %u hold(s): floor %u bits, latency ceiling %.0f ns", p.holds,
			       p.floor_bits, (double)p.max_latency_ns);
		printf(", precision %s", p.precision);
		if (p.adaptive_requests)
			printf(", adaptive %.4g BitOps/request", p.adaptive_bitops);
		printf("\n");
		struct bitmix_cost_info c;

		if (bitmix_get_cost(bm, infos[i].name, &c, NULL, 0) == 0)
			ctl_cost_status_line(&c);
	}
	return 0;
}

int ctl_governor(struct bitmix *bm, int argc, char **argv)
{
	struct bitmix_governor_info g;

	if (argc > 1) {
		fputs("usage: bitmixctl governor [NAME]\n", stderr);
		return 2;
	}
	if (argc == 1 && strcmp(argv[0], "tunables") == 0) {
		fputs("bitmixctl: governor tunables: the tunables are listed over D-Bus only "
		      "(TunableInfo; the daemon is not on a bus)\n",
		      stderr);
		return 1;
	}
	if (bitmix_governor(bm, argc ? argv[0] : NULL, &g) < 0)
		return fail(bm, "governor");
	printf("governor: %s\navailable: %s\n", g.name, g.available);
	if (g.fallback[0]) {
		printf("note: %s\n", g.fallback);
		return argc ? 1 : 0;
	}
	return 0;
}

static void print_stats_json(const char *model, const struct bitmix_policy_info *p)
{
	bool first = true;

	printf("{\"model\":");
	ctl_json_string(stdout, model);
	printf(",\"average_bits\":");
	ctl_json_number(stdout, p->average_bits);
	printf(",\"cost_ns\":");
	ctl_json_number(stdout, p->cost_ns);
	printf(",\"samples_per_second\":");
	ctl_json_number(stdout, p->rate);
	printf(",\"min_bits\":%u,\"max_bits\":%u,\"floor_bits\":%u,\"max_latency_ns\":%llu,"
	       "\"holds\":%u,\"precision\":",
	       p->min_bits, p->max_bits, p->floor_bits, (unsigned long long)p->max_latency_ns,
	       p->holds);
	ctl_json_string(stdout, p->precision);
	printf(",\"adaptive_requests\":%llu,\"adaptive_samples\":%llu,\"adaptive_escalated\":%llu,"
	       "\"adaptive_bitops_per_request\":",
	       (unsigned long long)p->adaptive_requests, (unsigned long long)p->adaptive_samples,
	       (unsigned long long)p->adaptive_escalated);
	ctl_json_number(stdout, p->adaptive_bitops);
	printf(",\"adaptive_ceiling_bitops_per_request\":");
	ctl_json_number(stdout, p->adaptive_ceiling_bitops);
	printf(",\"cost_scale\":");
	ctl_json_number(stdout, p->cost_scale);
	printf(",\"transitions\":%llu,\"decisions\":%llu,\"last_decision_ns\":%llu,\"state\":%u,"
	       "\"time_in_state_ns\":[",
	       (unsigned long long)p->transitions, (unsigned long long)p->decisions,
	       (unsigned long long)p->last_decision_ns, p->state);
	for (int s = 0; s < BITMIX_GOV_STATES; s++)
		printf("%s%llu", s ? "," : "", (unsigned long long)p->time_in_state_ns[s]);
	/* Sparse: [from, to, count] for every pair that happened. */
	printf("],\"transition_table\":[");
	for (int s = 0; s < BITMIX_GOV_STATES; s++)
		for (int t = 0; t < BITMIX_GOV_STATES; t++)
			if (p->trans_table[s][t]) {
				printf("%s[%d,%d,%u]", first ? "" : ",", s, t,
				       p->trans_table[s][t]);
				first = false;
			}
	printf("]}\n");
}

static void print_transition_table(const struct bitmix_policy_info *p)
{
	int first = BITMIX_GOV_STATES, last = -1;

	for (int s = 0; s < BITMIX_GOV_STATES; s++)
		for (int t = 0; t < BITMIX_GOV_STATES; t++)
			if (p->trans_table[s][t] || p->time_in_state_ns[s]) {
				first = s < first ? s : first;
				last = s > last ? s : last;
				if (p->trans_table[s][t]) {
					first = t < first ? t : first;
					last = t > last ? t : last;
				}
			}
	if (last < 0 || !p->transitions)
		return;
	printf("transition table (from \\ to):\n      ");
	for (int t = first; t <= last; t++)
		printf(" %5.1f", 2.0 + t / 2.0);
	printf("\n");
	for (int s = first; s <= last; s++) {
		printf(" %5.1f", 2.0 + s / 2.0);
		for (int t = first; t <= last; t++)
			printf(" %5u", p->trans_table[s][t]);
		printf("\n");
	}
}

void ctl_stats_print(const char *model, const struct bitmix_policy_info *p,
		     const struct bitmix_governor_info *g, bool json)
{
	if (json) {
		print_stats_json(model, p);
		return;
	}
	printf("model %s: average %.2f bits, %.0f ns/sample, %.1f samples/s\n", model,
	       p->average_bits, p->cost_ns, p->rate);
	printf("limits: %u..%u bits", p->min_bits, p->max_bits);
	if (p->holds)
		printf("; %u hold(s): floor %u bits, latency ceiling %s%.0f ns", p->holds,
		       p->floor_bits, p->max_latency_ns ? "" : "none ", (double)p->max_latency_ns);
	printf("\nprecision: %s; adaptive requests %llu (%llu samples, %llu escalated), "
	       "%.4g BitOps/request (%.4g at the operating point), cost scale %.3f",
	       p->precision, (unsigned long long)p->adaptive_requests,
	       (unsigned long long)p->adaptive_samples, (unsigned long long)p->adaptive_escalated,
	       p->adaptive_bitops, p->adaptive_ceiling_bitops, p->cost_scale);
	printf("\ntransitions: %llu (decisions %llu, last took %.1f us)\n",
	       (unsigned long long)p->transitions, (unsigned long long)p->decisions,
	       p->last_decision_ns / 1e3);
	if (g)
		ctl_print_work_cap(g);
	printf("time in state (average bits):\n");
	for (int s = 0; s < BITMIX_GOV_STATES; s++) {
		if (!p->time_in_state_ns[s] && s != (int)p->state)
			continue;
		printf("  %4.1f %12.3f s%s\n", 2.0 + s / 2.0, p->time_in_state_ns[s] / 1e9,
		       s == (int)p->state ? "  <- now" : "");
	}
	print_transition_table(p);
}

int ctl_stats(struct bitmix *bm, int argc, char **argv, bool json)
{
	struct bitmix_policy_info p;
	struct bitmix_governor_info g;

	if (argc != 1) {
		fputs("usage: bitmixctl stats MODEL\n", stderr);
		return 2;
	}
	if (bitmix_get_policy(bm, argv[0], &p) < 0)
		return fail(bm, "stats");
	ctl_stats_print(argv[0], &p, !json && bitmix_governor(bm, NULL, &g) == 0 ? &g : NULL, json);
	return 0;
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int ctl_hold_parse(int argc, char **argv, unsigned *kind, uint64_t *value, double *seconds)
{
	double v;
	char *end;

	*seconds = 0;
	if (argc < 3 || argc > 4)
		return -EINVAL;
	if (strcmp(argv[1], "min-bits") == 0)
		*kind = BITMIX_HOLD_MIN_BITS;
	else if (strcmp(argv[1], "max-latency-us") == 0)
		*kind = BITMIX_HOLD_MAX_LATENCY_NS;
	else
		return -EINVAL;
	v = strtod(argv[2], &end);
	if (*end || v <= 0)
		return -EINVAL;
	if (argc == 4 && ((*seconds = strtod(argv[3], &end)) <= 0 || *end))
		return -EINVAL;
	*value = (uint64_t)(*kind == BITMIX_HOLD_MIN_BITS ? v : v * 1000);
	return 0;
}

void ctl_hold_wait(uint32_t id, char **argv, double seconds)
{
	printf("hold %u on %s: %s %s; held %s\n", id, argv[0], argv[1], argv[2],
	       seconds ? "for the time given" : "until interrupted");
	fflush(stdout);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	for (double left = seconds; !stop && (!seconds || left > 0); left -= 0.05)
		usleep(50000);
}

/* hold MODEL min-bits N | max-latency-us N [SECONDS]: hold until the time is up or a signal. */
int ctl_hold(struct bitmix *bm, int argc, char **argv)
{
	unsigned kind;
	uint64_t value;
	double seconds;
	uint32_t id;

	if (ctl_hold_parse(argc, argv, &kind, &value, &seconds) < 0) {
		fputs("usage: bitmixctl hold MODEL min-bits N|max-latency-us N [SECONDS]\n",
		      stderr);
		return 2;
	}
	if (bitmix_hold(bm, argv[0], kind, value, &id) < 0)
		return fail(bm, "hold");
	ctl_hold_wait(id, argv, seconds);
	if (bitmix_release(bm, argv[0], id) < 0)
		return fail(bm, "release");
	printf("released hold %u\n", id);
	return 0;
}
