/* SPDX-License-Identifier: MIT */
/*
 * session_msg.c — the control messages of the bitmix protocol (proto/bitmix_proto.h).
 *
 * Each handler gets a message whose header was checked, checks its length and the rest field by
 * field, and answers with exactly one reply packet; the administrative ones (LIST_MODELS,
 * SET_BITS, STATUS, and those of session_governor.c and session_admin.c) marshal to the admin
 * core (admin.h), which checks who may and does the work. A reply that the
 * client's socket cannot take at once means the client is not reading: it is disconnected
 * rather than allowed to stall the event loop.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bitmix-config.h"
#include "admin.h"
#include "daemon.h"
#include "log.h"

void reply_init(struct bitmix_reply *r, const struct bitmix_msg_hdr *req, size_t len)
{
	r->hdr = (struct bitmix_msg_hdr){
		.magic = BITMIX_MSG_MAGIC,
		.version = BITMIX_PROTO_VERSION,
		.type = (uint16_t)(req->type | BITMIX_MSG_REPLY),
		.length = (uint32_t)len,
		.seq = req->seq,
	};
}

int reply_send(struct session *s, const void *buf, size_t len, const int *fds, int n_fds)
{
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (n_fds > 0) {
		struct cmsghdr *c;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE((size_t)n_fds * sizeof(int));
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)n_fds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)n_fds * sizeof(int));
	}
	if (sendmsg(s->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

/* Send a reply that carries only a status and a message. */
int reply_error(struct session *s, const struct bitmix_msg_hdr *req, int status, const char *fmt,
		...)
{
	struct bitmix_reply r = { 0 };
	va_list ap;

	reply_init(&r, req, sizeof(r));
	r.status = status;
	va_start(ap, fmt);
	vsnprintf(r.error, sizeof(r.error), fmt, ap);
	va_end(ap);
	log_debug("client %u: %s", s->id, r.error);
	return reply_send(s, &r, sizeof(r), NULL, 0);
}

/*
 * The reply a connection over a limit finds waiting when it first reads: seq 0 (it answers no
 * request of the client's), type HELLO's reply. The socket is new and empty: a send that would
 * block cannot happen, and if it did the client would only see the connection closed.
 */
void reply_refusal(int fd, int status, const char *why)
{
	struct bitmix_msg_hdr hello = { .type = BITMIX_MSG_HELLO, .seq = 0 };
	struct bitmix_reply r = { 0 };

	reply_init(&r, &hello, sizeof(r));
	r.status = status;
	snprintf(r.error, sizeof(r.error), "%s", why);
	(void)send(fd, &r, sizeof(r), MSG_DONTWAIT | MSG_NOSIGNAL);
}

static uint32_t round_pow2(uint32_t v)
{
	uint32_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

static uint64_t round_up(uint64_t v, uint64_t to)
{
	return (v + to - 1) / to * to;
}

/* Create the client's arena and doorbells; geometry is decided here and kept privately. */
static int arena_create(struct session *s, const struct bitmix_hello_req *req, char *why,
			size_t why_size)
{
	uint32_t sq = req->sq_entries ? req->sq_entries : BMX_DEFAULT_SQ_ENTRIES;
	uint64_t data = req->data_size ? req->data_size : BMX_DEFAULT_DATA_SIZE;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t limit = s->daemon->config->limits.mapped_bytes;
	struct bitmix_arena_hdr *h;

	sq = round_pow2(sq > BMX_MAX_SQ_ENTRIES ? BMX_MAX_SQ_ENTRIES : sq);
	data = round_up(data > BMX_MAX_DATA_SIZE ? BMX_MAX_DATA_SIZE : data, page);
	s->sq_entries = s->cq_entries = sq;
	s->data_size = data;
	uint64_t sq_off = page;
	uint64_t cq_off = sq_off + round_up((uint64_t)sq * sizeof(struct bitmix_sqe), page);
	uint64_t data_off = cq_off + round_up((uint64_t)sq * sizeof(struct bitmix_cqe), page);
	s->arena_size = data_off + data;
	if (s->arena_size > limit) {
		snprintf(why, why_size,
			 "HELLO: an arena of %llu bytes exceeds limits.mapped_bytes (%llu)",
			 (unsigned long long)s->arena_size, (unsigned long long)limit);
		return -ENOSPC;
	}
	snprintf(why, why_size, "HELLO: creating the arena failed");
	s->arena_fd = memfd_create("bitmix-arena", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (s->arena_fd < 0)
		return -errno;
	if (ftruncate(s->arena_fd, (off_t)s->arena_size) < 0)
		return -errno;
	if (fcntl(s->arena_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		return -errno;
	s->arena = mmap(NULL, s->arena_size, PROT_READ | PROT_WRITE, MAP_SHARED, s->arena_fd, 0);
	if (s->arena == MAP_FAILED) {
		s->arena = NULL;
		return -errno;
	}
	s->mapped_bytes = s->arena_size;
	h = s->hdr = (struct bitmix_arena_hdr *)s->arena;
	s->sq = (struct bitmix_sqe *)(s->arena + sq_off);
	s->cq = (struct bitmix_cqe *)(s->arena + cq_off);
	s->data = s->arena + data_off;
	*h = (struct bitmix_arena_hdr){
		.magic = BITMIX_ARENA_MAGIC,
		.version = BITMIX_PROTO_VERSION,
		.sq_entries = sq,
		.cq_entries = sq,
		.sq_offset = sq_off,
		.cq_offset = cq_off,
		.data_offset = data_off,
		.data_size = data,
	};
	if (s->daemon->doorbell == BITMIX_DOORBELL_FUTEX)
		return 0;
	s->submit_efd = eventfd(0, EFD_CLOEXEC);
	s->complete_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->submit_efd < 0 || s->complete_efd < 0)
		return -errno;
	return 0;
}

static int handle_hello(struct session *s, const struct bitmix_msg_hdr *m)
{
	const struct bitmix_hello_req *req = (const void *)m;
	const struct bmx_config_limits *lim = &s->daemon->config->limits;
	struct bitmix_hello_reply rep = { 0 };
	char why[BITMIX_ERROR_MAX];
	int r;

	if (m->length < sizeof(*req))
		return reply_error(s, m, -EBADMSG, "HELLO: message is %u bytes, expected %zu",
				   m->length, sizeof(*req));
	if (s->has_arena)
		return reply_error(s, m, -EALREADY, "HELLO: this connection already has an arena");
	r = arena_create(s, req, why, sizeof(why));
	if (r == -ENOSPC)
		return reply_error(s, m, r, "%s", why);
	if (r == 0)
		r = doorbell_arm(s->daemon, s);
	if (r < 0) {
		reply_error(s, m, r, "%s: %s", why, strerror(-r));
		session_close(s, "could not create its arena: disconnected");
		return 0;
	}
	s->has_arena = true;
	reply_init(&rep.r, m, sizeof(rep));
	rep.client_id = s->id;
	rep.sq_entries = s->sq_entries;
	rep.cq_entries = s->cq_entries;
	rep.doorbell = (uint32_t)s->daemon->doorbell;
	rep.arena_size = s->arena_size;
	rep.sq_offset = s->hdr->sq_offset;
	rep.cq_offset = s->hdr->cq_offset;
	rep.data_offset = s->hdr->data_offset;
	rep.data_size = s->data_size;
	rep.max_in_flight = lim->in_flight;
	rep.max_regions = lim->regions;
	rep.max_mapped_bytes = lim->mapped_bytes;
	if (s->daemon->doorbell == BITMIX_DOORBELL_FUTEX)
		return reply_send(s, &rep, sizeof(rep), &s->arena_fd, 1);
	return reply_send(s, &rep, sizeof(rep),
			  (int[]){ s->arena_fd, s->submit_efd, s->complete_efd }, 3);
}

static void model_desc_fill(struct bitmix_model_desc *d, const struct served_model *m)
{
	const struct bmx_model_info *info = m->model->info;

	memset(d, 0, sizeof(*d));
	d->model_id = m->id;
	d->layer_count = m->model->layer_count;
	snprintf(d->name, sizeof(d->name), "%s", m->name);
	d->input_h = info->input_h;
	d->input_w = info->input_w;
	d->input_c = info->input_c;
	d->output_size = info->output_size;
	d->bits_mask = info->bits_mask;
}

static int handle_list(struct session *s, const struct bitmix_msg_hdr *m)
{
	uint8_t buf[BITMIX_MSG_MAX] = { 0 };
	struct bitmix_list_reply *rep = (void *)buf;
	struct admin_error err = { 0 };
	struct admin_models models;
	struct admin_caller c;
	size_t max = (sizeof(buf) - sizeof(*rep)) / sizeof(rep->models[0]), n, len;
	char who[96];

	session_caller(s, &c, who, sizeof(who));
	admin_models(s->daemon, &c, &models, &err);
	n = models.n < max ? models.n : max;
	len = sizeof(*rep) + n * sizeof(rep->models[0]);
	reply_init(&rep->r, m, len);
	rep->count = (uint32_t)models.n;
	for (size_t i = 0; i < n; i++)
		model_desc_fill(&rep->models[i], models.models[i]);
	return reply_send(s, buf, len, NULL, 0);
}

static int handle_open(struct session *s, const struct bitmix_msg_hdr *m)
{
	const struct bitmix_open_req *req = (const void *)m;
	uint8_t buf[BITMIX_MSG_MAX] = { 0 };
	struct bitmix_open_reply *rep = (void *)buf;
	struct served_model *model;
	size_t len;
	int r;

	if (m->length < sizeof(*req))
		return reply_error(s, m, -EBADMSG, "OPEN_MODEL: message too short");
	if (!memchr(req->name, 0, sizeof(req->name)))
		return reply_error(s, m, -EINVAL, "OPEN_MODEL: model name is not terminated");
	model = model_store_find(&s->daemon->store, req->name);
	if (!model)
		return reply_error(s, m, -ENOENT, "no model called \"%s\" (see `bitmixctl models`)",
				   req->name);
	len = sizeof(*rep) + model->model->layer_count * sizeof(uint16_t);
	if (len > sizeof(buf))
		return reply_error(s, m, -E2BIG, "model %s has too many layers for this protocol",
				   req->name);
	bool already = false;
	for (size_t i = 0; i < s->n_open; i++)
		already |= s->open[i] == model;
	if (!already) {
		if (s->n_open == BMX_MAX_OPEN_MODELS)
			return reply_error(s, m, -EMFILE,
					   "too many open models on this connection");
		served_model_ref(model);
		s->open[s->n_open++] = model;
	}
	reply_init(&rep->r, m, len);
	model_desc_fill(&rep->model, model);
	rep->control_size = model->control_size;
	rep->model_size = model->size;
	for (uint32_t i = 0; i < model->model->layer_count; i++)
		rep->layer_bits_mask[i] = model->model->layers[i].bits_mask;
	r = reply_send(s, buf, len, (int[]){ model->control_fd, model->memfd }, 2);
	return r;
}

static int handle_set_bits(struct session *s, const struct bitmix_msg_hdr *m)
{
	const struct bitmix_set_bits_req *req = (const void *)m;
	struct bmx_layer_bits bits[BMX_MAX_LAYERS];
	struct bitmix_set_bits_reply rep = { 0 };
	struct served_model *model = NULL;
	struct admin_error err = { 0 };
	struct admin_caller c;
	char who[96];

	if (m->length < sizeof(*req))
		return reply_error(s, m, -EBADMSG, "SET_BITS: message too short");
	if (req->layer_count > BMX_MAX_LAYERS ||
	    m->length != sizeof(*req) + (size_t)req->layer_count * sizeof(req->bits[0]))
		return reply_error(s, m, -EINVAL, "SET_BITS: message of %u bytes for %u layers",
				   m->length, req->layer_count);
	session_caller(s, &c, who, sizeof(who));
	for (size_t i = 0; i < s->n_open; i++)
		if (s->open[i]->id == req->model_id)
			model = s->open[i];
	for (uint32_t i = 0; i < req->layer_count; i++)
		bits[i] = (struct bmx_layer_bits){ req->bits[i].w_bits, req->bits[i].a_bits };
	if (admin_bits_set(s->daemon, &c, model, bits, req->layer_count, &rep.generation, &err) < 0)
		return session_reply_admin_error(s, m, &err);
	reply_init(&rep.r, m, sizeof(rep));
	return reply_send(s, &rep, sizeof(rep), NULL, 0);
}

static int handle_status(struct session *s, const struct bitmix_msg_hdr *m)
{
	struct bitmix_status_reply rep = { 0 };
	struct admin_error err = { 0 };
	struct admin_status st;
	struct admin_caller c;
	char who[96];

	session_caller(s, &c, who, sizeof(who));
	admin_status(s->daemon, &c, &st, &err);
	reply_init(&rep.r, m, sizeof(rep));
	snprintf(rep.version, sizeof(rep.version), "%s", st.version);
	rep.uptime_ns = st.uptime_ns;
	rep.requests_completed = st.requests_completed;
	rep.requests_failed = st.requests_failed;
	rep.dropped_on_close = (uint32_t)st.dropped_on_close;
	rep.clients = st.clients;
	rep.models = st.models;
	rep.workers = st.workers;
	snprintf(rep.doorbell, sizeof(rep.doorbell), "%s", st.doorbell);
	snprintf(rep.kernels, sizeof(rep.kernels), "%s", st.kernels);
	return reply_send(s, &rep, sizeof(rep), NULL, 0);
}

static int handle_sensors(struct session *s, const struct bitmix_msg_hdr *m)
{
	struct bmx_daemon *d = s->daemon;
	struct bitmix_sensors_reply rep = { 0 };
	uint64_t now = now_ns();

	reply_init(&rep.r, m, sizeof(rep));
	if (!d->sensors)
		return reply_error(s, m, -ENODEV, "no sensors are open");
	snprintf(rep.source, sizeof(rep.source), "%s",
		 sensors_source_name(sensors_source(d->sensors)));
	snprintf(rep.explain, sizeof(rep.explain), "%s", sensors_explain(d->sensors));
	rep.have = d->reading.have;
	rep.temp_mc = d->reading.temp_mc;
	rep.power_mw = d->reading.power_mw;
	rep.load_permille = d->reading.load_permille;
	rep.freq_khz = d->reading.freq_khz;
	rep.period_ms = d->config->sensors.period_ms;
	rep.age_ns = now > d->reading.time_ns ? now - d->reading.time_ns : 0;
	rep.samples = d->sensor_samples;
	rep.events = d->sensor_events;
	return reply_send(s, &rep, sizeof(rep), NULL, 0);
}

/* REGISTER_REGION takes the one descriptor that came with it (FD). */
static int handle_region(struct session *s, const struct bitmix_msg_hdr *m, int fd)
{
	const struct bitmix_region_req *req = (const void *)m;
	struct bitmix_region_reply rep = { 0 };
	const char *name = m->type == BITMIX_MSG_REGISTER_REGION ? "REGISTER_REGION"
								 : "UNREGISTER_REGION";
	char why[BITMIX_ERROR_MAX];
	uint32_t id = 0;
	int r;

	if (m->length != sizeof(*req)) {
		if (fd >= 0)
			close(fd);
		return reply_error(s, m, -EBADMSG, "%s: message is %u bytes, expected %zu", name,
				   m->length, sizeof(*req));
	}
	if (req->reserved) {
		if (fd >= 0)
			close(fd);
		return reply_error(s, m, -EINVAL, "%s: reserved field is %u, expected 0", name,
				   req->reserved);
	}
	if (m->type == BITMIX_MSG_UNREGISTER_REGION) {
		r = session_unregister_region(s, req->region, why, sizeof(why));
		if (r < 0)
			return reply_error(s, m, r, "%s: %s", name, why);
		reply_init(&rep.r, m, sizeof(rep.r));
		return reply_send(s, &rep.r, sizeof(rep.r), NULL, 0);
	}
	if (fd < 0)
		return reply_error(s, m, -EBADF,
				   "%s: no descriptor came with the message, expected "
				   "one sealed memfd",
				   name);
	r = session_register_region(s, fd, req->size, &id, why, sizeof(why));
	if (r < 0)
		return reply_error(s, m, r, "%s: %s", name, why);
	reply_init(&rep.r, m, sizeof(rep));
	rep.region = id;
	return reply_send(s, &rep, sizeof(rep), NULL, 0);
}

/* Take the descriptors that came with a packet into FDS (up to MAX; the rest are closed). */
static int collect_fds(struct msghdr *msg, int *fds, int max)
{
	int n = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (n < max)
				fds[n++] = fd;
			else
				close(fd);
		}
	}
	return n;
}

/*
 * One received packet. Descriptors are accepted only as the single memfd of a REGISTER_REGION;
 * any other descriptor costs the client its connection (and is closed unread).
 */
void session_handle_message(struct session *s, size_t len, struct msghdr *msg)
{
	const struct bitmix_msg_hdr *m = (const void *)s->recv_buf;
	int fds[2], n_fds = collect_fds(msg, fds, 2);
	bool malformed = msg->msg_flags & (MSG_TRUNC | MSG_CTRUNC) || len < sizeof(*m) ||
			 m->magic != BITMIX_MSG_MAGIC || m->length != len;
	bool fd_allowed = !malformed && m->version == BITMIX_PROTO_VERSION &&
			  m->type == BITMIX_MSG_REGISTER_REGION && n_fds == 1;
	int r;

	if (malformed || (n_fds > 0 && !fd_allowed)) {
		for (int i = 0; i < n_fds; i++)
			close(fds[i]);
		session_close(s, "malformed control message: disconnected");
		return;
	}
	if (m->version != BITMIX_PROTO_VERSION) {
		reply_error(s, m, -EPROTONOSUPPORT,
			    "protocol version %u not supported (daemon speaks %u)", m->version,
			    BITMIX_PROTO_VERSION);
		session_close(s, "protocol version mismatch: disconnected");
		return;
	}
	switch (m->type) {
	case BITMIX_MSG_HELLO:
		r = handle_hello(s, m);
		break;
	case BITMIX_MSG_LIST_MODELS:
		r = handle_list(s, m);
		break;
	case BITMIX_MSG_OPEN_MODEL:
		r = handle_open(s, m);
		break;
	case BITMIX_MSG_SET_BITS:
		r = handle_set_bits(s, m);
		break;
	case BITMIX_MSG_STATUS:
		r = handle_status(s, m);
		break;
	case BITMIX_MSG_REGISTER_REGION:
	case BITMIX_MSG_UNREGISTER_REGION:
		r = handle_region(s, m, n_fds ? fds[0] : -1);
		break;
	case BITMIX_MSG_SENSORS:
		r = handle_sensors(s, m);
		break;
	case BITMIX_MSG_GOVERNOR:
		r = session_handle_governor(s, m);
		break;
	case BITMIX_MSG_POLICY:
		r = session_handle_policy(s, m);
		break;
	case BITMIX_MSG_COST:
		r = session_handle_cost(s, m);
		break;
	case BITMIX_MSG_HOLD:
		r = session_handle_hold(s, m);
		break;
	case BITMIX_MSG_RELEASE:
		r = session_handle_release(s, m);
		break;
	case BITMIX_MSG_HOLDS:
		r = session_handle_holds(s, m);
		break;
	case BITMIX_MSG_LIMITS:
		r = session_handle_limits(s, m);
		break;
	case BITMIX_MSG_RELOAD:
		r = session_handle_reload(s, m);
		break;
	default:
		r = reply_error(s, m, -EOPNOTSUPP, "unknown message type %u", m->type);
		break;
	}
	if (r < 0)
		session_close(s, "control socket not writable: disconnected");
}
