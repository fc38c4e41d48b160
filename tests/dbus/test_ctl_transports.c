/* SPDX-License-Identifier: MIT */
/*
 * test_ctl_transports.c — every bitmixctl verb both ways, over the socket (--socket) and over
 * D-Bus (--bus-address, a private dbus-daemon enforcing the project's policy), comparing what
 * they print, as text and as --json: one printer per verb means one output whichever transport
 * answered (issue 23). Masked before comparing, because they change between two calls: the
 * numbers after the words of volatile_words (uptime, clients: the socket call is a client
 * itself, requests, decisions and the last one's time, rates and averages that the governor
 * recomputes every tick, generation: bits are set in between, a hold's id) and the
 * time-in-state table.
 *
 * Verbs whose two printers are not unified yet are listed in not_unified: they are run both
 * ways and the test prints whether exit status and output agree (with $BITMIX_TEST_SHOW set, both
 * outputs), but does not assert it.
 * Usage: test_ctl_transports BITMIXD MODEL.bmx BITMIXCTL POLICY.conf
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bitmix.h"
#include "daemon_harness.h"
#include "private_bus.h"

static const char *bitmixd_path, *model_path, *bitmixctl_path, *policy_path;
static struct private_bus pbus;
static struct daemon_harness daemon_h;
static char extra_yaml[1024];

/* Words after which numbers change from one call to the next. */
static const char *const volatile_words[] = {
	"uptime",	 "up:",	    "clients",	  "requests",  "time_in_state",
	"last_decision", "rate",    "generation", "dropped",   "busy",
	"capped",	 "age",	    "decisions",  "last took", "samples_per_second",
	"samples/s",	 "average", "hold ",
};

static void mask_digits(char *from, const char *to)
{
	for (char *p = from; p < to; p++)
		if (isdigit((unsigned char)*p))
			*p = '#';
}

/*
 * Replace the numbers that change between two calls by '#': those after a volatile word up to
 * the end of the line or of the JSON member (its whole array if it is one), and the lines of
 * the time-in-state table ("  8.0        6.322 s  <- now").
 */
static void mask(char *s)
{
	for (char *line = s; *line;) {
		char *eol = strchr(line, '\n');

		if (!eol)
			eol = line + strlen(line);
		if (strstr(line, " s") && (eol - line > 2) &&
		    (strncmp(eol - 2, " s", 2) == 0 || strncmp(eol - 6, "<- now", 6) == 0))
			mask_digits(line, eol);
		line = *eol ? eol + 1 : eol;
	}
	for (char *p = s; *p; p++) {
		char *end = NULL, *stop;

		for (size_t w = 0; w < sizeof(volatile_words) / sizeof(volatile_words[0]); w++)
			if (strncmp(p, volatile_words[w], strlen(volatile_words[w])) == 0)
				end = p + strlen(volatile_words[w]);
		if (!end)
			continue;
		stop = end + strcspn(end, "\n,}[");
		if (*stop == '[')
			stop = strchr(stop, ']') ? strchr(stop, ']') : stop;
		mask_digits(end, stop);
		p = *stop ? stop : stop - 1;
	}
	/* A masked number is one '#' whatever its length ("decisions":99 and 100 alike). */
	char *w = s;
	for (char *r = s; *r; r++) {
		if (*r == '#' && w > s &&
		    (w[-1] == '#' || (w[-1] == '.' && w - 1 > s && w[-2] == '#'))) {
			if (w[-1] == '.')
				w--;
			continue;
		}
		*w++ = *r;
	}
	*w = 0;
}

static int ctl(bool dbus, bool json, const char *verb, char *out, size_t size)
{
	char cmd[1024];

	if (dbus)
		snprintf(cmd, sizeof(cmd), "%s --bus-address=%s %s%s 2>&1", bitmixctl_path,
			 pbus.address, json ? "--json " : "", verb);
	else
		snprintf(cmd, sizeof(cmd), "%s --socket %s %s%s 2>&1", bitmixctl_path,
			 daemon_h.socket, json ? "--json " : "", verb);
	return harness_run(cmd, out, size);
}

static bool pending(const char *verb, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(verb, list[i]) == 0)
			return true;
	return false;
}

static void test_every_verb_both_ways(void **state)
{
	/* Every admin verb, reading ones and changing ones (they leave the daemon as it was). */
	static const char *const verbs[] = {
		"status",
		"governor",
		"governor userspace",
		"bits fmnist",
		"bits fmnist 8",
		"stats fmnist",
		"cost fmnist",
		"holds",
		"holds fmnist",
		"hold fmnist min-bits 4 0.2",
		"limits fmnist",
		"limits fmnist 2 8",
		"limits nosuch",
		"reload",
	};
	/* Printers not unified yet (issue 23, point 2): compared by exit status only. */
	static const char *const not_unified[] = { "status" };
	static char a[32768], b[32768];

	(void)state;
	for (int json = 0; json < 2; json++)
		for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
			int ra, rb;

			if (json && strcmp(verbs[i], "reload") == 0)
				continue; /* no JSON: a word or file:line:column */
			ra = ctl(false, json, verbs[i], a, sizeof(a));
			rb = ctl(true, json, verbs[i], b, sizeof(b));
			mask(a);
			mask(b);
			printf("%s%s: socket %d, D-Bus %d, %s\n", json ? "--json " : "", verbs[i],
			       ra, rb, strcmp(a, b) == 0 ? "same output" : "different output");
			if (pending(verbs[i], not_unified,
				    sizeof(not_unified) / sizeof(not_unified[0]))) {
				printf("  not asserted: its printers are not unified yet\n");
				if (getenv("BITMIX_TEST_SHOW") && strcmp(a, b) != 0)
					printf("socket:\n%s\nD-Bus:\n%s\n", a, b);
				continue;
			}
			assert_int_equal(ra, rb);
			if (strcmp(a, b) != 0)
				printf("socket:\n%s\nD-Bus:\n%s\n", a, b);
			assert_string_equal(a, b);
		}
}

/* A hold placed over the socket is listed alike by both; then released with its connection. */
static void test_holds_listed_alike(void **state)
{
	static char a[8192], b[8192];
	struct bitmix *bm;
	uint32_t id;

	(void)state;
	assert_int_equal(bitmix_connect(daemon_h.socket, &bm), 0);
	assert_int_equal(bitmix_hold(bm, "fmnist", BITMIX_HOLD_MIN_BITS, 4, &id), 0);
	for (int json = 0; json < 2; json++) {
		assert_int_equal(ctl(false, json, "holds", a, sizeof(a)), 0);
		assert_int_equal(ctl(true, json, "holds", b, sizeof(b)), 0);
		assert_non_null(strstr(a, "min-bits"));
		assert_string_equal(a, b);
	}
	bitmix_close(bm);
}

static int group_setup(void **state)
{
	char *abs = realpath(model_path, NULL), *slash = abs ? strrchr(abs, '/') : NULL;
	int r;

	(void)state;
	r = private_bus_start(&pbus, policy_path);
	if (r < 0) {
		fprintf(stderr, "could not start a private dbus-daemon: %s\n", strerror(-r));
		private_bus_stop(&pbus);
		free(abs);
		return -1;
	}
	if (slash)
		*slash = 0;
	snprintf(extra_yaml, sizeof(extra_yaml),
		 "dbus:\n  address: %s\nmodel_folders: [%s, /tmp]\ngovernor:\n  name: userspace\n",
		 pbus.address, abs ? abs : "/nonexistent");
	free(abs);
	if (harness_start(&daemon_h, bitmixd_path, model_path, extra_yaml) < 0 ||
	    !private_bus_wait_name(&pbus, "org.bitmix.Daemon1", 5000)) {
		fprintf(stderr, "bitmixd did not come up on %s\n", pbus.address);
		harness_cleanup(&daemon_h);
		private_bus_stop(&pbus);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	int status = 0;

	(void)state;
	if (daemon_h.pid > 0)
		status = harness_stop(&daemon_h);
	harness_cleanup(&daemon_h);
	private_bus_stop(&pbus);
	return status == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_verb_both_ways),
		cmocka_unit_test(test_holds_listed_alike),
	};

	if (argc != 5) {
		fprintf(stderr, "usage: %s BITMIXD MODEL.bmx BITMIXCTL POLICY.conf\n", argv[0]);
		return 2;
	}
	bitmixd_path = argv[1];
	model_path = argv[2];
	bitmixctl_path = argv[3];
	policy_path = argv[4];
	if (access("/usr/bin/dbus-daemon", X_OK) < 0) {
		printf("SKIP: no /usr/bin/dbus-daemon\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
