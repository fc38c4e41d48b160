/* SPDX-License-Identifier: MIT */
/*
 * test_dbus.c — bitmixd's D-Bus API against a real private dbus-daemon that enforces the
 * project's policy file: every property of the manager and of a model object, every method with
 * its error paths (SetBits under a non-userspace governor, unknown governor, bad limits, unknown
 * model, a corrupt LoadModel that leaves the store as it was, UnloadModel while a client holds
 * the model, Reload of a broken file naming file:line:column and serving on), BitsChanged and
 * PropertiesChanged after each change and none missed while the governor switches, TripCrossed
 * under a real inference load, holds dropped when their peer leaves the bus, access denied to
 * `nobody`, the CostTable (every layer and bit-width, its rows becoming measured), bitmixctl
 * --json, cost and watch over D-Bus, busctl. It prints the latency of a property
 * Get and of a SetBits round trip.
 * Usage: test_dbus BITMIXD MODEL.bmx BITMIXCTL POLICY.conf
 */
#include <errno.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bitmix.h"
#include "daemon_harness.h"
#include "private_bus.h"

#define NAME "org.bitmix.Daemon1"
#define PATH "/org/bitmix/Daemon1"
#define IFACE "org.bitmix.Daemon1"
#define MPATH "/org/bitmix/Daemon1/model/fmnist"
#define MIFACE "org.bitmix.Model1"

static const char *bitmixd_path, *model_path, *bitmixctl_path, *policy_path;
static struct private_bus pbus;
static struct daemon_harness daemon_h;
static char extra_yaml[1024];

/* A hot simulated machine (tau 0.6 s, idle 32.5 C) and a step_wise trip that work crosses. */
static const char machine_yaml[] = HARNESS_HOT_MACHINE_YAML
	"governor:\n"
	"  name: userspace\n"
	"  step_wise:\n"
	"    trips: [{temp: 38, hysteresis: 2}]\n";

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static sd_bus *bus_connect(void)
{
	sd_bus *bus = NULL;

	assert_int_equal(sd_bus_new(&bus), 0);
	assert_true(sd_bus_set_address(bus, pbus.address) >= 0);
	assert_true(sd_bus_set_bus_client(bus, 1) >= 0);
	assert_true(sd_bus_start(bus) >= 0);
	return bus;
}

static char *get_string(sd_bus *bus, const char *path, const char *iface, const char *prop)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	char *s = NULL;
	int r = sd_bus_get_property_string(bus, NAME, path, iface, prop, &error, &s);

	if (r < 0)
		fail_msg("Get %s: %s", prop, error.message);
	return s;
}

static void assert_string_prop(sd_bus *bus, const char *path, const char *iface, const char *prop,
			       const char *want)
{
	char *s = get_string(bus, path, iface, prop);

	assert_string_equal(s, want);
	free(s);
}

/* Call a method expected to fail with ERROR_NAME; returns the message (static buffer). */
/* Call MEMBER with the arguments AP of signature TYPES (may be NULL); sd_bus_call's result. */
static int call_v(sd_bus *bus, const char *path, const char *iface, const char *member,
		  sd_bus_error *error, sd_bus_message **reply, const char *types, va_list ap)
{
	sd_bus_message *call = NULL;
	int r;

	assert_true(sd_bus_message_new_method_call(bus, &call, NAME, path, iface, member) >= 0);
	if (types)
		assert_true(sd_bus_message_appendv(call, types, ap) >= 0);
	r = sd_bus_call(bus, call, 0, error, reply);
	sd_bus_message_unref(call);
	return r;
}

static const char *call_fails(sd_bus *bus, const char *path, const char *iface, const char *member,
			      const char *error_name, const char *types, ...)
{
	static char msg[512];
	sd_bus_error error = SD_BUS_ERROR_NULL;
	va_list ap;
	int r;

	va_start(ap, types);
	r = call_v(bus, path, iface, member, &error, NULL, types, ap);
	va_end(ap);
	if (r >= 0)
		fail_msg("%s succeeded, expected %s", member, error_name);
	if (!sd_bus_error_has_name(&error, error_name))
		fail_msg("%s failed with %s (%s), expected %s", member, error.name, error.message,
			 error_name);
	snprintf(msg, sizeof(msg), "%s", error.message ? error.message : "");
	sd_bus_error_free(&error);
	return msg;
}

static void call_ok(sd_bus *bus, const char *path, const char *iface, const char *member,
		    sd_bus_message **reply, const char *types, ...)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	va_list ap;
	int r;

	va_start(ap, types);
	r = call_v(bus, path, iface, member, &error, reply, types, ap);
	va_end(ap);
	if (r < 0)
		fail_msg("%s: %s: %s", member, error.name, error.message);
	sd_bus_error_free(&error);
}

/* SetBits with every layer at B where it allows B (the first and last layers run at 8). */
static uint64_t set_uniform_bits(sd_bus *bus, uint8_t b)
{
	sd_bus_message *reply = NULL;
	uint64_t g = 0;

	call_ok(bus, MPATH, MIFACE, "SetBits", &reply, "a(yy)", 8, 8, 8, b, b, b, b, b, b, b, b, b,
		b, b, b, 8, 8);
	assert_true(sd_bus_message_read(reply, "t", &g) > 0);
	sd_bus_message_unref(reply);
	return g;
}

/* What the signal callbacks saw. */
struct seen {
	unsigned bits_changed, model_props, manager_props, trips_up, trips_down;
	unsigned limits_changed, holds_changed;	 /* PropertiesChanged naming Limits, Holds */
	unsigned objects_added, objects_removed; /* the object manager's InterfacesAdded/Removed */
	unsigned switch_on_up, switch_on_down, control_up; /* power_allocator's thresholds */
	uint64_t last_generation;
	uint8_t last_bits[16][2];
	unsigned n_last_bits;
	bool gaps;	   /* a BitsChanged generation skipped a publication */
	char changed[256]; /* names in the last PropertiesChanged */
};

static int on_bits_changed(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct seen *s = userdata;
	const char *model;
	uint64_t g;
	uint8_t w, a;

	(void)error;
	assert_true(sd_bus_message_read(m, "st", &model, &g) > 0);
	assert_string_equal(model, "fmnist");
	if (s->bits_changed && g != s->last_generation + 2)
		s->gaps = true;
	s->last_generation = g;
	s->bits_changed++;
	s->n_last_bits = 0;
	assert_true(sd_bus_message_enter_container(m, 'a', "(yy)") >= 0);
	while (sd_bus_message_read(m, "(yy)", &w, &a) > 0 && s->n_last_bits < 16) {
		s->last_bits[s->n_last_bits][0] = w;
		s->last_bits[s->n_last_bits++][1] = a;
	}
	return 0;
}

static int on_props_changed(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct seen *s = userdata;
	const char *iface, *name;
	size_t n = 0;

	(void)error;
	assert_true(sd_bus_message_read(m, "s", &iface) > 0);
	if (strcmp(iface, MIFACE) == 0)
		s->model_props++;
	else
		s->manager_props++;
	s->changed[0] = 0;
	assert_true(sd_bus_message_enter_container(m, 'a', "{sv}") >= 0);
	while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
		assert_true(sd_bus_message_read(m, "s", &name) > 0);
		n += (size_t)snprintf(s->changed + n, sizeof(s->changed) - n, "%s ", name);
		s->limits_changed += strcmp(name, "Limits") == 0;
		s->holds_changed += strcmp(name, "Holds") == 0;
		assert_true(sd_bus_message_skip(m, "v") >= 0);
		assert_true(sd_bus_message_exit_container(m) >= 0);
	}
	return 0;
}

static int on_trip(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct seen *s = userdata;
	const char *trip, *dir;
	double t;

	(void)error;
	assert_true(sd_bus_message_read(m, "sds", &trip, &t, &dir) > 0);
	printf("TripCrossed %s %.1f C %s\n", trip, t, dir);
	if (strcmp(trip, "switch_on") == 0 || strcmp(trip, "control") == 0) {
		bool up = strcmp(dir, "up") == 0;

		s->switch_on_up += up && trip[0] == 's';
		s->switch_on_down += !up && trip[0] == 's';
		s->control_up += up && trip[0] == 'c';
	} else if (strcmp(dir, "up") == 0) {
		s->trips_up++;
	} else {
		s->trips_down++;
	}
	return 0;
}

static int on_object(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct seen *s = userdata;
	const char *path;

	(void)error;
	assert_true(sd_bus_message_read(m, "o", &path) > 0);
	assert_string_equal(path, PATH "/model/second");
	if (strcmp(sd_bus_message_get_member(m), "InterfacesAdded") == 0)
		s->objects_added++;
	else
		s->objects_removed++;
	return 0;
}

static void subscribe(sd_bus *bus, struct seen *s)
{
	assert_true(sd_bus_match_signal(bus, NULL, NAME, PATH, "org.freedesktop.DBus.ObjectManager",
					"InterfacesAdded", on_object, s) >= 0);
	assert_true(sd_bus_match_signal(bus, NULL, NAME, PATH, "org.freedesktop.DBus.ObjectManager",
					"InterfacesRemoved", on_object, s) >= 0);
	assert_true(sd_bus_match_signal(bus, NULL, NAME, PATH, IFACE, "BitsChanged",
					on_bits_changed, s) >= 0);
	assert_true(sd_bus_match_signal(bus, NULL, NAME, PATH, IFACE, "TripCrossed", on_trip, s) >=
		    0);
	assert_true(sd_bus_match_signal(bus, NULL, NAME, MPATH, "org.freedesktop.DBus.Properties",
					"PropertiesChanged", on_props_changed, s) >= 0);
	assert_true(sd_bus_match_signal(bus, NULL, NAME, PATH, "org.freedesktop.DBus.Properties",
					"PropertiesChanged", on_props_changed, s) >= 0);
}

/* Dispatch signals for up to SECONDS or until *FLAG >= WANT. */
static void pump(sd_bus *bus, double seconds, const unsigned *flag, unsigned want)
{
	double end = mono() + seconds;

	while (mono() < end && (!flag || *flag < want)) {
		int r = sd_bus_process(bus, NULL);

		assert_true(r >= 0);
		if (r == 0)
			sd_bus_wait(bus, 20000);
	}
}

static void test_manager_properties(void **state)
{
	sd_bus *bus = bus_connect();
	sd_bus_message *reply = NULL;
	char **govs = NULL;
	const char *name, *path;
	double t = NAN, p = NAN;
	bool has_pa = false;

	(void)state;
	assert_string_prop(bus, PATH, IFACE, "Version", "0.1.0");
	assert_string_prop(bus, PATH, IFACE, "Governor", "userspace");
	assert_string_prop(bus, PATH, IFACE, "GovernorFallback", "");
	assert_string_prop(bus, PATH, IFACE, "SensorSource", "simulator");
	assert_true(sd_bus_get_property_strv(bus, NAME, PATH, IFACE, "AvailableGovernors", NULL,
					     &govs) >= 0);
	for (int i = 0; govs[i]; i++) {
		has_pa |= strcmp(govs[i], "power_allocator") == 0;
		free(govs[i]);
	}
	free(govs);
	assert_true(has_pa);
	assert_true(sd_bus_get_property_trivial(bus, NAME, PATH, IFACE, "Temperature", NULL, 'd',
						&t) >= 0);
	assert_true(sd_bus_get_property_trivial(bus, NAME, PATH, IFACE, "Power", NULL, 'd', &p) >=
		    0);
	assert_true(t > 20 && t < 120);
	assert_true(p > 0 && p < 100);
	assert_true(sd_bus_get_property(bus, NAME, PATH, IFACE, "Models", NULL, &reply, "a(so)") >=
		    0);
	assert_true(sd_bus_message_read(reply, "a(so)", 1, &name, &path) > 0);
	assert_string_equal(name, "fmnist");
	assert_string_equal(path, MPATH);
	sd_bus_message_unref(reply);
	sd_bus_flush_close_unref(bus);
}

static void test_model_properties(void **state)
{
	sd_bus *bus = bus_connect();
	sd_bus_message *reply = NULL;
	char **layers = NULL, *file;
	const char *key;
	uint8_t lo, hi;
	uint64_t g;
	int n = 0, keys = 0;

	(void)state;
	assert_string_prop(bus, MPATH, MIFACE, "Name", "fmnist");
	file = get_string(bus, MPATH, MIFACE, "File");
	assert_non_null(strstr(file, ".bmx"));
	free(file);
	assert_true(sd_bus_get_property_strv(bus, NAME, MPATH, MIFACE, "LayerNames", NULL,
					     &layers) >= 0);
	for (; layers[n]; n++)
		free(layers[n]);
	free(layers);
	assert_int_equal(n, 8);
	assert_true(sd_bus_get_property_trivial(bus, NAME, MPATH, MIFACE, "Generation", NULL, 't',
						&g) >= 0);
	assert_int_equal(g % 2, 0);
	assert_true(sd_bus_get_property(bus, NAME, MPATH, MIFACE, "CurrentBits", NULL, &reply,
					"a(yy)") >= 0);
	assert_true(sd_bus_message_enter_container(reply, 'a', "(yy)") >= 0);
	for (n = 0; sd_bus_message_skip(reply, "(yy)") > 0;)
		n++;
	assert_int_equal(n, 8);
	reply = sd_bus_message_unref(reply);
	assert_true(sd_bus_get_property(bus, NAME, MPATH, MIFACE, "AvailableBits", NULL, &reply,
					"aay") >= 0);
	assert_true(sd_bus_message_enter_container(reply, 'a', "ay") >= 0);
	for (n = 0; sd_bus_message_skip(reply, "ay") > 0;)
		n++;
	assert_int_equal(n, 8);
	reply = sd_bus_message_unref(reply);
	assert_true(sd_bus_get_property(bus, NAME, MPATH, MIFACE, "Limits", NULL, &reply,
					"(yya(sy))") >= 0);
	assert_true(sd_bus_message_read(reply, "(yya(sy))", &lo, &hi, 0) > 0);
	assert_int_equal(lo, 2);
	assert_int_equal(hi, 8);
	reply = sd_bus_message_unref(reply);
	assert_true(sd_bus_get_property(bus, NAME, MPATH, MIFACE, "Holds", NULL, &reply,
					"a(usts)") >= 0);
	assert_true(sd_bus_message_enter_container(reply, 'a', "(usts)") >= 0);
	assert_int_equal(sd_bus_message_skip(reply, "(usts)"), 0);
	reply = sd_bus_message_unref(reply);
	assert_true(sd_bus_get_property(bus, NAME, MPATH, MIFACE, "Stats", NULL, &reply, "a{sv}") >=
		    0);
	assert_true(sd_bus_message_enter_container(reply, 'a', "{sv}") >= 0);
	while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
		assert_true(sd_bus_message_read(reply, "s", &key) > 0);
		keys += strcmp(key, "samples_completed") == 0 || strcmp(key, "average_bits") == 0 ||
			strcmp(key, "time_in_state_ns") == 0 ||
			strcmp(key, "transition_table") == 0;
		assert_true(sd_bus_message_skip(reply, "v") >= 0);
		assert_true(sd_bus_message_exit_container(reply) >= 0);
	}
	assert_int_equal(keys, 4);
	sd_bus_message_unref(reply);
	sd_bus_flush_close_unref(bus);
}

/* Stats carries adaptive traffic's figures: one more cascade request, one more in the count. */
static void read_adaptive_stats(sd_bus *bus, uint64_t *requests, double *bitops, double *ceiling)
{
	sd_bus_message *reply = NULL;
	const char *key;

	*requests = 0, *bitops = *ceiling = -1;
	assert_true(sd_bus_get_property(bus, NAME, MPATH, MIFACE, "Stats", NULL, &reply, "a{sv}") >=
		    0);
	assert_true(sd_bus_message_enter_container(reply, 'a', "{sv}") >= 0);
	while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
		assert_true(sd_bus_message_read(reply, "s", &key) > 0);
		if (strcmp(key, "adaptive_requests") == 0)
			assert_true(sd_bus_message_read(reply, "v", "t", requests) > 0);
		else if (strcmp(key, "adaptive_bitops_per_request") == 0)
			assert_true(sd_bus_message_read(reply, "v", "d", bitops) > 0);
		else if (strcmp(key, "adaptive_ceiling_bitops_per_request") == 0)
			assert_true(sd_bus_message_read(reply, "v", "d", ceiling) > 0);
		else
			assert_true(sd_bus_message_skip(reply, "v") >= 0);
		assert_true(sd_bus_message_exit_container(reply) >= 0);
	}
	sd_bus_message_unref(reply);
}

static void test_adaptive_stats(void **state)
{
	sd_bus *bus = bus_connect();
	struct bitmix_result res;
	struct bitmix_model *m;
	struct bitmix *bm;
	uint64_t r0, r1;
	double b0, b1, c1;
	float *in, *out;

	(void)state;
	read_adaptive_stats(bus, &r0, &b0, &c1);
	assert_int_equal(bitmix_connect(daemon_h.socket, &bm), 0);
	assert_int_equal(bitmix_open_model(bm, "fmnist", &m), 0);
	in = bitmix_tensor_alloc(bm, 28 * 28 * sizeof(float));
	out = bitmix_tensor_alloc(bm, 10 * sizeof(float));
	for (int i = 0; i < 28 * 28; i++)
		in[i] = (float)(i % 17) / 17.0f;
	assert_int_equal(bitmix_infer_precision(m, in, out, 1, BITMIX_INFER_CASCADE, &res), 0);
	assert_true(res.bitops > 0);
	bitmix_close(bm);
	read_adaptive_stats(bus, &r1, &b1, &c1);
	printf("adaptive over D-Bus: %llu request(s), %.4g BitOps/request (%.4g at the ceiling)\n",
	       (unsigned long long)r1, b1, c1);
	assert_int_equal(r1, r0 + 1);
	assert_true(b1 > 0 && b1 <= c1);
	if (r0 == 0)
		assert_true(b1 == (double)res.bitops);
	sd_bus_flush_close_unref(bus);
}

/* SetBits publishes: the reply's generation, BitsChanged with the bits, PropertiesChanged. */
static void test_set_bits_and_signals(void **state)
{
	sd_bus *bus = bus_connect();
	struct seen s = { 0 };
	uint64_t g;

	(void)state;
	subscribe(bus, &s);
	g = set_uniform_bits(bus, 4);
	pump(bus, 5, &s.model_props, 1);
	pump(bus, 5, &s.bits_changed, 1);
	assert_int_equal(s.bits_changed, 1);
	assert_int_equal(s.last_generation, g);
	assert_int_equal(s.n_last_bits, 8);
	assert_int_equal(s.last_bits[3][0], 4);
	assert_int_equal(s.last_bits[0][0], 8);
	assert_non_null(strstr(s.changed, "CurrentBits"));
	/* The same bits again publish nothing new: no signal. */
	s.bits_changed = 0;
	assert_int_equal(set_uniform_bits(bus, 4), g);
	pump(bus, 0.3, NULL, 0);
	assert_int_equal(s.bits_changed, 0);
	/* Wrong layer count, a width a layer does not allow. */
	call_fails(bus, MPATH, MIFACE, "SetBits", SD_BUS_ERROR_INVALID_ARGS, "a(yy)", 2, 8, 8, 8,
		   8);
	assert_non_null(
		strstr(call_fails(bus, MPATH, MIFACE, "SetBits", SD_BUS_ERROR_INVALID_ARGS, "a(yy)",
				  8, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 8, 8),
		       "cannot run at"));
	sd_bus_flush_close_unref(bus);
}

static void test_governor(void **state)
{
	sd_bus *bus = bus_connect();
	struct seen s = { 0 };
	const char *msg;

	(void)state;
	subscribe(bus, &s);
	msg = call_fails(bus, PATH, IFACE, "SetGovernor", "org.bitmix.Daemon1.Error.NoSuchGovernor",
			 "s", "turbo");
	assert_non_null(strstr(msg, "available: performance"));
	call_ok(bus, PATH, IFACE, "SetGovernor", NULL, "s", "performance");
	pump(bus, 5, &s.manager_props, 1);
	assert_string_prop(bus, PATH, IFACE, "Governor", "performance");
	/* The socket's EBUSY, said the D-Bus way. */
	msg = call_fails(bus, MPATH, MIFACE, "SetBits", "org.bitmix.Daemon1.Error.GovernorBusy",
			 "a(yy)", 8, 8, 8, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 8, 8);
	assert_non_null(strstr(msg, "switch to userspace"));
	call_ok(bus, PATH, IFACE, "SetGovernor", NULL, "s", "userspace");
	assert_string_prop(bus, PATH, IFACE, "Governor", "userspace");
	sd_bus_flush_close_unref(bus);
}

/* SetGovernorWithTunables: the parser's own checks and messages; GovernorTunables reads back. */
static void test_governor_tunables(void **state)
{
	sd_bus *bus = bus_connect();
	sd_bus_message *reply = NULL;
	struct seen s = { 0 };
	const char *key, *msg;
	unsigned states = 0;
	double temp = 0, hyst = 0;

	(void)state;
	subscribe(bus, &s);
	msg = call_fails(bus, PATH, IFACE, "SetGovernorWithTunables", SD_BUS_ERROR_INVALID_ARGS,
			 "sa{sv}", "power_allocator", 1, "switch_on_temp_c", "d", 500.0);
	assert_non_null(strstr(msg, "governor.power_allocator.switch_on_temp_c"));
	msg = call_fails(bus, PATH, IFACE, "SetGovernorWithTunables", SD_BUS_ERROR_INVALID_ARGS,
			 "sa{sv}", "step_wise", 1, "warp", "u", 3);
	assert_non_null(strstr(msg, "no tunable \"warp\""));
	msg = call_fails(bus, PATH, IFACE, "SetGovernorWithTunables", SD_BUS_ERROR_INVALID_ARGS,
			 "sa{sv}", "step_wise", 1, "trips", "s", "[{temp: 50}, {temp: 40}]");
	printf("bad trips: %s\n", msg);
	assert_string_prop(bus, PATH, IFACE, "Governor", "userspace");
	call_ok(bus, PATH, IFACE, "SetGovernorWithTunables", NULL, "sa{sv}", "step_wise", 2,
		"states", "u", 3, "trips", "s", "[{temp: 38, hysteresis: 2}]");
	assert_string_prop(bus, PATH, IFACE, "Governor", "step_wise");
	assert_true(sd_bus_get_property(bus, NAME, PATH, IFACE, "GovernorTunables", NULL, &reply,
					"a{sv}") >= 0);
	assert_true(sd_bus_message_enter_container(reply, 'a', "{sv}") >= 0);
	while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
		assert_true(sd_bus_message_read(reply, "s", &key) > 0);
		if (strcmp(key, "states") == 0)
			assert_true(sd_bus_message_read(reply, "v", "u", &states) > 0);
		else
			assert_true(sd_bus_message_read(reply, "v", "a(dd)", 1, &temp, &hyst) > 0);
		assert_true(sd_bus_message_exit_container(reply) >= 0);
	}
	sd_bus_message_unref(reply);
	assert_int_equal(states, 3);
	assert_true(temp == 38 && hyst == 2);
	/* TunableInfo: the governors' tables, here step_wise's states as declared. */
	reply = NULL;
	assert_true(sd_bus_get_property(bus, NAME, PATH, IFACE, "TunableInfo", NULL, &reply,
					"a(sssddsss)") >= 0);
	assert_true(sd_bus_message_enter_container(reply, 'a', "(sssddsss)") >= 0);
	bool found = false;
	const char *gov, *type, *def, *unit, *doc;
	double lo, hi;
	while (sd_bus_message_read(reply, "(sssddsss)", &gov, &key, &type, &lo, &hi, &def, &unit,
				   &doc) > 0)
		if (strcmp(gov, "step_wise") == 0 && strcmp(key, "states") == 0)
			found = strcmp(type, "unsigned") == 0 && lo == 1 && hi == 64 &&
				strcmp(def, "6") == 0 && doc[0];
	sd_bus_message_unref(reply);
	assert_true(found);
	pump(bus, 5, &s.manager_props, 1);
	assert_true(s.manager_props >= 1);
	call_ok(bus, PATH, IFACE, "SetGovernor", NULL, "s", "userspace");
	sd_bus_flush_close_unref(bus);
}

static void test_limits(void **state)
{
	sd_bus *bus = bus_connect();
	sd_bus_message *reply = NULL;
	struct seen s = { 0 };
	const char *layer;
	uint8_t lo, hi, bits;

	(void)state;
	subscribe(bus, &s);
	assert_non_null(strstr(call_fails(bus, MPATH, MIFACE, "SetLimits",
					  SD_BUS_ERROR_INVALID_ARGS, "yya(sy)", 3, 9, 0),
			       "not within 2..8"));
	assert_non_null(
		strstr(call_fails(bus, MPATH, MIFACE, "SetLimits", SD_BUS_ERROR_INVALID_ARGS,
				  "yya(sy)", 2, 8, 1, "nosuchlayer", 4),
		       "no layer"));
	call_ok(bus, MPATH, MIFACE, "SetLimits", NULL, "yya(sy)", 3, 6, 1, "block2.dw", 2);
	pump(bus, 5, &s.limits_changed, 1);
	assert_int_equal(s.limits_changed, 1);
	assert_true(sd_bus_get_property(bus, NAME, MPATH, MIFACE, "Limits", NULL, &reply,
					"(yya(sy))") >= 0);
	assert_true(sd_bus_message_enter_container(reply, 'r', "yya(sy)") >= 0);
	assert_true(sd_bus_message_read(reply, "yy", &lo, &hi) > 0);
	assert_true(sd_bus_message_read(reply, "a(sy)", 1, &layer, &bits) > 0);
	assert_int_equal(lo, 3);
	assert_int_equal(hi, 6);
	assert_string_equal(layer, "block2.dw");
	assert_int_equal(bits, 2);
	sd_bus_message_unref(reply);
	call_ok(bus, MPATH, MIFACE, "SetLimits", NULL, "yya(sy)", 2, 8, 0);
	sd_bus_flush_close_unref(bus);
}

static void test_unknown_model(void **state)
{
	sd_bus *bus = bus_connect();
	sd_bus_error error = SD_BUS_ERROR_NULL;
	char *s = NULL;

	(void)state;
	call_fails(bus, PATH, IFACE, "GetModel", "org.bitmix.Daemon1.Error.NoSuchModel", "s",
		   "nope");
	call_fails(bus, PATH, IFACE, "UnloadModel", "org.bitmix.Daemon1.Error.NoSuchModel", "s",
		   "nope");
	assert_true(sd_bus_get_property_string(bus, NAME, PATH "/model/nope", MIFACE, "Name",
					       &error, &s) < 0);
	sd_bus_error_free(&error);
	sd_bus_flush_close_unref(bus);
}

static void write_corrupt_model(const char *path)
{
	FILE *in = fopen(model_path, "rb"), *out = fopen(path, "wb");
	char buf[4096];
	size_t n;
	long off = 0;

	assert_non_null(in);
	assert_non_null(out);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
		if (off == 8192)
			buf[100] ^= 0x5a; /* one flipped byte: the checksum must catch it */
		fwrite(buf, 1, n, out);
		off += (long)n;
	}
	fclose(in);
	fclose(out);
}

static int count_models(sd_bus *bus)
{
	sd_bus_message *reply = NULL;
	int n = 0;

	assert_true(sd_bus_get_property(bus, NAME, PATH, IFACE, "Models", NULL, &reply, "a(so)") >=
		    0);
	assert_true(sd_bus_message_enter_container(reply, 'a', "(so)") >= 0);
	while (sd_bus_message_skip(reply, "(so)") > 0)
		n++;
	sd_bus_message_unref(reply);
	return n;
}

/*
 * What LoadModel reads (issue 21): nothing outside model_folders, with one answer whether the
 * file exists or not; no symlink followed; a FIFO refused at once instead of blocking the
 * daemon; LoadModelFd with a descriptor the caller opened, and only a regular file.
 */
static void load_model_safety(sd_bus *bus, const char *model)
{
	char fifo[160], link[160], want[200];
	sd_bus_message *reply = NULL;
	const char *msg;
	int fd, pipefd[2];

	alarm(300); /* safety net: before the fix, the FIFO blocked the daemon for good */
	msg = call_fails(bus, PATH, IFACE, "LoadModel", SD_BUS_ERROR_ACCESS_DENIED, "ss", "x",
			 "/etc/shadow");
	assert_non_null(strstr(msg, "/etc/shadow is not beneath a folder of model_folders"));
	msg = call_fails(bus, PATH, IFACE, "LoadModel", SD_BUS_ERROR_ACCESS_DENIED, "ss", "x",
			 "/etc/no-such-file");
	assert_non_null(strstr(msg, "/etc/no-such-file is not beneath a folder of model_folders"));
	snprintf(link, sizeof(link), "%s/link.bmx", daemon_h.dir);
	assert_int_equal(symlink(model, link), 0);
	msg = call_fails(bus, PATH, IFACE, "LoadModel", "org.bitmix.Daemon1.Error.LoadFailed", "ss",
			 "x", link);
	assert_non_null(strstr(msg, "a symbolic link (not followed)"));
	snprintf(link, sizeof(link), "/tmp/../etc/shadow");
	msg = call_fails(bus, PATH, IFACE, "LoadModel", "org.bitmix.Daemon1.Error.LoadFailed", "ss",
			 "x", link);
	assert_non_null(strstr(msg, "leads out of its model folder"));
	snprintf(fifo, sizeof(fifo), "%s/fifo.bmx", daemon_h.dir);
	assert_int_equal(mkfifo(fifo, 0644), 0);
	msg = call_fails(bus, PATH, IFACE, "LoadModel", "org.bitmix.Daemon1.Error.LoadFailed", "ss",
			 "x", fifo);
	snprintf(want, sizeof(want), "%s is not a regular file", fifo);
	assert_non_null(strstr(msg, want));
	/* The caller's own descriptor: a model loads, a pipe does not. */
	fd = open(model, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	call_ok(bus, PATH, IFACE, "LoadModelFd", &reply, "sh", "byfd", fd);
	sd_bus_message_unref(reply);
	close(fd);
	assert_int_equal(count_models(bus), 2);
	call_ok(bus, PATH, IFACE, "UnloadModel", NULL, "s", "byfd");
	assert_int_equal(pipe(pipefd), 0);
	msg = call_fails(bus, PATH, IFACE, "LoadModelFd", "org.bitmix.Daemon1.Error.LoadFailed",
			 "sh", "x", pipefd[0]);
	assert_non_null(strstr(msg, "the descriptor passed is not a regular file"));
	close(pipefd[0]);
	close(pipefd[1]);
	/* bitmixctl load opens the file itself and passes the descriptor. */
	{
		char cmd[1024], out[2048];

		snprintf(cmd, sizeof(cmd), "%s --bus-address=%s load byctl %s 2>&1", bitmixctl_path,
			 pbus.address, model);
		if (harness_run(cmd, out, sizeof(out)) != 0 || !strstr(out, "loaded byctl from"))
			fail_msg("%s: %s", cmd, out);
		snprintf(cmd, sizeof(cmd), "%s --bus-address=%s unload byctl 2>&1", bitmixctl_path,
			 pbus.address);
		if (harness_run(cmd, out, sizeof(out)) != 0)
			fail_msg("%s: %s", cmd, out);
	}
	alarm(0);
}

/* LoadModel, a corrupt one refused with the loader's reason, UnloadModel under a client. */
static void test_load_unload(void **state)
{
	sd_bus *bus = bus_connect();
	sd_bus_message *reply = NULL;
	struct seen s = { 0 };
	struct bitmix *bm;
	struct bitmix_model *m;
	char corrupt[160], *abs = realpath(model_path, NULL);
	const char *path, *msg;
	float *in, *out;

	(void)state;
	assert_non_null(abs);
	subscribe(bus, &s);
	call_ok(bus, PATH, IFACE, "LoadModel", &reply, "ss", "second", abs);
	assert_true(sd_bus_message_read(reply, "o", &path) > 0);
	assert_string_equal(path, PATH "/model/second");
	reply = sd_bus_message_unref(reply);
	assert_int_equal(count_models(bus), 2);
	assert_string_prop(bus, PATH "/model/second", MIFACE, "Name", "second");
	pump(bus, 5, &s.objects_added, 1);
	assert_int_equal(s.objects_added, 1);
	call_fails(bus, PATH, IFACE, "LoadModel", SD_BUS_ERROR_FILE_EXISTS, "ss", "second", abs);
	call_fails(bus, PATH, IFACE, "LoadModel", SD_BUS_ERROR_INVALID_ARGS, "ss", "bad/name", abs);
	snprintf(corrupt, sizeof(corrupt), "%s/corrupt.bmx", daemon_h.dir);
	write_corrupt_model(corrupt);
	msg = call_fails(bus, PATH, IFACE, "LoadModel", "org.bitmix.Daemon1.Error.LoadFailed", "ss",
			 "broken", corrupt);
	printf("LoadModel of a corrupt file: %s\n", msg);
	assert_non_null(strstr(msg, "not a valid model"));
	assert_int_equal(count_models(bus), 2);

	/* A client uses "second"; after UnloadModel its next request fails cleanly, fmnist works. */
	assert_int_equal(bitmix_connect(daemon_h.socket, &bm), 0);
	assert_int_equal(bitmix_open_model(bm, "second", &m), 0);
	in = bitmix_tensor_alloc(bm, 28 * 28 * sizeof(float));
	out = bitmix_tensor_alloc(bm, 10 * sizeof(float));
	memset(in, 0, 28 * 28 * sizeof(float));
	assert_int_equal(bitmix_infer(m, in, out, 1, NULL), 0);
	call_ok(bus, PATH, IFACE, "UnloadModel", NULL, "s", "second");
	assert_int_equal(count_models(bus), 1);
	pump(bus, 5, &s.objects_removed, 1);
	assert_int_equal(s.objects_removed, 1);
	assert_int_equal(bitmix_infer(m, in, out, 1, NULL), -ENODEV);
	assert_int_equal(bitmix_open_model(bm, "fmnist", &m), 0);
	assert_int_equal(bitmix_infer(m, in, out, 1, NULL), 0);
	bitmix_close(bm);
	load_model_safety(bus, abs);
	free(abs);
	sd_bus_flush_close_unref(bus);
}

/* Reload of a broken file: the file:line:column message comes back, the daemon serves on. */
static void test_reload(void **state)
{
	sd_bus *bus = bus_connect();
	char broken[1200], where[200];
	const char *msg;

	(void)state;
	snprintf(broken, sizeof(broken), "%slimits:\n  in_flight: 0\n", extra_yaml);
	assert_int_equal(harness_write_config(&daemon_h, model_path, broken), 0);
	msg = call_fails(bus, PATH, IFACE, "Reload", "org.bitmix.Daemon1.Error.ReloadFailed", NULL);
	printf("Reload of a broken file: %s\n", msg);
	snprintf(where, sizeof(where), "%s:", daemon_h.config);
	assert_non_null(strstr(msg, where));
	assert_non_null(strstr(msg, ":14: limits.in_flight: \"0\" is not a number"));
	assert_string_prop(bus, PATH, IFACE, "Governor", "userspace");
	assert_int_equal(harness_write_config(&daemon_h, model_path, extra_yaml), 0);
	call_ok(bus, PATH, IFACE, "Reload", NULL, NULL);
	assert_int_equal(count_models(bus), 1);
	sd_bus_flush_close_unref(bus);
}

static unsigned count_holds(sd_bus *bus, char *owner, size_t size)
{
	sd_bus_message *reply = NULL;
	const char *kind, *who;
	uint64_t value;
	uint32_t id;
	unsigned n = 0;

	assert_true(sd_bus_get_property(bus, NAME, MPATH, MIFACE, "Holds", NULL, &reply,
					"a(usts)") >= 0);
	assert_true(sd_bus_message_enter_container(reply, 'a', "(usts)") >= 0);
	while (sd_bus_message_read(reply, "(usts)", &id, &kind, &value, &who) > 0) {
		if (owner)
			snprintf(owner, size, "%s", who);
		n++;
	}
	sd_bus_message_unref(reply);
	return n;
}

/* A hold belongs to its peer's bus connection and goes when the peer leaves the bus. */
static void test_hold_dropped_with_peer(void **state)
{
	sd_bus *bus = bus_connect(), *holder = bus_connect();
	sd_bus_message *reply = NULL;
	struct seen s = { 0 };
	const char *unique = NULL;
	char owner[64] = "";
	uint32_t id;
	unsigned n = 1;

	(void)state;
	subscribe(bus, &s);
	call_fails(holder, MPATH, MIFACE, "Hold", SD_BUS_ERROR_INVALID_ARGS, "st", "min-bits", 9);
	call_fails(holder, MPATH, MIFACE, "Hold", SD_BUS_ERROR_INVALID_ARGS, "st", "warmth", 1);
	call_ok(holder, MPATH, MIFACE, "Hold", &reply, "st", "min-bits", 6);
	assert_true(sd_bus_message_read(reply, "u", &id) > 0);
	sd_bus_message_unref(reply);
	assert_int_equal(count_holds(bus, owner, sizeof(owner)), 1);
	assert_true(sd_bus_get_unique_name(holder, &unique) >= 0);
	assert_string_equal(owner, unique);
	/* Another peer may not release it. */
	call_fails(bus, MPATH, MIFACE, "Release", SD_BUS_ERROR_ACCESS_DENIED, "u", id);
	sd_bus_flush_close_unref(holder);
	for (int i = 0; i < 100 && n; i++) {
		usleep(20000);
		n = count_holds(bus, NULL, 0);
	}
	assert_int_equal(n, 0);
	pump(bus, 5, &s.holds_changed, 2);
	assert_int_equal(s.holds_changed, 2); /* placed, then dropped with its peer */
	/* Released by its owner the ordinary way. */
	call_ok(bus, MPATH, MIFACE, "Hold", &reply, "st", "max-latency-ns", 1000000);
	assert_true(sd_bus_message_read(reply, "u", &id) > 0);
	sd_bus_message_unref(reply);
	call_ok(bus, MPATH, MIFACE, "Release", NULL, "u", id);
	call_fails(bus, MPATH, MIFACE, "Release", "org.bitmix.Daemon1.Error.NoSuchHold", "u", id);
	assert_int_equal(count_holds(bus, NULL, 0), 0);
	sd_bus_flush_close_unref(bus);
}

/* The child's part of the access test, as nobody: may read, may not change. */
static int as_nobody(void *arg)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus *bus = NULL;
	char *gov = NULL;

	(void)arg;
	if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, pbus.address) < 0 ||
	    sd_bus_set_bus_client(bus, 1) < 0 || sd_bus_start(bus) < 0)
		return 11;
	if (sd_bus_get_property_string(bus, NAME, PATH, IFACE, "Governor", &error, &gov) < 0)
		return 12;
	free(gov);
	if (sd_bus_call_method(bus, NAME, PATH, IFACE, "SetGovernor", &error, NULL, "s",
			       "powersave") >= 0)
		return 13;
	if (!sd_bus_error_has_name(&error, SD_BUS_ERROR_ACCESS_DENIED) ||
	    !strstr(error.message, "uid 65534 may not change the governor"))
		return 14;
	sd_bus_error_free(&error);
	if (sd_bus_call_method(bus, NAME, PATH, IFACE, "Reload", &error, NULL, NULL) >= 0 ||
	    !sd_bus_error_has_name(&error, SD_BUS_ERROR_ACCESS_DENIED))
		return 15;
	sd_bus_error_free(&error);
	sd_bus_flush_close_unref(bus);
	return 0;
}

static void test_access_denied_to_nobody(void **state)
{
	(void)state;
	harness_run_as_nobody(as_nobody, NULL);
	sd_bus *bus = bus_connect();

	assert_string_prop(bus, PATH, IFACE, "Governor", "userspace");
	sd_bus_flush_close_unref(bus);
}

/* As nobody, once dbus.admin_users names it: allowed on D-Bus and on the socket alike. */
static int nobody_as_admin(void *arg)
{
	struct bitmix_governor_info info;
	sd_bus_error error = SD_BUS_ERROR_NULL;
	struct bitmix *bm;
	sd_bus *bus = NULL;

	(void)arg;
	if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, pbus.address) < 0 ||
	    sd_bus_set_bus_client(bus, 1) < 0 || sd_bus_start(bus) < 0)
		return 11;
	if (sd_bus_call_method(bus, NAME, PATH, IFACE, "SetGovernor", &error, NULL, "s",
			       "powersave") < 0)
		return 12;
	sd_bus_flush_close_unref(bus);
	if (bitmix_connect(daemon_h.socket, &bm) < 0)
		return 13;
	if (bitmix_governor(bm, "userspace", &info) < 0 || strcmp(info.name, "userspace") != 0)
		return 14;
	bitmix_close(bm);
	return 0;
}

static void test_admin_users(void **state)
{
	char yaml[1200];
	sd_bus *bus = bus_connect();

	(void)state;
	if (geteuid() != 0)
		skip();
	snprintf(yaml, sizeof(yaml), "dbus:\n  address: %s\n  admin_users: [65534]\n%s",
		 pbus.address, machine_yaml);
	assert_int_equal(harness_write_config(&daemon_h, model_path, yaml), 0);
	call_ok(bus, PATH, IFACE, "Reload", NULL, NULL);
	harness_run_as_nobody(nobody_as_admin, NULL);
	assert_int_equal(harness_write_config(&daemon_h, model_path, extra_yaml), 0);
	call_ok(bus, PATH, IFACE, "Reload", NULL, NULL);
	assert_string_prop(bus, PATH, IFACE, "Governor", "userspace");
	sd_bus_flush_close_unref(bus);
}

/*
 * Switch the governor back and forth, performance (8 bits) and userspace (the 4 bits set
 * first): every switch publishes, and every publication must arrive as a BitsChanged.
 * (performance and powersave would not do: when the measured cost table is flat, as under a
 * busy machine, both pick the same bits.)
 */
static void test_no_bits_changed_missed(void **state)
{
	sd_bus *bus = bus_connect();
	struct seen s = { 0 };
	uint64_t g0, g1;
	const unsigned switches = 100;

	(void)state;
	set_uniform_bits(bus, 4);
	subscribe(bus, &s);
	assert_true(sd_bus_get_property_trivial(bus, NAME, MPATH, MIFACE, "Generation", NULL, 't',
						&g0) >= 0);
	for (unsigned i = 0; i < switches; i++) {
		call_ok(bus, PATH, IFACE, "SetGovernor", NULL, "s",
			i % 2 ? "userspace" : "performance");
		sd_bus_process(bus, NULL);
	}
	call_ok(bus, PATH, IFACE, "SetGovernor", NULL, "s", "userspace");
	assert_true(sd_bus_get_property_trivial(bus, NAME, MPATH, MIFACE, "Generation", NULL, 't',
						&g1) >= 0);
	pump(bus, 10, &s.bits_changed, (unsigned)((g1 - g0) / 2));
	printf("%u governor switches: %llu publications, %u BitsChanged, generations %s\n",
	       switches, (unsigned long long)((g1 - g0) / 2), s.bits_changed,
	       s.gaps ? "with gaps" : "contiguous");
	assert_int_equal(g1 - g0, 2 * switches);
	assert_int_equal(s.bits_changed, (g1 - g0) / 2);
	assert_false(s.gaps);
	assert_int_equal(s.last_generation, g1);
	sd_bus_flush_close_unref(bus);
}

/* step_wise's trip at 38 C: crossed up under inference load, back down when idle. */
static void test_trip_crossed(void **state)
{
	sd_bus *bus = bus_connect();
	struct seen s = { 0 };
	struct harness_load l;
	uint64_t g0, g1;

	(void)state;
	subscribe(bus, &s);
	assert_true(sd_bus_get_property_trivial(bus, NAME, MPATH, MIFACE, "Generation", NULL, 't',
						&g0) >= 0);
	call_ok(bus, PATH, IFACE, "SetGovernor", NULL, "s", "step_wise");
	harness_load_start(&l, daemon_h.socket);
	pump(bus, 30, &s.trips_up, 1);
	harness_load_stop(&l);
	assert_int_equal(s.trips_up, 1);
	assert_true(s.manager_props > 0); /* Temperature changed along the way */
	pump(bus, 30, &s.trips_down, 1);
	assert_int_equal(s.trips_down, 1);
	call_ok(bus, PATH, IFACE, "SetGovernor", NULL, "s", "userspace");
	/* step_wise moved the bits as it heated and cooled: every publication was announced. */
	assert_true(sd_bus_get_property_trivial(bus, NAME, MPATH, MIFACE, "Generation", NULL, 't',
						&g1) >= 0);
	pump(bus, 5, &s.bits_changed, (unsigned)((g1 - g0) / 2));
	printf("step_wise under load: %llu publications, %u BitsChanged, generations %s\n",
	       (unsigned long long)((g1 - g0) / 2), s.bits_changed,
	       s.gaps ? "with gaps" : "contiguous");
	assert_int_equal(s.bits_changed, (g1 - g0) / 2);
	assert_false(s.gaps);
	sd_bus_flush_close_unref(bus);
}

/* Wait up to SECONDS for the simulated package to cool below C degrees. */
static void wait_cooler(sd_bus *bus, double c, double seconds)
{
	double t = 1000;

	for (double end = mono() + seconds; mono() < end; usleep(100000)) {
		assert_true(sd_bus_get_property_trivial(bus, NAME, PATH, IFACE, "Temperature", NULL,
							'd', &t) >= 0);
		if (t < c)
			return;
	}
	fail_msg("still %.1f C after %.0f s, expected below %.1f C", t, seconds, c);
}

/* power_allocator's switch-on (34 C) and control (37 C) temperatures crossed under load. */
static void test_trip_crossed_power_allocator(void **state)
{
	sd_bus *bus = bus_connect();
	struct seen s = { 0 };
	struct harness_load l;

	(void)state;
	wait_cooler(bus, 33.5, 30);
	subscribe(bus, &s);
	call_ok(bus, PATH, IFACE, "SetGovernorWithTunables", NULL, "sa{sv}", "power_allocator", 2,
		"switch_on_temp_c", "d", 34.0, "control_temp_c", "d", 37.0);
	harness_load_start(&l, daemon_h.socket);
	pump(bus, 30, &s.control_up, 1);
	harness_load_stop(&l);
	assert_int_equal(s.switch_on_up, 1);
	assert_int_equal(s.control_up, 1);
	pump(bus, 30, &s.switch_on_down, 1);
	assert_int_equal(s.switch_on_down, 1);
	call_ok(bus, PATH, IFACE, "SetGovernor", NULL, "s", "userspace");
	sd_bus_flush_close_unref(bus);
}

/* CostTable: rows measured at batch 1 and at the large batch, and whether it is complete. */
static int read_cost_table(sd_bus *bus, unsigned *rows, unsigned measured[2], int *complete)
{
	sd_bus_message *reply = NULL;
	const char *cpu, *kernels, *source, *name;
	uint16_t allowed, m0, m1, pruned;
	uint32_t large;
	double complete_s, batch;
	const void *ns;
	size_t size;
	int layers = 0;

	*rows = measured[0] = measured[1] = 0;
	assert_true(sd_bus_get_property(bus, NAME, MPATH, MIFACE, "CostTable", NULL, &reply,
					"(sssuddba(sqqqqadad))") >= 0);
	assert_true(sd_bus_message_enter_container(reply, 'r', "sssuddba(sqqqqadad)") > 0);
	assert_true(sd_bus_message_read(reply, "sssuddb", &cpu, &kernels, &source, &large,
					&complete_s, &batch, complete) > 0);
	assert_true(*cpu && *kernels && strcmp(source, "measured") == 0);
	assert_int_equal(large, 256);
	assert_true(sd_bus_message_enter_container(reply, 'a', "(sqqqqadad)") > 0);
	while (sd_bus_message_enter_container(reply, 'r', "sqqqqadad") > 0) {
		assert_true(sd_bus_message_read(reply, "sqqqq", &name, &allowed, &m0, &m1,
						&pruned) > 0);
		assert_true(allowed != 0 && (pruned & ~allowed) == 0);
		for (int bi = 0; bi < 2; bi++) {
			assert_true(sd_bus_message_read_array(reply, 'd', &ns, &size) > 0);
			assert_int_equal(size, 7 * sizeof(double));
			for (int b = 2; b <= 8;
			     b++) /* every allowed bit-width has a time, measured or not */
				assert_true((((const double *)ns)[b - 2] > 0) ==
					    !!(allowed & (1u << b)));
		}
		*rows += (unsigned)__builtin_popcount(allowed);
		measured[0] += (unsigned)__builtin_popcount(allowed & m0);
		measured[1] += (unsigned)__builtin_popcount(allowed & m1);
		assert_true(sd_bus_message_exit_container(reply) >= 0);
		layers++;
	}
	sd_bus_message_unref(reply);
	return layers;
}

/* Every layer and bit-width is there at once; the rows become measured (the wait is a net). */
static void test_cost_table(void **state)
{
	sd_bus *bus = bus_connect();
	unsigned rows, measured[2];
	int complete = 0;
	char cmd[512], out[16384];
	double t0 = mono();

	(void)state;
	assert_int_equal(read_cost_table(bus, &rows, measured, &complete), 8);
	assert_int_equal(rows, 44); /* the bundled model: 6 layers at 2..8 bits, 2 at 8 only */
	while (!complete && mono() - t0 < 240) {
		usleep(200000);
		read_cost_table(bus, &rows, measured, &complete);
	}
	assert_true(complete);
	assert_int_equal(measured[0], rows);
	assert_int_equal(measured[1], rows);
	snprintf(cmd, sizeof(cmd), "%s --bus-address=%s --json cost fmnist", bitmixctl_path,
		 pbus.address);
	assert_int_equal(harness_run(cmd, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "\"measured_rows\":[44,44],\"complete\":true"));
	snprintf(cmd, sizeof(cmd), "%s --bus-address=%s status", bitmixctl_path, pbus.address);
	assert_int_equal(harness_run(cmd, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "cost table: complete, 44 rows measured at batch 1 and 256"));
	sd_bus_flush_close_unref(bus);
}

static void test_bitmixctl_json(void **state)
{
	static const char *const verbs[] = { "status", "governor",     "bits fmnist",
					     "holds",  "stats fmnist", "cost fmnist" };
	char cmd[512], out[16384];
	bool python = access("/usr/bin/python3", X_OK) == 0;

	(void)state;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		snprintf(cmd, sizeof(cmd), "%s --bus-address=%s --json %s%s", bitmixctl_path,
			 pbus.address, verbs[i], python ? " | /usr/bin/python3 -m json.tool" : "");
		assert_int_equal(harness_run(cmd, out, sizeof(out)), 0);
		assert_true(out[0] == '{');
	}
	/* The same verbs as JSON over the socket (--socket forces it). */
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(verbs[i], "holds") == 0)
			continue; /* D-Bus only */
		snprintf(cmd, sizeof(cmd), "%s --socket %s --json %s%s", bitmixctl_path,
			 daemon_h.socket, verbs[i],
			 python ? " | /usr/bin/python3 -m json.tool" : "");
		assert_int_equal(harness_run(cmd, out, sizeof(out)), 0);
		assert_true(out[0] == '{');
	}
	snprintf(cmd, sizeof(cmd), "%s --socket %s --json status", bitmixctl_path, daemon_h.socket);
	assert_int_equal(harness_run(cmd, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "\"bus\":null"));
	snprintf(cmd, sizeof(cmd), "%s --bus-address=%s --json status", bitmixctl_path,
		 pbus.address);
	assert_int_equal(harness_run(cmd, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "\"governor\":\"userspace\""));
	assert_non_null(strstr(out, "\"name\":\"fmnist\""));
	/* Setting over D-Bus, errors as the daemon words them. */
	snprintf(cmd, sizeof(cmd), "%s --bus-address=%s bits fmnist 6", bitmixctl_path,
		 pbus.address);
	assert_int_equal(harness_run(cmd, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "new bits at generation"));
	snprintf(cmd, sizeof(cmd), "%s --bus-address=%s governor turbo 2>&1", bitmixctl_path,
		 pbus.address);
	assert_int_equal(harness_run(cmd, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "no governor \"turbo\""));
	/* governor tunables: the governors' own tables, from TunableInfo. */
	snprintf(cmd, sizeof(cmd), "%s --bus-address=%s governor tunables step_wise",
		 bitmixctl_path, pbus.address);
	assert_int_equal(harness_run(cmd, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "step_wise tunables:"));
	assert_non_null(strstr(out, "1..64 states, default 6: cooling states"));
	snprintf(cmd, sizeof(cmd), "%s --bus-address=%s --json governor tunables power_allocator%s",
		 bitmixctl_path, pbus.address, python ? " | /usr/bin/python3 -m json.tool" : "");
	assert_int_equal(harness_run(cmd, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "sustainable_power_w"));
	snprintf(cmd, sizeof(cmd), "%s --bus-address=%s reload", bitmixctl_path, pbus.address);
	assert_int_equal(harness_run(cmd, out, sizeof(out)), 0);
}

static void test_bitmixctl_watch(void **state)
{
	char cmd[512], out[16384], *line = out;
	int lines = 0;

	(void)state;
	snprintf(cmd, sizeof(cmd),
		 "timeout 20 %s --bus-address=%s watch fmnist --count 3 --interval 0.2",
		 bitmixctl_path, pbus.address);
	assert_int_equal(harness_run(cmd, out, sizeof(out)), 0);
	printf("%s", out);
	for (; (line = strstr(line, "| fmnist gen=")); line++)
		lines++;
	assert_int_equal(lines, 3);
	assert_non_null(strstr(out, "temp_c="));
	assert_non_null(strstr(out, "samples_per_s="));
}

/* On a terminal: full-screen redraws; q quits, and so does Ctrl-C (SIGINT), both exit 0. */
static void watch_on_tty(bool by_key)
{
	char arg[200], out[65536];
	size_t n = 0;
	int fd, status = -1;
	pid_t pid;

	snprintf(arg, sizeof(arg), "--bus-address=%s", pbus.address);
	pid = forkpty(&fd, NULL, NULL, NULL);
	assert_true(pid >= 0);
	if (pid == 0) {
		execl(bitmixctl_path, "bitmixctl", arg, "watch", "--interval", "0.2", (char *)NULL);
		_exit(127);
	}
	for (double end = mono() + 1.2; mono() < end;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t k;

		if (poll(&p, 1, 50) > 0 && (k = read(fd, out + n, sizeof(out) - 1 - n)) > 0)
			n += (size_t)k;
	}
	out[n] = 0;
	if (by_key)
		assert_int_equal(write(fd, "q", 1), 1);
	else
		kill(pid, SIGINT);
	for (int i = 0; i < 150 && waitpid(pid, &status, WNOHANG) == 0; i++) {
		char drain[4096];
		struct pollfd p = { .fd = fd, .events = POLLIN };

		/* Keep the terminal drained; once the child is gone, reads fail with EIO. */
		if (poll(&p, 1, 20) <= 0 || read(fd, drain, sizeof(drain)) < 0)
			usleep(20000);
	}
	if (status == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail_msg("bitmixctl watch did not exit on %s", by_key ? "q" : "SIGINT");
	}
	close(fd);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_non_null(strstr(out, "\033[H\033[J"));
	assert_non_null(strstr(out, "block2.dw"));
	assert_non_null(strstr(out, "temperature"));
}

static void test_bitmixctl_watch_tty(void **state)
{
	(void)state;
	watch_on_tty(true);
	watch_on_tty(false);
}

static void test_busctl(void **state)
{
	char cmd[512], out[16384];

	(void)state;
	if (access("/usr/bin/busctl", X_OK) < 0)
		skip();
	snprintf(cmd, sizeof(cmd), "busctl --address=%s tree " NAME, pbus.address);
	assert_int_equal(harness_run(cmd, out, sizeof(out)), 0);
	assert_non_null(strstr(out, MPATH));
	snprintf(cmd, sizeof(cmd),
		 "busctl --address=%s get-property " NAME " " PATH " " IFACE " Governor",
		 pbus.address);
	assert_int_equal(harness_run(cmd, out, sizeof(out)), 0);
	assert_string_equal(out, "s \"userspace\"\n");
	snprintf(cmd, sizeof(cmd),
		 "busctl --address=%s call " NAME " " MPATH " " MIFACE
		 " SetBits 'a(yy)' 8 8 8 5 5 5 5 5 5 5 5 5 5 5 5 8 8",
		 pbus.address);
	assert_int_equal(harness_run(cmd, out, sizeof(out)), 0);
	assert_true(strncmp(out, "t ", 2) == 0);
}

static int by_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Not a pass/fail test: the round trips the API costs, printed for docs/dbus.md. */
static void test_latency(void **state)
{
	enum { N = 2000 };
	static double get_us[N], set_us[N];
	sd_bus *bus = bus_connect();

	(void)state;
	for (int i = 0; i < N; i++) {
		char *s = NULL;
		double t0 = mono();

		assert_true(sd_bus_get_property_string(bus, NAME, PATH, IFACE, "Governor", NULL,
						       &s) >= 0);
		get_us[i] = (mono() - t0) * 1e6;
		free(s);
	}
	for (int i = 0; i < N; i++) {
		double t0 = mono();

		set_uniform_bits(bus, i % 2 ? 4 : 6);
		set_us[i] = (mono() - t0) * 1e6;
	}
	qsort(get_us, N, sizeof(double), by_double);
	qsort(set_us, N, sizeof(double), by_double);
	printf("latency over D-Bus, %d calls each: Get(Governor) p50 %.0f us p99 %.0f us; "
	       "SetBits p50 %.0f us p99 %.0f us\n",
	       N, get_us[N / 2], get_us[N * 99 / 100], set_us[N / 2], set_us[N * 99 / 100]);
	assert_true(get_us[N / 2] < 100000);
	sd_bus_flush_close_unref(bus);
}

static int group_setup(void **state)
{
	int r;

	(void)state;
	r = private_bus_start(&pbus, policy_path);
	if (r < 0) {
		fprintf(stderr, "could not start a private dbus-daemon: %s\n", strerror(-r));
		private_bus_stop(&pbus);
		return -1;
	}
	{
		/* LoadModel reads beneath these only: the model's folder and the harness's in /tmp. */
		char *abs = realpath(model_path, NULL), *slash = abs ? strrchr(abs, '/') : NULL;

		if (slash)
			*slash = 0;
		snprintf(extra_yaml, sizeof(extra_yaml),
			 "dbus:\n  address: %s\nmodel_folders: [%s, /tmp]\n%s", pbus.address,
			 abs ? abs : "/nonexistent", machine_yaml);
		free(abs);
	}
	if (harness_start(&daemon_h, bitmixd_path, model_path, extra_yaml) < 0 ||
	    !private_bus_wait_name(&pbus, NAME, 5000)) {
		fprintf(stderr, "bitmixd did not come up on %s\n", pbus.address);
		/* cmocka runs no teardown after a failed setup: stop both here. */
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
	if (status != 0)
		fprintf(stderr, "bitmixd exited with %d (log in %s)\n", status, daemon_h.log);
	harness_cleanup(&daemon_h);
	private_bus_stop(&pbus);
	return status == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manager_properties),
		cmocka_unit_test(test_model_properties),
		cmocka_unit_test(test_set_bits_and_signals),
		cmocka_unit_test(test_adaptive_stats),
		cmocka_unit_test(test_governor),
		cmocka_unit_test(test_governor_tunables),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_unknown_model),
		cmocka_unit_test(test_load_unload),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_hold_dropped_with_peer),
		cmocka_unit_test(test_access_denied_to_nobody),
		cmocka_unit_test(test_admin_users),
		cmocka_unit_test(test_no_bits_changed_missed),
		cmocka_unit_test(test_trip_crossed),
		cmocka_unit_test(test_trip_crossed_power_allocator),
		cmocka_unit_test(test_cost_table),
		cmocka_unit_test(test_bitmixctl_json),
		cmocka_unit_test(test_bitmixctl_watch),
		cmocka_unit_test(test_bitmixctl_watch_tty),
		cmocka_unit_test(test_busctl),
		cmocka_unit_test(test_latency),
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
		printf("SKIP: no /usr/bin/dbus-daemon (package dbus-daemon; tools/setup-deps.sh installs it)\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
