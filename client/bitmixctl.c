/* SPDX-License-Identifier: MIT */
/*
 * bitmixctl.c — the command-line client of bitmixd: daemon status, the models it serves, their
 * per-layer bits (shown or set), and classifying images through a model.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bitmix.h"
#include "bitmixctl.h"
#include "image_io.h"

static const char *const fmnist_names[10] = {
	"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
	"Sandal",      "Shirt",	  "Sneaker",  "Bag",   "Ankle boot",
};

static void usage(FILE *f)
{
	fputs("Usage: bitmixctl [--socket PATH | --bus-address ADDRESS] [--json] COMMAND\n"
	      "status, governor, bits, hold, holds, limits, reload, stats, cost, watch, load and\n"
	      "unload speak D-Bus (the system bus, or ADDRESS / $BITMIX_BUS_ADDRESS) and use the\n"
	      "socket when bitmixd is not on the bus (or --socket is given); models and infer (the\n"
	      "data plane) always use the socket. --json prints one JSON object (status, governor,\n"
	      "bits, holds, limits, stats, cost), the same over either transport but for status.\n"
	      "  status                       the daemon's version, uptime, clients and counters\n"
	      "  models                       the models served\n"
	      "  bits MODEL                   the model's per-layer bits and their generation\n"
	      "  bits MODEL SPEC              set them: N or wWaA (every layer that allows it),\n"
	      "                               a list of one entry per layer (8,4,w2a4,...),\n"
	      "                               or overrides L=N,L=wWaA on top of the current bits\n"
	      "  infer MODEL FILE... [--labels IDX1] [--limit N] [--batch B] [--quiet]\n"
	      "        [--precision current|cascade|policy|fixed] [--rate IMAGES_PER_S]\n"
	      "                               classify IDX3 (.gz too) or PGM/PPM images (--rate:\n"
	      "                               offered at a steady pace, as a load generator)\n"
	      "  governor [NAME [KEY=VALUE...]]\n"
	      "                               the running governor; switch to NAME (with tunables,\n"
	      "                               D-Bus: governor step_wise states=4)\n"
	      "  governor tunables [NAME]     NAME's (the running governor's) tunables: range,\n"
	      "                               default, unit, meaning (D-Bus)\n"
	      "  stats MODEL                  the model's policy: time in state, transitions\n"
	      "  cost MODEL                   its cost table: ns per sample per layer and bit-width\n"
	      "                               at batch 1 and the large batch, measured or estimated\n"
	      "  hold MODEL min-bits N|max-latency-us N [SECONDS]\n"
	      "                               a QoS hold for SECONDS or until interrupted\n"
	      "  holds [MODEL]                the QoS holds and who holds them\n"
	      "  limits MODEL [MIN MAX [LAYER=BITS...]]\n"
	      "                               the model's bit range and pinned layers; set them\n"
	      "  load NAME FILE               serve FILE as NAME until the next reload (D-Bus; the\n"
	      "                               file is opened by bitmixctl, with your rights)\n"
	      "  unload NAME                  stop serving NAME (D-Bus)\n"
	      "  reload                       re-read the configuration; on error say where\n"
	      "                               (file:line:column) and exit 1, the old one kept\n"
	      "  watch [MODEL] [--count N] [--interval S]\n"
	      "                               live temperature, power, bits and throughput (D-Bus)\n",
	      f);
}

/* Report the connection's last error; main() closes the connection. */
static int die(const struct bitmix *bm, const char *what)
{
	fprintf(stderr, "bitmixctl: %s: %s\n", what, bitmix_strerror(bm));
	return 1;
}

/* The sensors' part of `status`: the source, the reading, and why each source was chosen or not. */
static int print_sensors(struct bitmix *bm)
{
	struct bitmix_sensors se;
	const char *line;

	if (bitmix_get_sensors(bm, &se) < 0)
		return die(bm, "status (sensors)");
	printf("  sensors:   %s, every %u ms (%llu readings, %llu events)\n", se.source,
	       se.period_ms, (unsigned long long)se.samples, (unsigned long long)se.events);
	printf("  reading:  ");
	if (se.have & 1)
		printf(" %.1f C", se.temp_c);
	if (se.have & 2)
		printf(" %.2f W", se.power_w);
	if (se.have & 4)
		printf(" load %.0f%%", se.load * 100);
	if (se.have & 8)
		printf(" %.0f MHz", se.freq_khz / 1000.0);
	printf("%s (%.2f s old)\n", se.have ? "" : " none yet", se.age_s);
	for (line = se.explain; *line;) {
		const char *end = strchr(line, '\n');
		int len = end ? (int)(end - line) : (int)strlen(line);

		printf("    %.*s\n", len, line);
		line += len + (end ? 1 : 0);
	}
	return 0;
}

static int cmd_status(struct bitmix *bm)
{
	struct bitmix_status st;

	if (bitmix_get_status(bm, &st) < 0)
		return die(bm, "status");
	printf("bitmixd %s, up %.1f s\n", st.version, (double)st.uptime_ns / 1e9);
	printf("  clients:   %u\n  models:    %u\n  workers:   %u\n", st.clients, st.models,
	       st.workers);
	printf("  requests:  %llu completed, %llu failed\n",
	       (unsigned long long)st.requests_completed, (unsigned long long)st.requests_failed);
	printf("  doorbell:  %s\n", st.doorbell);
	printf("  kernels:   %s\n", st.kernels);
	if (ctl_dbus_verb("status")) /* built with D-Bus: say which plane answered */
		printf("  answered:  over the socket (bitmixd not on the system bus, or --socket)\n");
	if (ctl_status_governor(bm))
		return 1;
	return print_sensors(bm);
}

static int cmd_models(struct bitmix *bm)
{
	struct bitmix_model_info infos[64];
	char range[32];
	int n = bitmix_list_models(bm, infos, 64);

	if (n < 0)
		return die(bm, "models");
	for (int i = 0; i < n && i < 64; i++) {
		ctl_bits_range(infos[i].bits_mask, range, sizeof(range));
		printf("%-16s %3u layers  input %ux%ux%u  outputs %u  bits %s\n", infos[i].name,
		       infos[i].layer_count, infos[i].input_h, infos[i].input_w, infos[i].input_c,
		       infos[i].output_size, range);
	}
	return 0;
}

static int cmd_bits(struct bitmix *bm, int argc, char **argv)
{
	struct bitmix_layer_bits bits[1024];
	struct bitmix_model *m;
	uint64_t generation;

	if (argc < 1 || argc > 2) {
		usage(stderr);
		return 2;
	}
	if (bitmix_open_model(bm, argv[0], &m) < 0)
		return die(bm, argv[0]);
	bitmix_get_bits(m, bits, &generation);
	if (argc == 2) {
		uint32_t n = bitmix_model_get_info(m)->layer_count;
		uint16_t masks[1024];

		for (uint32_t i = 0; i < n && i < 1024; i++)
			masks[i] = bitmix_model_layer_bits_mask(m, i);
		if (ctl_apply_spec(masks, n, argv[1], bits))
			return 1;
		if (bitmix_set_bits(m, bits, &generation) < 0)
			return die(bm, "setting bits");
		printf("%s: new bits at generation %llu\n", argv[0],
		       (unsigned long long)generation);
		return 0;
	}
	return ctl_bits_show(bm, m, argv[0], false);
}

struct infer_opts {
	const char *labels;
	long limit;
	uint32_t batch;
	bool quiet;
	unsigned precision; /* BITMIX_INFER_* */
	double rate;	    /* images per second to offer (0: as fast as answered) */
	double next_s;	    /* when the next request is due */
	uint64_t bitops;    /* spent, summed over the requests */
	uint64_t escalated;
};

static uint32_t argmax_softmax(const float *x, uint32_t n, float *p)
{
	float max = x[0], sum = 0;
	uint32_t best = 0;

	for (uint32_t i = 1; i < n; i++)
		if (x[i] > max)
			max = x[i], best = i;
	for (uint32_t i = 0; i < n; i++)
		sum += expf(x[i] - max);
	*p = 1.0f / sum;
	return best;
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * --rate: sleep until the next request is due. A request that is late goes at once, but no more
 * than 0.1 s of backlog is kept: an offered load stays that load, it does not make up for a
 * daemon that served it slower (its rate then shows in the images/s printed at the end).
 */
static void pace(struct infer_opts *o)
{
	double now = mono_s();

	if (o->next_s < now - 0.1)
		o->next_s = now;
	if (o->next_s > now) {
		double d = o->next_s - now;
		struct timespec ts = { (time_t)d, (long)((d - (double)(time_t)d) * 1e9) };

		nanosleep(&ts, NULL);
	}
	o->next_s += (double)o->batch / o->rate;
}

/* Classify the images of one file; counts go to *done and *correct. */
static int infer_file(struct bitmix *bm, struct bitmix_model *m, const char *path,
		      struct infer_opts *o, const struct label_set *labels, long *done,
		      long *correct, uint64_t *generation)
{
	const struct bitmix_model_info *info = bitmix_model_get_info(m);
	size_t in_n = (size_t)info->input_h * info->input_w * info->input_c;
	struct image_set set;
	char err[256];
	float *in, *out;
	int r;

	if (image_set_read(path, &set, err, sizeof(err)) < 0) {
		fprintf(stderr, "bitmixctl: %s\n", err);
		return 1;
	}
	if (set.h != info->input_h || set.w != info->input_w || set.c != info->input_c) {
		fprintf(stderr, "bitmixctl: %s: images are %ux%ux%u, model %s takes %ux%ux%u\n",
			path, set.h, set.w, set.c, info->name, info->input_h, info->input_w,
			info->input_c);
		image_set_free(&set);
		return 1;
	}
	in = bitmix_tensor_alloc(bm, in_n * o->batch * sizeof(float));
	out = bitmix_tensor_alloc(bm, info->output_size * o->batch * sizeof(float));
	if (!in || !out) {
		image_set_free(&set);
		return die(bm, "allocating tensors");
	}
	for (uint32_t i = 0; i < set.count && (o->limit < 0 || *done < o->limit);) {
		uint32_t b = o->batch;

		if (b > set.count - i)
			b = set.count - i;
		if (o->limit >= 0 && (long)b > o->limit - *done)
			b = (uint32_t)(o->limit - *done);
		for (size_t k = 0; k < (size_t)b * in_n; k++)
			in[k] = (float)set.pixels[(size_t)i * in_n + k] / 255.0f;
		if (o->rate > 0)
			pace(o);
		struct bitmix_result res;

		r = bitmix_infer_precision(m, in, out, b, o->precision, &res);
		*generation = res.generation;
		o->bitops += res.bitops;
		o->escalated += res.escalated;
		if (r < 0) {
			fprintf(stderr, "bitmixctl: infer: %s\n", bitmix_strerror(bm));
			image_set_free(&set);
			return 1;
		}
		for (uint32_t s = 0; s < b; s++, i++, (*done)++) {
			float p;
			uint32_t cls = argmax_softmax(out + (size_t)s * info->output_size,
						      info->output_size, &p);
			bool has_label = labels && (uint64_t)*done < labels->count;

			if (has_label && labels->labels[*done] == cls)
				(*correct)++;
			if (o->quiet)
				continue;
			printf("%s[%u]: class %u", path, i, cls);
			if (info->output_size == 10)
				printf(" (%s)", fmnist_names[cls]);
			printf(" p=%.3f", (double)p);
			if (has_label)
				printf("  label %u%s", labels->labels[*done],
				       labels->labels[*done] == cls ? "" : "  WRONG");
			printf("\n");
		}
	}
	bitmix_tensor_free(bm, in);
	bitmix_tensor_free(bm, out);
	image_set_free(&set);
	return 0;
}

static int cmd_infer(struct bitmix *bm, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "labels", required_argument, NULL, 'l' },
		{ "limit", required_argument, NULL, 'n' },
		{ "batch", required_argument, NULL, 'b' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "precision", required_argument, NULL, 'p' },
		{ "rate", required_argument, NULL, 'r' },
		{ 0 },
	};
	static const char *const precisions[] = { "current", "cascade", "policy", "fixed" };
	struct infer_opts o = { .limit = -1, .batch = 1 };
	struct label_set labels = { 0 };
	struct bitmix_model *m;
	uint64_t generation = 0;
	long done = 0, correct = 0;
	double t0;
	char err[256], *end;
	int c, r = 0;

	optind =
		0; /* 0, not 1: glibc then rescans from scratch, permuting options after the files */
	while ((c = getopt_long(argc, argv, "l:n:b:q", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			o.labels = optarg;
			break;
		case 'n':
			o.limit = strtol(optarg, NULL, 10);
			break;
		case 'b':
			o.batch = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'r':
			o.rate = strtod(optarg, &end);
			if (*end || !(o.rate > 0)) {
				fprintf(stderr,
					"bitmixctl: --rate %s: expected images per second > 0\n",
					optarg);
				return 2;
			}
			break;
		case 'p':
			for (o.precision = 0; o.precision < 4; o.precision++)
				if (strcmp(optarg, precisions[o.precision]) == 0)
					break;
			if (o.precision == 4) {
				usage(stderr);
				return 2;
			}
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind < 2 || o.batch < 1 || o.batch > 256) {
		usage(stderr);
		return 2;
	}
	if (o.labels && label_set_read(o.labels, &labels, err, sizeof(err)) < 0) {
		fprintf(stderr, "bitmixctl: %s\n", err);
		return 1;
	}
	if (bitmix_open_model(bm, argv[optind], &m) < 0) {
		label_set_free(&labels);
		return die(bm, argv[optind]);
	}
	t0 = o.next_s = mono_s();
	for (int i = optind + 1; i < argc && r == 0; i++)
		r = infer_file(bm, m, argv[i], &o, o.labels ? &labels : NULL, &done, &correct,
			       &generation);
	if (r == 0 && done > 0) {
		double dt = mono_s() - t0;

		printf("%ld image(s) in %.3f s (%.0f images/s), last at generation %llu\n", done,
		       dt, (double)done / dt, (unsigned long long)generation);
		if (o.labels)
			printf("accuracy: %ld/%ld = %.2f%%\n", correct, done,
			       100.0 * (double)correct / (double)done);
		printf("BitOps: %.4g per image (precision %s, %llu escalated)\n",
		       (double)o.bitops / (double)done, precisions[o.precision],
		       (unsigned long long)o.escalated);
	}
	label_set_free(&labels);
	return r;
}

/*
 * The D-Bus verbs go over the bus unless --socket names a socket (and no bus was named).
 * Returns the exit status, or -1 to go on with the socket.
 */
static int ctl_over_dbus(const char *socket_path, const char *bus_address, bool json, int argc,
			 char **argv)
{
	int r;

	if (!ctl_dbus_verb(argv[0]) || (socket_path && !bus_address))
		return -1;
	r = ctl_dbus_run(bus_address, json, argv[0], argc - 1, argv + 1);
	if (r >= 0)
		return r;
	if (bus_address) {
		fprintf(stderr, "bitmixctl: no bitmixd on %s: %s\n", bus_address,
			r == -ENOENT ? "no bus there, or org.bitmix.Daemon1 has no owner"
				     : strerror(-r));
		return 1;
	}
	/* Not on the system bus: the socket, for what it offers (reload included). */
	if (strcmp(argv[0], "watch") == 0 || strcmp(argv[0], "load") == 0 ||
	    strcmp(argv[0], "unload") == 0) {
		fprintf(stderr,
			"bitmixctl: %s needs the D-Bus API, and no bitmixd is on the system "
			"bus\n",
			argv[0]);
		return 1;
	}
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "bus-address", required_argument, NULL, 'b' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	const char *socket_path = NULL, *bus_address = getenv("BITMIX_BUS_ADDRESS");
	bool json = false;
	struct bitmix *bm;
	int c, r;

	while ((c = getopt_long(argc, argv, "+s:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			socket_path = optarg;
			break;
		case 'b':
			bus_address = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	r = ctl_over_dbus(socket_path, bus_address, json, argc - optind, argv + optind);
	if (r >= 0)
		return r;
	if (bitmix_connect(socket_path, &bm) < 0) {
		fprintf(stderr, "bitmixctl: %s\n", bitmix_strerror(NULL));
		return 1;
	}
	const char *cmd = argv[optind];
	argc -= optind + 1;
	argv += optind + 1;
	if (strcmp(cmd, "cost") == 0)
		r = ctl_cost(bm, argc, argv, json);
	else if (strcmp(cmd, "holds") == 0)
		r = ctl_holds(bm, argc, argv, json);
	else if (strcmp(cmd, "limits") == 0)
		r = ctl_limits(bm, argc, argv, json);
	else if (strcmp(cmd, "stats") == 0)
		r = ctl_stats(bm, argc, argv, json);
	else if (strcmp(cmd, "hold") == 0) /* no JSON: it says what it does as it does it */
		r = ctl_hold(bm, argc, argv);
	else if (json)
		r = ctl_socket_json(bm, cmd, argc, argv);
	else if (strcmp(cmd, "status") == 0 && argc == 0)
		r = cmd_status(bm);
	else if (strcmp(cmd, "models") == 0 && argc == 0)
		r = cmd_models(bm);
	else if (strcmp(cmd, "bits") == 0)
		r = cmd_bits(bm, argc, argv);
	else if (strcmp(cmd, "governor") == 0)
		r = ctl_governor(bm, argc, argv);
	else if (strcmp(cmd, "reload") == 0)
		r = ctl_reload(bm, argc, argv);
	else if (strcmp(cmd, "infer") == 0)
		r = cmd_infer(bm, argc + 1, argv - 1);
	else {
		usage(stderr);
		r = 2;
	}
	bitmix_close(bm);
	return r;
}
