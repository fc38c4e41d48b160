/* SPDX-License-Identifier: MIT */
/*
 * dbus.c — bitmixd on D-Bus (sd-bus): which bus, the bus inside the io_uring loop, and the
 * signals that announce every change.
 *
 * The connection lives on the event-loop thread like everything else the daemon waits for: one
 * io_uring poll on sd_bus_get_fd() for the events sd_bus_get_events() asks, one absolute
 * CLOCK_MONOTONIC timeout for sd_bus_get_timeout(), and after every loop pass that saw either
 * fire (or that queued output) sd_bus_process() runs until it has nothing left. Method handlers
 * therefore run between two io_uring completions and touch the daemon without locks.
 *
 * Changes are announced where they happen when there is one place (bits: served_model_set_bits
 * calls dbus_bits_changed; trips: the governor's callback) and otherwise by comparing, once per
 * pass, what was last announced with what is (governor, reading, models, limits, holds): a
 * property is signalled once per change, never per sensor tick that changed nothing.
 */
#include <errno.h>
#include <sys/eventfd.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dbus_internal.h"
#include "log.h"

static loop_fn on_io, on_timeout;

static const char *bus_name(enum bmx_dbus_bus bus)
{
	switch (bus) {
	case BMX_DBUS_SYSTEM:
		return "the system bus";
	case BMX_DBUS_SESSION:
		return "the session bus";
	case BMX_DBUS_ADDRESS:
		return "a private bus";
	default:
		return "no bus";
	}
}

/* The highest uid of a system user (Debian's SYS_UID_MAX): systemd's User=bitmixd is one. */
#define SYSTEM_UID_MAX 999

/*
 * auto: the system bus when it exists and bitmixd runs as root or as a system user (the
 * service's own, from sysusers.d); a daemon a login user started stays off the buses.
 */
static enum bmx_dbus_bus resolve_auto(struct bmx_dbus *b)
{
	if (geteuid() > SYSTEM_UID_MAX) {
		snprintf(
			b->where, sizeof(b->where),
			"none (dbus.bus: auto and uid %u is not root nor a system user; set dbus.bus "
			"to use a bus)",
			(unsigned)geteuid());
		return BMX_DBUS_NONE;
	}
	if (access("/run/dbus/system_bus_socket", F_OK) < 0 && !getenv("DBUS_SYSTEM_BUS_ADDRESS")) {
		snprintf(b->where, sizeof(b->where),
			 "none (dbus.bus: auto and no system bus at /run/dbus/system_bus_socket)");
		return BMX_DBUS_NONE;
	}
	return BMX_DBUS_SYSTEM;
}

static int connect_bus(struct bmx_dbus *b, enum bmx_dbus_bus which, const char *address)
{
	int r;

	switch (which) {
	case BMX_DBUS_SYSTEM:
		return sd_bus_open_system_with_description(&b->bus, "bitmixd");
	case BMX_DBUS_SESSION:
		return sd_bus_open_user_with_description(&b->bus, "bitmixd");
	default:
		break;
	}
	r = sd_bus_new(&b->bus);
	if (r < 0)
		return r;
	(void)sd_bus_set_description(b->bus, "bitmixd");
	if ((r = sd_bus_set_address(b->bus, address)) < 0 ||
	    (r = sd_bus_set_bus_client(b->bus, 1)) < 0 ||
	    (r = sd_bus_negotiate_creds(b->bus, 1, SD_BUS_CREDS_UID | SD_BUS_CREDS_EUID)) < 0 ||
	    (r = sd_bus_start(b->bus)) < 0) {
		b->bus = sd_bus_unref(b->bus);
		return r;
	}
	return 0;
}

static void on_trip(void *userdata, const char *trip, double temp_c, bool rising)
{
	struct bmx_dbus *b = userdata;
	int r = sd_bus_emit_signal(b->bus, DBUS_PATH, DBUS_IFACE, "TripCrossed", "sds", trip,
				   temp_c, rising ? "up" : "down");

	if (r < 0)
		log_warning_errno(r, "D-Bus: emitting TripCrossed");
	b->need_process = true;
}

int dbus_open(struct bmx_daemon *d)
{
	const struct bmx_config_dbus *cfg = &d->config->dbus;
	enum bmx_dbus_bus which = cfg->bus;
	struct bmx_dbus *b = calloc(1, sizeof(*b));
	int r;

	if (!b)
		return -ENOMEM;
	b->d = d;
	b->next_owner = DBUS_OWNER_BASE;
	b->io_op = (struct loop_op){ .fn = on_io };
	b->timeout_op = (struct loop_op){ .fn = on_timeout };
	b->load_op = b->load_tick_op = (struct loop_op){ .fn = dbus_on_load };
	b->load_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	d->dbus = b;
	if (b->load_efd < 0)
		return log_error_errno(errno, "D-Bus: an eventfd for model loads");
	if (which == BMX_DBUS_AUTO)
		which = resolve_auto(b);
	if (which == BMX_DBUS_NONE) {
		if (!b->where[0])
			snprintf(b->where, sizeof(b->where), "none (dbus.bus: none)");
		log_info("D-Bus: %s", b->where);
		return 0;
	}
	r = connect_bus(b, which, cfg->address);
	if (r < 0) {
		snprintf(b->where, sizeof(b->where), "none (connecting to %s failed: %s)",
			 which == BMX_DBUS_ADDRESS ? cfg->address : bus_name(which), strerror(-r));
		/* An explicitly named bus that is not there is the admin's error: say so, serve on. */
		log_warning("D-Bus: %s", b->where);
		return 0;
	}
	if ((r = dbus_manager_register(b)) < 0 || (r = dbus_model_register(b)) < 0) {
		log_error_errno(r, "D-Bus: registering the objects");
		goto fail;
	}
	r = sd_bus_request_name(b->bus, DBUS_NAME, 0);
	if (r < 0) {
		log_error_errno(r,
				"D-Bus: taking the name %s on %s (another bitmixd? the policy "
				"file org.bitmix.Daemon1.conf installed?)",
				DBUS_NAME, bus_name(which));
		/* A bus the admin named is a promise; auto only tried. */
		if (cfg->bus == BMX_DBUS_AUTO) {
			snprintf(b->where, sizeof(b->where),
				 "none (the name %s could not be taken on %s: %s)", DBUS_NAME,
				 bus_name(which), strerror(-r));
			b->bus = sd_bus_flush_close_unref(b->bus);
			return 0;
		}
		goto fail;
	}
	if (which == BMX_DBUS_ADDRESS)
		snprintf(b->where, sizeof(b->where), "%s as %s", cfg->address, DBUS_NAME);
	else
		snprintf(b->where, sizeof(b->where), "%s as %s", bus_name(which), DBUS_NAME);
	gov_core_set_trip_fn(d->governor, on_trip, b);
	b->need_process = true;
	log_info("D-Bus: on %s", b->where);
	return 0;
fail:
	snprintf(b->where, sizeof(b->where), "none (setting up on %s failed: %s)", bus_name(which),
		 strerror(-r));
	b->bus = sd_bus_flush_close_unref(b->bus);
	return r;
}

const char *dbus_where(const struct bmx_daemon *d)
{
	return d->dbus ? d->dbus->where : "none";
}

static void on_io(struct bmx_daemon *d, struct loop_op *op, int res)
{
	struct bmx_dbus *b = d->dbus;

	(void)op;
	b->io_armed = b->io_cancelling = false;
	if (res < 0 && res != -ECANCELED)
		log_warning_errno(res, "D-Bus: polling the connection");
	b->need_process = true;
}

static void on_timeout(struct bmx_daemon *d, struct loop_op *op, int res)
{
	struct bmx_dbus *b = d->dbus;

	(void)op;
	b->timeout_armed = b->timeout_cancelling = false;
	if (res == -ETIME)
		b->need_process = true;
}

static uint64_t mono_usec(void)
{
	return now_ns() / 1000;
}

static void arm_io(struct bmx_dbus *b)
{
	struct bmx_daemon *d = b->d;
	int events = sd_bus_get_events(b->bus), fd = sd_bus_get_fd(b->bus);
	struct io_uring_sqe *sqe;

	if (events < 0 || fd < 0)
		return;
	if (b->io_armed) {
		/* Wanting to write now (or no longer): ask again with the new mask. */
		if ((uint32_t)events != b->io_events && !b->io_cancelling) {
			event_loop_cancel(d, &b->io_op);
			b->io_cancelling = true;
		}
		return;
	}
	sqe = event_loop_get_sqe(d);
	if (!sqe)
		return;
	io_uring_prep_poll_add(sqe, fd, (unsigned)events);
	event_loop_arm(d, sqe, &b->io_op);
	b->io_armed = true;
	b->io_events = (uint32_t)events;
}

static void arm_timeout(struct bmx_dbus *b)
{
	struct bmx_daemon *d = b->d;
	struct io_uring_sqe *sqe;
	uint64_t usec;

	if (sd_bus_get_timeout(b->bus, &usec) < 0 || usec == UINT64_MAX)
		return;
	if (b->timeout_armed) {
		if (usec < b->timeout_usec && !b->timeout_cancelling) {
			event_loop_cancel(d, &b->timeout_op);
			b->timeout_cancelling = true;
		}
		return;
	}
	sqe = event_loop_get_sqe(d);
	if (!sqe)
		return;
	b->timeout_usec = usec;
	b->timeout_ts = (struct __kernel_timespec){ .tv_sec = (long long)(usec / 1000000),
						    .tv_nsec = (long long)(usec % 1000000) * 1000 };
	io_uring_prep_timeout(sqe, &b->timeout_ts, 0, IORING_TIMEOUT_ABS);
	event_loop_arm(d, sqe, &b->timeout_op);
	b->timeout_armed = true;
}

static void process(struct bmx_dbus *b)
{
	uint64_t usec;
	int r;

	for (int rounds = 0; rounds < 64; rounds++) {
		/* Each message may change something (a hold placed, then its peer gone): announce
		 * after every one, or two changes inside one pass could cancel out unannounced. */
		while ((r = sd_bus_process(b->bus, NULL)) > 0)
			dbus_sync(b);
		if (r < 0) {
			log_error_errno(
				r, "D-Bus: the connection failed; the API is off until restart");
			snprintf(b->where, sizeof(b->where), "none (the connection failed: %s)",
				 strerror(-r));
			b->bus = sd_bus_flush_close_unref(b->bus);
			return;
		}
		/* A zero timeout means work is queued already: go round again. */
		if (sd_bus_get_timeout(b->bus, &usec) < 0 || usec > mono_usec())
			break;
	}
}

void dbus_after_pass(struct bmx_daemon *d)
{
	struct bmx_dbus *b = d->dbus;

	if (!b)
		return;
	if (b->loads)
		dbus_loads_pass(b);
	if (!b->bus)
		return;
	dbus_sync(b);
	if (b->need_process) {
		b->need_process = false;
		process(b);
		if (!b->bus)
			return;
	}
	if (d->stopping)
		return;
	arm_io(b);
	arm_timeout(b);
}

void dbus_stop(struct bmx_daemon *d)
{
	struct bmx_dbus *b = d->dbus;

	if (!b)
		return;
	if (b->io_armed && !b->io_cancelling)
		event_loop_cancel(d, &b->io_op);
	if (b->timeout_armed && !b->timeout_cancelling)
		event_loop_cancel(d, &b->timeout_op);
	b->io_cancelling = b->timeout_cancelling = true;
	dbus_loads_stop(b);
}

void dbus_close(struct bmx_daemon *d)
{
	struct bmx_dbus *b = d->dbus;

	if (!b)
		return;
	if (d->governor)
		gov_core_set_trip_fn(d->governor, NULL, NULL);
	dbus_peers_free(b);
	dbus_loads_free(b);
	if (b->bus) {
		(void)sd_bus_release_name(b->bus, DBUS_NAME);
		b->bus = sd_bus_flush_close_unref(b->bus);
	}
	free(b);
	d->dbus = NULL;
}

static struct dbus_model_seen *seen_of(struct bmx_dbus *b, const char *name)
{
	for (size_t i = 0; i < b->n_seen; i++)
		if (strcmp(b->seen[i].name, name) == 0)
			return &b->seen[i];
	return NULL;
}

void dbus_bits_changed(struct bmx_daemon *d, struct served_model *m, uint64_t generation)
{
	struct bmx_dbus *b = d->dbus;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *sig = NULL;
	struct dbus_model_seen *seen;
	char *path;
	int r;

	if (!b || !b->bus || !model_store_contains(&d->store, m))
		return;
	r = sd_bus_message_new_signal(b->bus, &sig, DBUS_PATH, DBUS_IFACE, "BitsChanged");
	if (r >= 0)
		r = sd_bus_message_append(sig, "st", m->name, generation);
	if (r >= 0)
		r = dbus_append_bits(sig, m, NULL);
	if (r >= 0)
		r = sd_bus_send(b->bus, sig, NULL);
	if (r < 0)
		log_warning_errno(r, "D-Bus: emitting BitsChanged for %s", m->name);
	path = dbus_model_path(m->name);
	if (path) {
		r = sd_bus_emit_properties_changed(b->bus, path, DBUS_MODEL_IFACE, "CurrentBits",
						   "Generation", NULL);
		if (r < 0)
			log_warning_errno(r, "D-Bus: PropertiesChanged for %s", path);
		free(path);
	}
	seen = seen_of(b, m->name);
	if (seen)
		seen->generation = generation;
	b->need_process = true;
}

static uint64_t models_sig(const struct bmx_daemon *d)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a over the names and ids */

	for (size_t i = 0; i < d->store.count; i++) {
		const struct served_model *m = d->store.models[i];

		for (const char *c = m->name; *c; c++)
			h = (h ^ (uint8_t)*c) * 1099511628211ull;
		h = (h ^ m->id) * 1099511628211ull;
	}
	return h ^ d->store.count;
}

/* The Models property and the object manager's view: announce arrivals and departures. */
static void sync_models(struct bmx_dbus *b)
{
	struct bmx_daemon *d = b->d;
	uint64_t sig = models_sig(d);
	char *path;

	if (b->announced && sig == b->models_sig)
		return;
	/* Departed: in what was announced, not in the store. */
	for (size_t i = 0; i < b->n_seen;) {
		if (model_store_find(&d->store, b->seen[i].name)) {
			i++;
			continue;
		}
		if (b->announced && (path = dbus_model_path(b->seen[i].name))) {
			(void)sd_bus_emit_object_removed(b->bus, path);
			free(path);
		}
		b->seen[i] = b->seen[--b->n_seen];
	}
	for (size_t i = 0; i < d->store.count && b->n_seen < BMX_CONFIG_MAX_MODELS; i++) {
		struct served_model *m = d->store.models[i];

		if (seen_of(b, m->name))
			continue;
		struct dbus_model_seen *s = &b->seen[b->n_seen++];

		snprintf(s->name, sizeof(s->name), "%s", m->name);
		s->generation = __atomic_load_n(&m->control->generation, __ATOMIC_ACQUIRE);
		s->limits_sig = dbus_model_limits_sig(m);
		s->holds_sig = dbus_model_holds_sig(m);
		if (b->announced && (path = dbus_model_path(m->name))) {
			(void)sd_bus_emit_object_added(b->bus, path);
			free(path);
		}
	}
	if (b->announced)
		(void)sd_bus_emit_properties_changed(b->bus, DBUS_PATH, DBUS_IFACE, "Models", NULL);
	b->models_sig = sig;
	b->need_process = true;
}

/* Per model: generation (a publication the hook did not see), limits and holds. */
static void sync_model(struct bmx_dbus *b, struct served_model *m)
{
	struct dbus_model_seen *s = seen_of(b, m->name);
	char *names[4];
	size_t n = 0;
	uint64_t g, limits, holds;

	if (!s)
		return;
	g = __atomic_load_n(&m->control->generation, __ATOMIC_ACQUIRE);
	limits = dbus_model_limits_sig(m);
	holds = dbus_model_holds_sig(m);
	if (g != s->generation && !(g & 1)) {
		names[n++] = (char *)"CurrentBits";
		names[n++] = (char *)"Generation";
		s->generation = g;
	}
	if (limits != s->limits_sig)
		names[n++] = (char *)"Limits";
	if (holds != s->holds_sig)
		names[n++] = (char *)"Holds";
	s->limits_sig = limits;
	s->holds_sig = holds;
	if (n == 0)
		return;
	names[n] = NULL;
	char *path = dbus_model_path(m->name);

	if (path) {
		(void)sd_bus_emit_properties_changed_strv(b->bus, path, DBUS_MODEL_IFACE, names);
		free(path);
	}
	b->need_process = true;
}

long dbus_temp_dc(const struct sensor_reading *r)
{
	return lround(r->temp_mc / 100.0);
}

long dbus_power_cw(const struct sensor_reading *r)
{
	return lround(r->power_mw / 10.0);
}

/* The manager's changing properties: governor, fallback, temperature, power. */
static void sync_manager(struct bmx_dbus *b)
{
	struct bmx_daemon *d = b->d;
	const struct sensor_reading *r = &d->reading;
	const char *gov = d->governor ? gov_core_governor(d->governor) : "none";
	const char *fallback = d->governor ? gov_core_fallback_reason(d->governor) : "";
	char *names[8];
	size_t n = 0;

	if (strcmp(gov, b->governor) != 0 || strcmp(fallback, b->fallback) != 0) {
		names[n++] = (char *)"Governor";
		names[n++] = (char *)"GovernorFallback";
		snprintf(b->governor, sizeof(b->governor), "%s", gov);
		snprintf(b->fallback, sizeof(b->fallback), "%s", fallback);
	}
	/* Tunables: they are the running governor's, and new values come with a reload too. */
	if (d->governor && (n > 0 || memcmp(b->tunables, gov_core_config(d->governor),
					    sizeof(b->tunables)) != 0)) {
		names[n++] = (char *)"GovernorTunables";
		memcpy(b->tunables, gov_core_config(d->governor), sizeof(b->tunables));
	}
	const char *source = d->sensors ? sensors_source_name(sensors_source(d->sensors)) : "none";

	if (source != b->source) {
		names[n++] = (char *)"SensorSource";
		b->source = source;
	}
	if ((r->have & SENSOR_HAVE_TEMP) != (b->have & SENSOR_HAVE_TEMP) ||
	    ((r->have & SENSOR_HAVE_TEMP) && dbus_temp_dc(r) != b->temp_dc))
		names[n++] = (char *)"Temperature";
	if ((r->have & SENSOR_HAVE_POWER) != (b->have & SENSOR_HAVE_POWER) ||
	    ((r->have & SENSOR_HAVE_POWER) && dbus_power_cw(r) != b->power_cw))
		names[n++] = (char *)"Power";
	b->have = r->have;
	b->temp_dc = dbus_temp_dc(r);
	b->power_cw = dbus_power_cw(r);
	if (n == 0 || !b->announced)
		return;
	names[n] = NULL;
	(void)sd_bus_emit_properties_changed_strv(b->bus, DBUS_PATH, DBUS_IFACE, names);
	b->need_process = true;
}

int dbus_open_entry(sd_bus_message *m, const char *key, const char *type)
{
	int r = sd_bus_message_open_container(m, 'e', "sv");

	if (r >= 0)
		r = sd_bus_message_append(m, "s", key);
	return r < 0 ? r : sd_bus_message_open_container(m, 'v', type);
}

void dbus_sync(struct bmx_dbus *b)
{
	struct bmx_daemon *d = b->d;

	sync_models(b);
	for (size_t i = 0; i < d->store.count; i++)
		sync_model(b, d->store.models[i]);
	sync_manager(b);
	b->announced = true;
}
