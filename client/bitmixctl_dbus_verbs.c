/* SPDX-License-Identifier: MIT */
/*
 * bitmixctl_dbus_verbs.c — bitmixctl's admin verbs over D-Bus: status, governor, bits, holds,
 * reload, stats, cost (bitmixctl_dbus_cost.c) and watch, each with --json (one JSON object on stdout) except watch. The
 * daemon checks who may change what; bitmixctl prints the daemon's error message as it is.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "bitmixctl_dbus.h"

/* Print a failed call's message; returns the exit status 1. */
/* Free a NULL-terminated array of strings, as sd_bus_message_read_strv() gives (or NULL). */
static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static int call_failed(const char *what, const sd_bus_error *error, int r)
{
	fprintf(stderr, "bitmixctl: %s: %s\n", what,
		error && error->message ? error->message : strerror(-r));
	return 1;
}

static void print_bits(FILE *f, const struct bitmix_layer_bits *bits, int n, bool json)
{
	for (int l = 0; l < n; l++) {
		if (json)
			fprintf(f, "%s[%u,%u]", l ? "," : "", bits[l].w_bits, bits[l].a_bits);
		else if (bits[l].w_bits == bits[l].a_bits)
			fprintf(f, "%s%u", l ? "," : "", bits[l].w_bits);
		else
			fprintf(f, "%sw%ua%u", l ? "," : "", bits[l].w_bits, bits[l].a_bits);
	}
}

static int count_holds(sd_bus *bus, const char *path)
{
	sd_bus_message *reply = NULL;
	int n = -1;

	if (sd_bus_get_property(bus, CTL_NAME, path, CTL_MODEL_IFACE, "Holds", NULL, &reply,
				"a(usts)") >= 0 &&
	    sd_bus_message_enter_container(reply, 'a', "(usts)") >= 0)
		for (n = 0; sd_bus_message_skip(reply, "(usts)") > 0;)
			n++;
	sd_bus_message_unref(reply);
	return n;
}

static int status_model(sd_bus *bus, const char *name, const char *path, bool json, bool first)
{
	struct bitmix_layer_bits bits[CTL_MAX_LAYERS];
	struct ctl_stats st;
	struct bitmix_cost_info cost;
	uint64_t generation = 0;
	int n = ctl_get_bits(bus, path, bits, &generation), holds = count_holds(bus, path);

	if (n < 0 || ctl_get_stats(bus, path, &st) < 0 ||
	    ctl_get_cost(bus, path, &cost, NULL, 0) < 0)
		return 1;
	if (!json) {
		printf("    %s: generation %llu, average %.2f bits, %.0f ns/sample, %.1f samples/s, "
		       "%d hold(s)\n      bits ",
		       name, (unsigned long long)generation, st.average_bits, st.cost_ns,
		       st.samples_per_second, holds);
		print_bits(stdout, bits, n, false);
		printf("\n");
		if (st.adaptive_requests)
			printf("      precision %s: %llu adaptive request(s), %.4g BitOps/request\n",
			       st.precision, (unsigned long long)st.adaptive_requests,
			       st.adaptive_bitops);
		ctl_cost_status_line(&cost);
		return 0;
	}
	printf("%s{\"name\":", first ? "" : ",");
	ctl_json_string(stdout, name);
	printf(",\"object\":");
	ctl_json_string(stdout, path);
	printf(",\"generation\":%llu,\"average_bits\":", (unsigned long long)generation);
	ctl_json_number(stdout, st.average_bits);
	printf(",\"cost_ns\":");
	ctl_json_number(stdout, st.cost_ns);
	printf(",\"samples_per_second\":");
	ctl_json_number(stdout, st.samples_per_second);
	printf(",\"precision\":");
	ctl_json_string(stdout, st.precision);
	printf(",\"adaptive_requests\":%llu,\"adaptive_bitops_per_request\":",
	       (unsigned long long)st.adaptive_requests);
	ctl_json_number(stdout, st.adaptive_bitops);
	printf(",\"samples_completed\":%llu,\"holds\":%d,\"cost_table_complete\":%s,\"bits\":[",
	       (unsigned long long)st.samples_completed, holds, cost.complete ? "true" : "false");
	print_bits(stdout, bits, n, true);
	printf("]}");
	return 0;
}

/* The daemon's counters: uptime, clients, workers, requests, doorbell, kernels. */
struct daemon_counters {
	uint64_t uptime_usec, completed, failed;
	uint32_t clients, workers;
	char *doorbell, *kernels;
};

static int get_counters(sd_bus *bus, struct daemon_counters *c)
{
	static const struct {
		const char *prop;
		char type;
		size_t off;
	} fields[] = {
		{ "UptimeUSec", 't', offsetof(struct daemon_counters, uptime_usec) },
		{ "RequestsCompleted", 't', offsetof(struct daemon_counters, completed) },
		{ "RequestsFailed", 't', offsetof(struct daemon_counters, failed) },
		{ "Clients", 'u', offsetof(struct daemon_counters, clients) },
		{ "Workers", 'u', offsetof(struct daemon_counters, workers) },
	};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (sd_bus_get_property_trivial(bus, CTL_NAME, CTL_PATH, CTL_IFACE, fields[i].prop,
						NULL, fields[i].type,
						(char *)c + fields[i].off) < 0)
			return -EIO;
	if (ctl_get_string(bus, CTL_PATH, CTL_IFACE, "Doorbell", &c->doorbell) < 0 ||
	    ctl_get_string(bus, CTL_PATH, CTL_IFACE, "Kernels", &c->kernels) < 0)
		return -EIO;
	return 0;
}

static void print_counters(const struct daemon_counters *c)
{
	printf("  up:        %.1f s\n  clients:   %u\n  workers:   %u\n",
	       (double)c->uptime_usec / 1e6, c->clients, c->workers);
	printf("  requests:  %llu completed, %llu failed\n", (unsigned long long)c->completed,
	       (unsigned long long)c->failed);
	printf("  doorbell:  %s\n  kernels:   %s\n", c->doorbell, c->kernels);
}

static int ctl_status(sd_bus *bus, const char *address, bool json)
{
	char *version = NULL, *gov = NULL, *fallback = NULL, *source = NULL;
	char *names[CTL_MAX_MODELS], *paths[CTL_MAX_MODELS];
	struct daemon_counters counters = { 0 };
	struct bitmix_governor_info cap = { 0 };
	double temp = NAN, power = NAN;
	int n, r = 1;

	if (ctl_get_string(bus, CTL_PATH, CTL_IFACE, "Version", &version) < 0 ||
	    ctl_get_string(bus, CTL_PATH, CTL_IFACE, "Governor", &gov) < 0 ||
	    ctl_get_string(bus, CTL_PATH, CTL_IFACE, "GovernorFallback", &fallback) < 0 ||
	    ctl_get_string(bus, CTL_PATH, CTL_IFACE, "SensorSource", &source) < 0 ||
	    ctl_get_double(bus, CTL_PATH, CTL_IFACE, "Temperature", &temp) < 0 ||
	    ctl_get_double(bus, CTL_PATH, CTL_IFACE, "Power", &power) < 0 ||
	    ctl_get_work_cap(bus, &cap) < 0 || get_counters(bus, &counters) < 0 ||
	    (n = ctl_list_models(bus, names, paths, CTL_MAX_MODELS)) < 0)
		goto out;
	if (json) {
		ctl_json_status_head(&(struct ctl_json_status){
			.version = version,
			.bus = ctl_bus_name(address),
			.governor = gov,
			.fallback = fallback,
			.source = source,
			.doorbell = counters.doorbell,
			.kernels = counters.kernels,
			.temp_c = temp,
			.power_w = power,
			.uptime_s = (double)counters.uptime_usec / 1e6,
			.clients = counters.clients,
			.workers = counters.workers,
			.completed = (unsigned long long)counters.completed,
			.failed = (unsigned long long)counters.failed,
			.cap = &cap });
		printf(",\"models\":[");
	} else {
		printf("bitmixd %s on D-Bus (%s)\n", version, ctl_bus_name(address));
		print_counters(&counters);
		printf("  governor:  %s\n", gov);
		if (*fallback)
			printf("    %s\n", fallback);
		ctl_print_work_cap(&cap);
		printf("  sensors:   %s:", source);
		if (isfinite(temp))
			printf(" %.1f C", temp);
		if (isfinite(power))
			printf(" %.2f W", power);
		printf("\n  models:    %d\n", n);
	}
	r = 0;
	for (int i = 0; i < n && r == 0; i++)
		r = status_model(bus, names[i], paths[i], json, i == 0);
	if (json)
		printf("]}\n");
	ctl_free_models(names, paths, n);
out:
	free(counters.doorbell);
	free(counters.kernels);
	free(version);
	free(gov);
	free(fallback);
	free(source);
	return r;
}

/* governor NAME KEY=VALUE...: SetGovernorWithTunables, each value as one YAML value. */
static int set_governor(sd_bus *bus, int argc, char **argv, sd_bus_error *error)
{
	sd_bus_message *call = NULL;
	int r;

	if (argc == 1)
		return sd_bus_call_method(bus, CTL_NAME, CTL_PATH, CTL_IFACE, "SetGovernor", error,
					  NULL, "s", argv[0]);
	r = sd_bus_message_new_method_call(bus, &call, CTL_NAME, CTL_PATH, CTL_IFACE,
					   "SetGovernorWithTunables");
	if (r >= 0)
		r = sd_bus_message_append(call, "s", argv[0]);
	if (r >= 0)
		r = sd_bus_message_open_container(call, 'a', "{sv}");
	for (int i = 1; r >= 0 && i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (!eq) {
			sd_bus_message_unref(call);
			return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
						 "\"%s\" is not KEY=VALUE", argv[i]);
		}
		*eq = 0;
		r = sd_bus_message_append(call, "{sv}", argv[i], "s", eq + 1);
	}
	if (r >= 0)
		r = sd_bus_message_close_container(call);
	if (r >= 0)
		r = sd_bus_call(bus, call, 0, error, NULL);
	sd_bus_message_unref(call);
	return r;
}

static void print_tunable(const char *const f[5], double lo, double hi, bool json, bool first)
{
	if (!json) {
		printf("  %-22s %-8s %g..%g %s, default %s: %s\n", f[0], f[1], lo, hi, f[3], f[2],
		       f[4]);
		return;
	}
	printf("%s{\"name\":", first ? "" : ",");
	ctl_json_string(stdout, f[0]);
	printf(",\"type\":");
	ctl_json_string(stdout, f[1]);
	printf(",\"min\":%.17g,\"max\":%.17g,\"default\":", lo, hi);
	ctl_json_string(stdout, f[2]);
	printf(",\"unit\":");
	ctl_json_string(stdout, f[3]);
	printf(",\"doc\":");
	ctl_json_string(stdout, f[4]);
	printf("}");
}

/* governor tunables [NAME]: NAME's (the running governor's) tunables from TunableInfo. */
static int list_tunables(sd_bus *bus, const char *name, bool json)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	char *running = NULL;
	const char *gov, *f[5];
	double lo, hi;
	int r, n = 0;

	if (!name && ctl_get_string(bus, CTL_PATH, CTL_IFACE, "Governor", &running) < 0)
		return 1;
	name = name ? name : running;
	r = sd_bus_get_property(bus, CTL_NAME, CTL_PATH, CTL_IFACE, "TunableInfo", &error, &reply,
				"a(sssddsss)");
	if (r >= 0)
		r = sd_bus_message_enter_container(reply, 'a', "(sssddsss)");
	if (r < 0) {
		r = call_failed("governor tunables", &error, r);
		goto out;
	}
	if (json) {
		printf("{\"governor\":");
		ctl_json_string(stdout, name);
		printf(",\"tunables\":[");
	} else {
		printf("%s tunables:\n", name);
	}
	while (sd_bus_message_read(reply, "(sssddsss)", &gov, &f[0], &f[1], &lo, &hi, &f[2], &f[3],
				   &f[4]) > 0)
		if (strcmp(gov, name) == 0)
			print_tunable(f, lo, hi, json, n++ == 0);
	if (json)
		printf("]}\n");
	else if (n == 0)
		printf("  none\n");
	r = 0;
out:
	sd_bus_message_unref(reply);
	sd_bus_error_free(&error);
	free(running);
	return r;
}

static int ctl_governor_dbus(sd_bus *bus, int argc, char **argv, bool json)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	char *gov = NULL, *fallback = NULL, **available = NULL;
	int r;

	if (argc >= 1 && strcmp(argv[0], "tunables") == 0)
		return argc <= 2 ? list_tunables(bus, argc == 2 ? argv[1] : NULL, json) : 2;
	if (argc >= 1) {
		r = set_governor(bus, argc, argv, &error);
		if (r < 0) {
			call_failed("governor", &error, r);
			sd_bus_error_free(&error);
			return 1;
		}
	}
	r = sd_bus_get_property_strv(bus, CTL_NAME, CTL_PATH, CTL_IFACE, "AvailableGovernors",
				     &error, &available);
	if (r < 0 || ctl_get_string(bus, CTL_PATH, CTL_IFACE, "Governor", &gov) < 0 ||
	    ctl_get_string(bus, CTL_PATH, CTL_IFACE, "GovernorFallback", &fallback) < 0) {
		r = r < 0 ? call_failed("governor", &error, r) : 1;
		goto out;
	}
	if (json) {
		printf("{\"governor\":");
		ctl_json_string(stdout, gov);
		printf(",\"fallback\":");
		ctl_json_string(stdout, fallback);
		printf(",\"available\":[");
		for (int i = 0; available[i]; i++) {
			printf("%s", i ? "," : "");
			ctl_json_string(stdout, available[i]);
		}
		printf("]}\n");
	} else {
		printf("governor: %s\navailable:", gov);
		for (int i = 0; available[i]; i++)
			printf(" %s", available[i]);
		printf("\n");
		if (*fallback)
			printf("note: %s\n", fallback);
	}
	r = 0;
out:
	strv_free(available);
	free(gov);
	free(fallback);
	sd_bus_error_free(&error);
	return r;
}

static int set_bits(sd_bus *bus, const char *model, const char *path, const char *spec,
		    struct bitmix_layer_bits *bits, int n, bool json)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *call = NULL, *reply = NULL;
	uint16_t masks[CTL_MAX_LAYERS];
	uint64_t generation = 0;
	int r;

	if (ctl_get_masks(bus, path, masks) != n)
		return 1;
	if (ctl_apply_spec(masks, (uint32_t)n, spec, bits))
		return 1;
	r = sd_bus_message_new_method_call(bus, &call, CTL_NAME, path, CTL_MODEL_IFACE, "SetBits");
	if (r >= 0)
		r = sd_bus_message_open_container(call, 'a', "(yy)");
	for (int l = 0; r >= 0 && l < n; l++)
		r = sd_bus_message_append(call, "(yy)", bits[l].w_bits, bits[l].a_bits);
	if (r >= 0)
		r = sd_bus_message_close_container(call);
	if (r >= 0)
		r = sd_bus_call(bus, call, 0, &error, &reply);
	if (r >= 0)
		r = sd_bus_message_read(reply, "t", &generation);
	sd_bus_message_unref(call);
	sd_bus_message_unref(reply);
	if (r < 0) {
		call_failed("setting bits", &error, r);
		sd_bus_error_free(&error);
		return 1;
	}
	if (json)
		printf("{\"model\":\"%s\",\"generation\":%llu}\n", model,
		       (unsigned long long)generation);
	else
		printf("%s: new bits at generation %llu\n", model, (unsigned long long)generation);
	return 0;
}

static int ctl_bits_dbus(sd_bus *bus, int argc, char **argv, bool json)
{
	struct bitmix_layer_bits bits[CTL_MAX_LAYERS];
	uint16_t masks[CTL_MAX_LAYERS];
	char **layers = NULL, *path;
	uint64_t generation = 0;
	int n, r = 1;

	if (argc < 1 || argc > 2) {
		fputs("usage: bitmixctl bits MODEL [SPEC]\n", stderr);
		return 2;
	}
	path = ctl_model_path(argv[0]);
	if (!path)
		return 1;
	n = ctl_get_bits(bus, path, bits, &generation);
	if (n < 0)
		goto out;
	if (argc == 2) {
		r = set_bits(bus, argv[0], path, argv[1], bits, n, json);
		goto out;
	}
	if (ctl_get_masks(bus, path, masks) != n ||
	    sd_bus_get_property_strv(bus, CTL_NAME, path, CTL_MODEL_IFACE, "LayerNames", NULL,
				     &layers) < 0)
		goto out;
	ctl_bits_print(argv[0], generation, bits, masks, (const char *const *)layers, (uint32_t)n,
		       json);
	r = 0;
out:
	strv_free(layers);
	free(path);
	return r;
}

/* The Stats dictionary as the socket's POLICY reply fills it, for the one printer. */
static void stats_to_policy(const struct ctl_stats *st, struct bitmix_policy_info *p)
{
	memset(p, 0, sizeof(*p));
	p->average_bits = st->average_bits;
	p->cost_ns = st->cost_ns;
	p->rate = st->samples_per_second;
	p->min_bits = st->min_bits;
	p->max_bits = st->max_bits;
	p->floor_bits = st->floor_bits;
	p->max_latency_ns = st->max_latency_ns;
	p->holds = st->holds;
	p->transitions = st->transitions;
	p->decisions = st->decisions;
	p->last_decision_ns = st->last_decision_ns;
	p->state = st->state;
	memcpy(p->time_in_state_ns, st->time_in_state_ns, sizeof(p->time_in_state_ns));
	for (uint32_t i = 0; i < st->n_trans; i++)
		if (st->trans[i].from < BITMIX_GOV_STATES && st->trans[i].to < BITMIX_GOV_STATES)
			p->trans_table[st->trans[i].from][st->trans[i].to] = st->trans[i].count;
	snprintf(p->precision, sizeof(p->precision), "%s", st->precision);
	p->adaptive_requests = st->adaptive_requests;
	p->adaptive_samples = st->adaptive_samples;
	p->adaptive_escalated = st->adaptive_escalated;
	p->adaptive_bitops = st->adaptive_bitops;
	p->adaptive_ceiling_bitops = st->adaptive_ceiling_bitops;
	p->cost_scale = st->cost_scale;
}

static int ctl_stats_dbus(sd_bus *bus, int argc, char **argv, bool json)
{
	struct bitmix_governor_info cap = { 0 };
	struct bitmix_policy_info p;
	struct ctl_stats st;
	char *path;
	int r;

	if (argc != 1) {
		fputs("usage: bitmixctl stats MODEL\n", stderr);
		return 2;
	}
	path = ctl_model_path(argv[0]);
	r = path ? ctl_get_stats(bus, path, &st) : -ENOMEM;
	free(path);
	if (r < 0)
		return 1;
	stats_to_policy(&st, &p);
	ctl_stats_print(argv[0], &p, !json && ctl_get_work_cap(bus, &cap) == 0 ? &cap : NULL, json);
	return 0;
}

int ctl_reload_dbus(const char *address)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus *bus = NULL;
	int r = ctl_bus_open(address, &bus);

	if (r < 0)
		return r;
	r = sd_bus_call_method(bus, CTL_NAME, CTL_PATH, CTL_IFACE, "Reload", &error, NULL, NULL);
	if (r < 0)
		call_failed("reload", &error, r);
	else
		printf("reloaded\n");
	sd_bus_error_free(&error);
	sd_bus_flush_close_unref(bus);
	return r < 0 ? 1 : 0;
}

bool ctl_dbus_verb(const char *verb)
{
	static const char *const verbs[] = { "status", "governor", "bits",   "holds",
					     "reload", "stats",	   "cost",   "watch",
					     "load",   "unload",   "limits", "hold" };

	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(verb, verbs[i]) == 0)
			return true;
	return false;
}

int ctl_dbus_run(const char *address, bool json, const char *verb, int argc, char **argv)
{
	sd_bus *bus = NULL;
	int r;

	if (strcmp(verb, "reload") == 0)
		return argc == 0 ? ctl_reload_dbus(address) : 2;
	r = ctl_bus_open(address, &bus);
	if (r < 0)
		return r;
	if (strcmp(verb, "status") == 0)
		r = argc == 0 ? ctl_status(bus, address, json) : 2;
	else if (strcmp(verb, "governor") == 0)
		r = ctl_governor_dbus(bus, argc, argv, json);
	else if (strcmp(verb, "bits") == 0)
		r = ctl_bits_dbus(bus, argc, argv, json);
	else if (strcmp(verb, "holds") == 0)
		r = ctl_holds_dbus(bus, argc, argv, json);
	else if (strcmp(verb, "limits") == 0)
		r = ctl_limits_dbus(bus, argc, argv, json);
	else if (strcmp(verb, "hold") == 0)
		r = ctl_hold_dbus(bus, argc, argv);
	else if (strcmp(verb, "stats") == 0)
		r = ctl_stats_dbus(bus, argc, argv, json);
	else if (strcmp(verb, "cost") == 0)
		r = ctl_cost_dbus(bus, argc, argv, json);
	else if (strcmp(verb, "load") == 0)
		r = ctl_load_dbus(bus, argc, argv);
	else if (strcmp(verb, "unload") == 0)
		r = ctl_unload_dbus(bus, argc, argv);
	else
		r = ctl_watch(bus, argc, argv);
	sd_bus_flush_close_unref(bus);
	return r;
}
