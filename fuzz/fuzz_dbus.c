/* SPDX-License-Identifier: MIT */
/*
 * fuzz_dbus.c — libFuzzer target for bitmixd's D-Bus methods and properties (daemon/dbus*.c):
 * org.bitmix.Daemon1 on /org/bitmix/Daemon1 and org.bitmix.Model1 on each model's object.
 *
 * The daemon's vtables are registered, unchanged, on the server end of a peer-to-peer sd-bus
 * connection over a socketpair (no dbus-daemon: the peer is this process, uid 0, so the admin
 * checks pass, as they do for root); the fuzzer is the client end. One input is a list of method
 * calls: a byte picks the object, interface and member (every method, Properties.Get/GetAll/Set,
 * Introspect), a byte says whether the arguments follow the member's signature or another's (so
 * sd-bus's own signature check is crossed too), and the remaining bytes fill the arguments:
 * numbers, strings (raw, or a name the daemon knows: governors, tunables, models, hold kinds),
 * arrays, structs, dictionaries and variants of any basic type. sd-bus then dispatches each call
 * to the daemon's handler exactly as it does on the system bus.
 *
 * Not covered: the sender credentials of a real bus (the peer is root here), LoadModel's
 * arguments (a few fixed names and files: fuzzing paths would read FIFOs and devices, and any
 * model without a cached cost table starts a measuring thread), and Reload (event_loop.c is
 * stubbed: fuzz/proto_stubs.c). The daemon behind is the
 * one fuzz_proto.c sets up (daemon_fixture.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-id128.h>
#include <unistd.h>

#include "dbus_internal.h"
#include "daemon_fixture.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sd_bus *server, *client;

struct cursor {
	const uint8_t *p;
	size_t n;
};

static uint8_t take(struct cursor *c)
{
	if (!c->n)
		return 0;
	c->n--;
	return *c->p++;
}

static void take_bytes(struct cursor *c, void *out, size_t n)
{
	memset(out, 0, n);
	if (n > c->n)
		n = c->n;
	memcpy(out, c->p, n);
	c->p += n;
	c->n -= n;
}

struct call {
	const char *path, *iface, *member, *signature;
};

#define D DBUS_PATH
#define M DBUS_MODEL_PREFIX "/tiny"
#define PROPS "org.freedesktop.DBus.Properties"
static const struct call calls[] = {
	{ D, DBUS_IFACE, "SetGovernor", "s" },
	{ D, DBUS_IFACE, "SetGovernorWithTunables", "sa{sv}" },
	{ D, DBUS_IFACE, "GetModel", "s" },
	{ D, DBUS_IFACE, "LoadModel", "ss" },
	{ D, DBUS_IFACE, "UnloadModel", "s" },
	{ D, DBUS_IFACE, "Reload", "" },
	{ M, DBUS_MODEL_IFACE, "SetBits", "a(yy)" },
	{ M, DBUS_MODEL_IFACE, "SetLimits", "yya(sy)" },
	{ M, DBUS_MODEL_IFACE, "Hold", "st" },
	{ M, DBUS_MODEL_IFACE, "Release", "u" },
	{ D, PROPS, "GetAll", "s" },
	{ M, PROPS, "GetAll", "s" },
	{ D, PROPS, "Get", "ss" },
	{ M, PROPS, "Get", "ss" },
	{ D, PROPS, "Set", "ssv" },
	{ M, "org.freedesktop.DBus.Introspectable", "Introspect", "" },
	{ D "/model", "org.freedesktop.DBus.Introspectable", "Introspect", "" },
	{ DBUS_MODEL_PREFIX "/nope", DBUS_MODEL_IFACE, "SetBits", "a(yy)" },
};

/* Names the daemon knows, so that strings reach past "no such ..." often. */
static const char *const words[] = {
	"tiny",
	"tiny2",
	"performance",
	"powersave",
	"userspace",
	"ondemand",
	"conservative",
	"step_wise",
	"power_allocator",
	"min-bits",
	"max-latency-ns",
	"up_threshold",
	"sampling_down_factor",
	"down_threshold",
	"freq_step",
	"states",
	"trips",
	"control_temp_c",
	"switch_on_temp_c",
	"sustainable_power_w",
	"k_po",
	"k_pu",
	"k_i",
	"k_d",
	"integral_cutoff_c",
	"dynamic_power_w",
	"temp_c",
	"hysteresis_c",
	DBUS_IFACE,
	DBUS_MODEL_IFACE,
	"Governor",
	"CurrentBits",
	"Limits",
	"Holds",
	"Stats",
	"CostTable",
	"Models",
	"GovernorTunables",
	"conv1",
	"dw",
	"fc",
	"0",
	"2",
	"",
	"-1",
	"1e9",
	"nan",
	"{a: [",
	"x\ny: 1",
	"'",
};

static int append_type(sd_bus_message *m, const char **sig, struct cursor *c, unsigned depth);

/* One string argument: a known word, or raw bytes (sd-bus refuses invalid UTF-8 itself). */
static int append_string(sd_bus_message *m, char type, struct cursor *c)
{
	char buf[64];
	uint8_t how = take(c);

	if (type == 'o')
		return sd_bus_message_append_basic(m, 'o', how & 1 ? M : D);
	if (how < 200)
		return sd_bus_message_append_basic(m, 's',
						   words[how % (sizeof(words) / sizeof(words[0]))]);
	size_t n = take(c) % sizeof(buf);
	take_bytes(c, buf, n);
	buf[n] = 0;
	return sd_bus_message_append_basic(m, 's', buf);
}

static int append_basic(sd_bus_message *m, char type, struct cursor *c)
{
	union {
		uint8_t y;
		int b;
		uint16_t q;
		uint32_t u;
		uint64_t t;
		double d;
	} v;

	switch (type) {
	case 's':
	case 'o':
		return append_string(m, type, c);
	case 'y':
		v.y = take(c);
		break;
	case 'b':
		v.b = take(c) & 1;
		break;
	case 'n':
	case 'q':
		take_bytes(c, &v.q, 2);
		break;
	case 'i':
	case 'u':
		take_bytes(c, &v.u, 4);
		break;
	case 'x':
	case 't':
		take_bytes(c, &v.t, 8);
		break;
	case 'd':
		take_bytes(c, &v.d, 8);
		break;
	default:
		return -EINVAL;
	}
	return sd_bus_message_append_basic(m, type, &v);
}

/* The length of the complete type at SIG ("a(yy)" -> 5). */
static size_t type_len(const char *sig)
{
	size_t depth = 0, i = 0;

	do {
		if (sig[i] == '(' || sig[i] == '{')
			depth++;
		else if (sig[i] == ')' || sig[i] == '}')
			depth--;
		else if (sig[i] == 'a') {
			i++;
			continue;
		}
		i++;
	} while (depth && sig[i]);
	return i;
}

static int append_container(sd_bus_message *m, char kind, const char *inner, size_t len,
			    struct cursor *c, unsigned depth)
{
	char contents[64];
	const char *p;
	int r;

	if (len >= sizeof(contents) || depth > 8)
		return -EINVAL;
	memcpy(contents, inner, len);
	contents[len] = 0;
	r = sd_bus_message_open_container(m, kind, contents);
	if (r < 0)
		return r;
	if (kind == 'a') {
		unsigned n = take(c) % 9;

		for (unsigned i = 0; i < n && r >= 0; i++) {
			p = contents;
			r = append_type(m, &p, c, depth + 1);
		}
	} else {
		for (p = contents; *p && r >= 0;)
			r = append_type(m, &p, c, depth + 1);
	}
	return r < 0 ? r : sd_bus_message_close_container(m);
}

static int append_type(sd_bus_message *m, const char **sig, struct cursor *c, unsigned depth)
{
	const char *s = *sig;
	size_t len = type_len(s);

	*sig += len;
	switch (s[0]) {
	case 'a':
		return append_container(m, 'a', s + 1, len - 1, c, depth);
	case '(':
		return append_container(m, 'r', s + 1, len - 2, c, depth);
	case '{':
		return append_container(m, 'e', s + 1, len - 2, c, depth);
	case 'v': {
		static const char *const kinds[] = { "y", "b",	"u",	 "i", "t", "d",
						     "s", "as", "a(dd)", "n", "q", "x" };
		const char *k = kinds[take(c) % (sizeof(kinds) / sizeof(kinds[0]))];

		return append_container(m, 'v', k, strlen(k), c, depth);
	}
	default:
		return append_basic(m, s[0], c);
	}
}

/* Let both ends run until neither has anything left to do. */
static void pump(void)
{
	for (int i = 0; i < 10000; i++) {
		int a = sd_bus_process(server, NULL), b = sd_bus_process(client, NULL);

		if (a <= 0 && b <= 0)
			return;
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct bmx_daemon *d;
	struct bmx_dbus *b;
	sd_id128_t id;
	int sv[2];

	(void)argc;
	(void)argv;
	d = fuzz_daemon_start();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0 ||
	    sd_id128_randomize(&id) < 0 || sd_bus_new(&server) < 0 || sd_bus_new(&client) < 0 ||
	    sd_bus_set_fd(server, sv[0], sv[0]) < 0 || sd_bus_set_server(server, 1, id) < 0 ||
	    sd_bus_set_fd(client, sv[1], sv[1]) < 0 || sd_bus_start(server) < 0 ||
	    sd_bus_start(client) < 0)
		abort();
	/* No bus driver answers on a peer connection: a synchronous call to one (a credentials
	 * lookup) would wait sd-bus's default 25 s for nothing. */
	sd_bus_set_method_call_timeout(server, 1000);
	b = calloc(1, sizeof(*b));
	if (!b)
		abort();
	b->d = d;
	b->bus = server;
	b->next_owner = DBUS_OWNER_BASE;
	d->dbus = b;
	if (dbus_manager_register(b) < 0 || dbus_model_register(b) < 0)
		abort();
	pump(); /* the authentication */
	return 0;
}

/*
 * LoadModel's arguments: a few names and fixed files (see the top of this file). A valid model
 * is loaded only as "tiny2" from FUZZ_MODEL2_PATH, whose cost table is in the cache
 * (daemon_fixture.c): any other would start a measuring thread that unloading waits for.
 */
static int append_load_args(sd_bus_message *m, struct cursor *c)
{
	static const char *const names[] = { "tiny2", "tiny", "", "no/such name" };
	static const char *const paths[] = { FUZZ_MODEL2_PATH,	 FUZZ_MODEL_PATH,
					     "/nonexistent.bmx", "/",
					     "relative.bmx",	 "/dev/null" };
	uint8_t k = take(c);
	const char *name = names[k % 4], *path = paths[(k >> 2) % 6];

	if (strcmp(name, "tiny2") == 0 && strcmp(path, FUZZ_MODEL_PATH) == 0)
		path = FUZZ_MODEL2_PATH;
	return sd_bus_message_append(m, "ss", name, path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cursor c = { data, size };

	fuzz_daemon_reset();
	while (c.n >= 2) {
		const struct call *call = &calls[take(&c) % (sizeof(calls) / sizeof(calls[0]))];
		uint8_t how = take(&c);
		const char *sig =
			how < 224 ? call->signature
				  : calls[how % (sizeof(calls) / sizeof(calls[0]))].signature;
		sd_bus_message *m = NULL;
		int r;

		r = sd_bus_message_new_method_call(client, &m, NULL, call->path, call->iface,
						   call->member);
		if (r < 0)
			abort();
		if (strcmp(call->member, "LoadModel") == 0 && sig == call->signature) {
			r = append_load_args(m, &c);
		} else {
			while (*sig && r >= 0)
				r = append_type(m, &sig, &c, 0);
		}
		if (r >= 0)
			sd_bus_send(client, m, NULL);
		sd_bus_message_unref(m);
		pump();
	}
	return 0;
}
