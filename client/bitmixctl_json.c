/* SPDX-License-Identifier: MIT */
/*
 * bitmixctl_json.c — bitmixctl --json: the writer both planes use, and status, governor, bits
 * and stats as JSON over the socket, for a bitmixd that is not on a bus. The keys are the ones
 * the D-Bus path prints (bitmixctl_dbus_verbs.c), so a script reads either the same way; what
 * only D-Bus knows (object paths, the bus, per-layer names, holds' owners) is absent or null.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "bitmixctl.h"

void ctl_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

void ctl_json_number(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, "%.17g", v);
	else
		fputs("null", f);
}

void ctl_json_status_head(const struct ctl_json_status *st)
{
	printf("{\"version\":");
	ctl_json_string(stdout, st->version);
	printf(",\"bus\":");
	if (st->bus)
		ctl_json_string(stdout, st->bus);
	else
		printf("null");
	printf(",\"governor\":");
	ctl_json_string(stdout, st->governor);
	printf(",\"governor_fallback\":");
	ctl_json_string(stdout, st->fallback);
	printf(",\"work_cap_cpus\":");
	ctl_json_number(stdout, st->cap->work_cap_cpus);
	printf(",\"busy_cpus\":");
	ctl_json_number(stdout, st->cap->busy_cpus);
	printf(",\"saturated\":%s,\"capped_s\":%.3f", st->cap->saturated ? "true" : "false",
	       (double)st->cap->capped_ns * 1e-9);
	printf(",\"sensor_source\":");
	ctl_json_string(stdout, st->source);
	printf(",\"temperature_c\":");
	ctl_json_number(stdout, st->temp_c);
	printf(",\"power_w\":");
	ctl_json_number(stdout, st->power_w);
	printf(",\"uptime_s\":%.3f,\"clients\":%u,\"workers\":%u,\"requests_completed\":%llu,"
	       "\"requests_failed\":%llu,\"doorbell\":",
	       st->uptime_s, st->clients, st->workers, st->completed, st->failed);
	ctl_json_string(stdout, st->doorbell);
	printf(",\"kernels\":");
	ctl_json_string(stdout, st->kernels);
}

void ctl_json_layer_bits(const struct bitmix_layer_bits *bits, uint16_t mask)
{
	printf("\"w_bits\":%u,\"a_bits\":%u,\"allowed\":[", bits->w_bits, bits->a_bits);
	for (int b = 2, first = 1; b <= 8; b++)
		if (mask & (1u << b)) {
			printf("%s%d", first ? "" : ",", b);
			first = 0;
		}
	printf("]");
}

static int failed(const struct bitmix *bm, const char *what)
{
	fprintf(stderr, "bitmixctl: %s: %s\n", what, bitmix_strerror(bm));
	return 1;
}

static void print_available(const char *list)
{
	char copy[sizeof(((struct bitmix_governor_info *)0)->available)], *save = NULL;
	int i = 0;

	snprintf(copy, sizeof(copy), "%s", list);
	printf("[");
	for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save), i++) {
		printf("%s", i ? "," : "");
		ctl_json_string(stdout, t);
	}
	printf("]");
}

static int json_status(struct bitmix *bm)
{
	struct bitmix_model_info infos[64];
	struct bitmix_governor_info g;
	struct bitmix_sensors se;
	struct bitmix_status st;
	int n;

	if (bitmix_get_status(bm, &st) < 0 || bitmix_governor(bm, NULL, &g) < 0 ||
	    bitmix_get_sensors(bm, &se) < 0 || (n = bitmix_list_models(bm, infos, 64)) < 0)
		return failed(bm, "status");
	ctl_json_status_head(
		&(struct ctl_json_status){ .version = st.version,
					   .governor = g.name,
					   .fallback = g.fallback,
					   .source = se.source,
					   .doorbell = st.doorbell,
					   .kernels = st.kernels,
					   .temp_c = se.have & 1 ? se.temp_c : NAN,
					   .power_w = se.have & 2 ? se.power_w : NAN,
					   .uptime_s = (double)st.uptime_ns / 1e9,
					   .clients = st.clients,
					   .workers = st.workers,
					   .completed = (unsigned long long)st.requests_completed,
					   .failed = (unsigned long long)st.requests_failed,
					   .cap = &g });
	printf(",\"models\":[");
	for (int i = 0; i < n && i < 64; i++) {
		struct bitmix_policy_info p;
		struct bitmix_cost_info c;
		bool governed = bitmix_get_policy(bm, infos[i].name, &p) == 0;
		bool costed = bitmix_get_cost(bm, infos[i].name, &c, NULL, 0) == 0;

		printf("%s{\"name\":", i ? "," : "");
		ctl_json_string(stdout, infos[i].name);
		printf(",\"average_bits\":");
		ctl_json_number(stdout, governed ? p.average_bits : NAN);
		printf(",\"cost_ns\":");
		ctl_json_number(stdout, governed ? p.cost_ns : NAN);
		printf(",\"samples_per_second\":");
		ctl_json_number(stdout, governed ? p.rate : NAN);
		printf(",\"holds\":%u,\"cost_table_complete\":%s}", governed ? p.holds : 0,
		       costed && c.complete ? "true" : "false");
	}
	printf("]}\n");
	return 0;
}

static int json_governor(struct bitmix *bm, int argc, char **argv)
{
	struct bitmix_governor_info g;

	if (argc > 1) {
		fputs("usage: bitmixctl governor [NAME] (tunables need D-Bus)\n", stderr);
		return 2;
	}
	if (bitmix_governor(bm, argc ? argv[0] : NULL, &g) < 0)
		return failed(bm, "governor");
	printf("{\"governor\":");
	ctl_json_string(stdout, g.name);
	printf(",\"fallback\":");
	ctl_json_string(stdout, g.fallback);
	printf(",\"available\":");
	print_available(g.available);
	printf("}\n");
	return argc && g.fallback[0] ? 1 : 0;
}

static int json_bits(struct bitmix *bm, int argc, char **argv)
{
	struct bitmix_layer_bits bits[1024];
	uint16_t masks[1024];
	struct bitmix_model *m;
	uint64_t generation;
	uint32_t n;

	if (argc != 1 && argc != 2) {
		fputs("usage: bitmixctl --json bits MODEL [SPEC]\n", stderr);
		return 2;
	}
	if (bitmix_open_model(bm, argv[0], &m) < 0)
		return failed(bm, argv[0]);
	bitmix_get_bits(m, bits, &generation);
	n = bitmix_model_get_info(m)->layer_count;
	if (argc == 2) { /* set: the generation that carries them, as over D-Bus */
		for (uint32_t l = 0; l < n && l < 1024; l++)
			masks[l] = bitmix_model_layer_bits_mask(m, l);
		if (ctl_apply_spec(masks, n, argv[1], bits))
			return 1;
		if (bitmix_set_bits(m, bits, &generation) < 0)
			return failed(bm, "setting bits");
		printf("{\"model\":");
		ctl_json_string(stdout, argv[0]);
		printf(",\"generation\":%llu}\n", (unsigned long long)generation);
		return 0;
	}
	return ctl_bits_show(bm, m, argv[0], true);
}

int ctl_socket_json(struct bitmix *bm, const char *verb, int argc, char **argv)
{
	if (strcmp(verb, "status") == 0 && argc == 0)
		return json_status(bm);
	if (strcmp(verb, "governor") == 0)
		return json_governor(bm, argc, argv);
	if (strcmp(verb, "bits") == 0)
		return json_bits(bm, argc, argv);
	fprintf(stderr, "bitmixctl: --json is for status, governor, bits, holds, limits, stats and "
			"cost\n");
	return 2;
}
