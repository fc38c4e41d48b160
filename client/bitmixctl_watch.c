/* SPDX-License-Identifier: MIT */
/*
 * bitmixctl_watch.c — `bitmixctl watch [MODEL] [--count N] [--interval SECONDS]`: a live view of
 * the daemon over D-Bus: temperature, power, the governor, and per model its per-layer bits and
 * throughput (samples per second, from the difference of its samples_completed counter).
 *
 * It redraws every interval (1 s by default) and at once when a BitsChanged signal arrives. On
 * a terminal it draws a full screen and quits on q or Ctrl-C, leaving the terminal as it found
 * it; otherwise (a pipe, a test) it prints one line per update, and --count N stops after N.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "bitmixctl_dbus.h"

struct watch {
	sd_bus *bus;
	const char *only; /* one model, or NULL for all */
	bool tty;
	bool changed; /* a BitsChanged arrived since the last update */
	unsigned long updates, max_updates;
	double interval, start;
	double last_t[CTL_MAX_MODELS];
	uint64_t last_samples[CTL_MAX_MODELS];
};

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int on_bits_changed(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct watch *w = userdata;
	const char *model;

	(void)error;
	if (sd_bus_message_read(m, "s", &model) >= 0 && (!w->only || strcmp(model, w->only) == 0))
		w->changed = true;
	return 0;
}

/* Samples per second since the last update of model slot I (the daemon's average at first). */
static double throughput(struct watch *w, int i, const struct ctl_stats *st, double now)
{
	double rate = st->samples_per_second;

	if (w->last_t[i] > 0 && now > w->last_t[i] && st->samples_completed >= w->last_samples[i])
		rate = (double)(st->samples_completed - w->last_samples[i]) / (now - w->last_t[i]);
	w->last_t[i] = now;
	w->last_samples[i] = st->samples_completed;
	return rate;
}

static void show_model(struct watch *w, int i, const char *name, const char *path, double now)
{
	struct bitmix_layer_bits bits[CTL_MAX_LAYERS];
	struct ctl_stats st;
	char **layers = NULL;
	uint64_t generation = 0;
	int n = ctl_get_bits(w->bus, path, bits, &generation);
	double rate;

	if (n < 0 || ctl_get_stats(w->bus, path, &st) < 0)
		return;
	rate = throughput(w, i, &st, now);
	if (!w->tty) {
		printf(" | %s gen=%llu bits=", name, (unsigned long long)generation);
		for (int l = 0; l < n; l++)
			printf(bits[l].w_bits == bits[l].a_bits ? "%s%u" : "%sw%ua%u", l ? "," : "",
			       bits[l].w_bits, bits[l].a_bits);
		printf(" avg=%.2f samples_per_s=%.1f", st.average_bits, rate);
		return;
	}
	(void)sd_bus_get_property_strv(w->bus, CTL_NAME, path, CTL_MODEL_IFACE, "LayerNames", NULL,
				       &layers);
	printf("\n%s  generation %llu  average %.2f bits  %.1f samples/s  %.0f ns/sample\n", name,
	       (unsigned long long)generation, st.average_bits, rate, st.cost_ns);
	for (int l = 0; l < n; l++) {
		const char *layer = layers && layers[l] ? layers[l] : "";

		printf("  %-16.16s w%u a%u  ", layer, bits[l].w_bits, bits[l].a_bits);
		for (unsigned b = 0; b < bits[l].w_bits; b++)
			fputc('#', stdout);
		printf("\n");
	}
	for (int l = 0; layers && layers[l]; l++)
		free(layers[l]);
	free(layers);
}

static int update(struct watch *w)
{
	char *names[CTL_MAX_MODELS], *paths[CTL_MAX_MODELS], *gov = NULL;
	double temp = NAN, power = NAN, now = mono();
	int n;

	if (ctl_get_string(w->bus, CTL_PATH, CTL_IFACE, "Governor", &gov) < 0 ||
	    ctl_get_double(w->bus, CTL_PATH, CTL_IFACE, "Temperature", &temp) < 0 ||
	    ctl_get_double(w->bus, CTL_PATH, CTL_IFACE, "Power", &power) < 0 ||
	    (n = ctl_list_models(w->bus, names, paths, CTL_MAX_MODELS)) < 0) {
		free(gov);
		return -EIO;
	}
	if (w->tty) {
		time_t t = time(NULL);
		char clock[16];

		strftime(clock, sizeof(clock), "%H:%M:%S", localtime(&t));
		printf("\033[H\033[J"
		       "bitmixd  %s  (q or Ctrl-C quits)\n",
		       clock);
		printf("temperature %s%.1f C   power %.2f W   governor %s\n",
		       isfinite(temp) ? "" : "n/a ", temp, power, gov);
	} else {
		printf("t=%.3f temp_c=%.1f power_w=%.2f governor=%s", now - w->start, temp, power,
		       gov);
	}
	for (int i = 0; i < n; i++)
		if (!w->only || strcmp(w->only, names[i]) == 0)
			show_model(w, i, names[i], paths[i], now);
	if (!w->tty)
		printf("\n");
	fflush(stdout);
	ctl_free_models(names, paths, n);
	free(gov);
	return 0;
}

/* Wait for the bus, a key or the next update, whichever comes first. */
static int wait_events(struct watch *w, double next)
{
	struct pollfd fds[2] = {
		{ .fd = sd_bus_get_fd(w->bus), .events = (short)sd_bus_get_events(w->bus) },
		{ .fd = w->tty && isatty(STDIN_FILENO) ? STDIN_FILENO : -1, .events = POLLIN }
	};
	double left = next - mono();
	uint64_t usec;
	int ms = left > 0 ? (int)(left * 1000) + 1 : 0;
	char c;

	if (sd_bus_get_timeout(w->bus, &usec) >= 0 && usec != UINT64_MAX) {
		struct timespec ts;
		uint64_t now_usec;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		now_usec = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
		if (usec <= now_usec)
			ms = 0;
		else if ((usec - now_usec) / 1000 < (uint64_t)ms)
			ms = (int)((usec - now_usec) / 1000) + 1;
	}
	if (poll(fds, 2, ms) < 0)
		return errno == EINTR ? 0 : -errno;
	if (fds[1].revents & POLLIN && read(STDIN_FILENO, &c, 1) == 1 && (c == 'q' || c == 'Q'))
		stop = 1;
	return 0;
}

static int parse_args(struct watch *w, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "interval", required_argument, NULL, 'i' },
		{ 0 },
	};
	char *end;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "n:i:", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			w->max_updates = strtoul(optarg, &end, 10);
			if (*end || !w->max_updates)
				return -EINVAL;
			break;
		case 'i':
			w->interval = strtod(optarg, &end);
			if (*end || !(w->interval >= 0.05 && w->interval <= 3600))
				return -EINVAL;
			break;
		default:
			return -EINVAL;
		}
	}
	if (argc - optind > 1)
		return -EINVAL;
	w->only = argc - optind == 1 ? argv[optind] : NULL;
	return 0;
}

int ctl_watch(sd_bus *bus, int argc, char **argv)
{
	struct watch w = { .bus = bus, .interval = 1.0, .tty = isatty(STDOUT_FILENO) };
	struct sigaction sa = { .sa_handler = on_stop }; /* no SA_RESTART: poll() returns */
	struct termios saved, raw;
	bool restore = false;
	double next;
	int r;

	/* argv[-1] is "watch": getopt wants the command name first. */
	if (parse_args(&w, argc + 1, argv - 1) < 0) {
		fputs("usage: bitmixctl watch [MODEL] [--count N] [--interval SECONDS]\n", stderr);
		return 2;
	}
	r = sd_bus_match_signal(bus, NULL, CTL_NAME, CTL_PATH, CTL_IFACE, "BitsChanged",
				on_bits_changed, &w);
	if (r < 0) {
		fprintf(stderr, "bitmixctl: subscribing to BitsChanged: %s\n", strerror(-r));
		return 1;
	}
	sigset_t mask;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* A mask inherited blocked (some launchers do) would keep Ctrl-C from ever arriving. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_UNBLOCK, &mask, NULL);
	if (w.tty && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0) {
		raw = saved;
		raw.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
		restore = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
	}
	w.start = mono();
	next = w.start;
	while (!stop && (!w.max_updates || w.updates < w.max_updates)) {
		while ((r = sd_bus_process(bus, NULL)) > 0)
			;
		if (r < 0)
			break;
		if (w.changed || mono() >= next) {
			w.changed = false;
			if ((r = update(&w)) < 0)
				break;
			w.updates++;
			next = mono() + w.interval;
			continue;
		}
		if ((r = wait_events(&w, next)) < 0)
			break;
	}
	if (restore)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	if (w.tty)
		printf("\n");
	/* Interrupted while asking the daemon (EINTR): still a clean exit when asked to stop. */
	return r < 0 && !stop ? 1 : 0;
}
