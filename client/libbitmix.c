/* SPDX-License-Identifier: MIT */
/*
 * libbitmix.c — the client side of the bitmix protocol (proto/bitmix_proto.h).
 *
 * A connection is a SOCK_SEQPACKET control socket plus the arena the daemon made for it. This
 * file speaks the control messages (connect, models, bits, status, regions); the rings, the
 * doorbells and the tensors are in libbitmix_ring.c.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "libbitmix_internal.h"

static __thread char connect_error[256];

int bitmix_set_error(struct bitmix *bm, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(bm ? bm->error : connect_error, sizeof(connect_error), fmt, ap);
	va_end(ap);
	return r;
}

const char *bitmix_strerror(const struct bitmix *bm)
{
	return bm ? bm->error : connect_error;
}

static void close_fds(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* Send one packet, with FD (if >= 0) as SCM_RIGHTS. */
static ssize_t send_message(int sock, const void *buf, size_t len, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		uint64_t align;
	} control = { 0 };
	struct iovec iov = { (void *)buf, len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (fd >= 0) {
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	return sendmsg(sock, &msg, MSG_NOSIGNAL);
}

/*
 * The daemon closed a connection it refused (a limit) while our request was unread: the kernel
 * reports ECONNRESET once, ahead of the refusal still queued for us. Read what is queued.
 */
static ssize_t recv_after_reset(int sock, struct msghdr *msg)
{
	ssize_t n = -1;

	for (int i = 0; i < 2 && n < 0; i++)
		n = recvmsg(sock, msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	return n;
}

/*
 * Send REQ (its header filled in here) and receive the reply into REP (REP_MAX bytes), with up
 * to MAX_FDS descriptors into FDS (*n_fds). Returns the reply's status, or -errno for transport
 * and protocol failures; the error text is set either way.
 */
static int call_fd(struct bitmix *bm, void *req, size_t len, uint16_t type, void *rep,
		   size_t rep_min, size_t rep_max, int *fds, int max_fds, int *n_fds, int send_fd)
{
	struct bitmix_msg_hdr *h = req;
	struct bitmix_reply *r = rep;
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		uint64_t align;
	} control;
	struct iovec iov = { rep, rep_max };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = control.buf,
			      .msg_controllen = sizeof(control.buf) };
	int got = 0;
	ssize_t n;

	*h = (struct bitmix_msg_hdr){ BITMIX_MSG_MAGIC, BITMIX_PROTO_VERSION, type, (uint32_t)len,
				      ++bm->seq };
	if (send_message(bm->fd, req, len, send_fd) != (ssize_t)len) {
		int err = errno;

		/* Refused at connect, the socket may be closed already: the refusal waits unread. */
		n = err == EPIPE || err == ECONNRESET ? recv_after_reset(bm->fd, &msg) : -1;
		if (n >= (ssize_t)sizeof(*r) && r->hdr.magic == BITMIX_MSG_MAGIC &&
		    r->hdr.seq == 0 && r->status < 0) {
			r->error[sizeof(r->error) - 1] = 0;
			return bitmix_set_error(bm, r->status, "%s", r->error);
		}
		return bitmix_set_error(bm, -err, "sending to bitmixd: %s", strerror(err));
	}
	do
		n = recvmsg(bm->fd, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == ECONNRESET) {
		n = recv_after_reset(bm->fd, &msg);
		if (n < 0)
			errno = ECONNRESET;
	}
	if (n <= 0)
		return bitmix_set_error(bm, n == 0 ? -ECONNRESET : -errno, "bitmixd %s",
					n == 0 ? "closed the connection" : strerror(errno));
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (got < max_fds)
				fds[got++] = fd;
			else
				close(fd);
		}
	}
	if ((size_t)n >= sizeof(*r) && r->hdr.magic == BITMIX_MSG_MAGIC && r->hdr.seq == 0 &&
	    r->status < 0 && (size_t)n == r->hdr.length) {
		/* A connection refused at connect (a limit): the daemon's reason, then it hangs up. */
		close_fds(fds, got);
		r->error[sizeof(r->error) - 1] = 0;
		return bitmix_set_error(bm, r->status, "%s", r->error);
	}
	if ((size_t)n < sizeof(*r) || r->hdr.magic != BITMIX_MSG_MAGIC ||
	    r->hdr.type != (type | BITMIX_MSG_REPLY) || r->hdr.seq != h->seq ||
	    r->hdr.length != (size_t)n || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		close_fds(fds, got);
		return bitmix_set_error(bm, -EPROTO, "malformed reply from bitmixd");
	}
	r->error[sizeof(r->error) - 1] = 0;
	if (r->status < 0) {
		close_fds(fds, got);
		return bitmix_set_error(bm, r->status, "%s", r->error);
	}
	if ((size_t)n < rep_min || (n_fds ? got < 1 : got != max_fds)) {
		close_fds(fds, got);
		return bitmix_set_error(bm, -EPROTO, "short reply from bitmixd");
	}
	if (n_fds)
		*n_fds = got;
	return 0;
}

static int call(struct bitmix *bm, void *req, size_t len, uint16_t type, void *rep, size_t rep_min,
		size_t rep_max, int *fds, int max_fds, int *n_fds)
{
	return call_fd(bm, req, len, type, rep, rep_min, rep_max, fds, max_fds, n_fds, -1);
}

/* The fixed-size round trip, here and for the other files of the library (libbitmix_internal.h). */
int bitmix_call(struct bitmix *bm, void *req, size_t len, uint16_t type, void *rep, size_t rep_len)
{
	return call(bm, req, len, type, rep, rep_len, rep_len, NULL, 0, NULL);
}

static int map_arena(struct bitmix *bm, const struct bitmix_hello_reply *rep, int arena_fd)
{
	const struct bitmix_arena_hdr *h;
	uint64_t end;

	if (rep->sq_entries == 0 || (rep->sq_entries & (rep->sq_entries - 1)) ||
	    rep->cq_entries == 0 || (rep->cq_entries & (rep->cq_entries - 1)) ||
	    __builtin_add_overflow(rep->data_offset, rep->data_size, &end) ||
	    end > rep->arena_size ||
	    rep->sq_offset + (uint64_t)rep->sq_entries * sizeof(struct bitmix_sqe) >
		    rep->cq_offset ||
	    rep->cq_offset + (uint64_t)rep->cq_entries * sizeof(struct bitmix_cqe) >
		    rep->data_offset)
		return bitmix_set_error(bm, -EPROTO, "bitmixd sent an inconsistent arena geometry");
	bm->arena = mmap(NULL, rep->arena_size, PROT_READ | PROT_WRITE, MAP_SHARED, arena_fd, 0);
	if (bm->arena == MAP_FAILED) {
		bm->arena = NULL;
		return bitmix_set_error(bm, -errno, "mapping the arena: %s", strerror(errno));
	}
	bm->arena_size = rep->arena_size;
	h = bm->hdr = (struct bitmix_arena_hdr *)bm->arena;
	if (h->magic != BITMIX_ARENA_MAGIC || h->sq_entries != rep->sq_entries ||
	    h->data_offset != rep->data_offset)
		return bitmix_set_error(bm, -EPROTO,
					"the arena's header disagrees with bitmixd's reply");
	bm->sq = (struct bitmix_sqe *)(bm->arena + rep->sq_offset);
	bm->cq = (struct bitmix_cqe *)(bm->arena + rep->cq_offset);
	bm->data = bm->arena + rep->data_offset;
	bm->data_size = rep->data_size;
	bm->sq_entries = rep->sq_entries;
	bm->cq_entries = rep->cq_entries;
	bm->blocks = calloc(1, sizeof(*bm->blocks));
	if (!bm->blocks)
		return bitmix_set_error(bm, -ENOMEM, "out of memory");
	bm->blocks->size = bm->data_size;
	return 0;
}

int bitmix_connect(const char *socket_path, struct bitmix **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct bitmix_hello_req req = { 0 };
	struct bitmix_hello_reply rep;
	struct bitmix *bm;
	int fds[3], n_fds = 0, r;

	*out = NULL;
	if (!socket_path)
		socket_path = getenv("BITMIX_SOCKET");
	if (!socket_path)
		socket_path = BITMIX_DEFAULT_SOCKET;
	if (strlen(socket_path) >= sizeof(sa.sun_path))
		return bitmix_set_error(NULL, -ENAMETOOLONG, "socket path %s is too long",
					socket_path);
	memcpy(sa.sun_path, socket_path, strlen(socket_path) + 1);
	bm = calloc(1, sizeof(*bm));
	if (!bm)
		return bitmix_set_error(NULL, -ENOMEM, "out of memory");
	bm->submit_efd = bm->complete_efd = -1;
	bm->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (bm->fd < 0 || connect(bm->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = bitmix_set_error(NULL, -errno, "cannot connect to bitmixd at %s: %s",
				     socket_path, strerror(errno));
		goto fail;
	}
	r = call(bm, &req, sizeof(req), BITMIX_MSG_HELLO, &rep, sizeof(rep), sizeof(rep), fds, 3,
		 &n_fds);
	if (r < 0)
		goto fail_msg;
	if (n_fds != (rep.doorbell == BITMIX_DOORBELL_EVENTFD ? 3 : 1) ||
	    (rep.doorbell != BITMIX_DOORBELL_EVENTFD && rep.doorbell != BITMIX_DOORBELL_FUTEX)) {
		close_fds(fds, n_fds);
		r = bitmix_set_error(bm, -EPROTO,
				     "bitmixd's HELLO reply has doorbell %u and %d descriptors",
				     rep.doorbell, n_fds);
		goto fail_msg;
	}
	bm->doorbell = rep.doorbell;
	if (n_fds == 3) {
		bm->submit_efd = fds[1];
		bm->complete_efd = fds[2];
	}
	bm->spin_ns = BITMIX_DEFAULT_SPIN_NS;
	bm->max_outstanding = rep.cq_entries < rep.max_in_flight ? rep.cq_entries
								 : rep.max_in_flight;
	r = map_arena(bm, &rep, fds[0]);
	close(fds[0]);
	if (r < 0)
		goto fail_msg;
	*out = bm;
	return 0;
fail_msg:
	bitmix_set_error(NULL, r, "%s", bm->error);
fail:
	bitmix_close(bm);
	return r;
}

void bitmix_close(struct bitmix *bm)
{
	if (!bm)
		return;
	while (bm->models) {
		struct bitmix_model *m = bm->models;

		bm->models = m->next;
		munmap((void *)m->control, m->control_size);
		free(m->layer_masks);
		free(m);
	}
	while (bm->blocks) {
		struct block *b = bm->blocks;

		bm->blocks = b->next;
		free(b);
	}
	if (bm->arena)
		munmap(bm->arena, bm->arena_size);
	if (bm->submit_efd >= 0)
		close(bm->submit_efd);
	if (bm->complete_efd >= 0)
		close(bm->complete_efd);
	if (bm->fd >= 0)
		close(bm->fd);
	free(bm);
}

static void desc_to_info(const struct bitmix_model_desc *d, struct bitmix_model_info *info)
{
	memset(info, 0, sizeof(*info));
	memcpy(info->name, d->name, sizeof(info->name));
	info->name[sizeof(info->name) - 1] = 0;
	info->layer_count = d->layer_count;
	info->input_h = d->input_h;
	info->input_w = d->input_w;
	info->input_c = d->input_c;
	info->output_size = d->output_size;
	info->bits_mask = d->bits_mask;
}

int bitmix_list_models(struct bitmix *bm, struct bitmix_model_info *infos, size_t max)
{
	struct bitmix_msg_hdr req;
	uint8_t buf[BITMIX_MSG_MAX];
	struct bitmix_list_reply *rep = (void *)buf;
	size_t fits;
	int r;

	r = call(bm, &req, sizeof(req), BITMIX_MSG_LIST_MODELS, buf, sizeof(*rep), sizeof(buf),
		 NULL, 0, NULL);
	if (r < 0)
		return r;
	fits = (rep->r.hdr.length - sizeof(*rep)) / sizeof(rep->models[0]);
	for (size_t i = 0; i < max && i < fits && i < rep->count; i++)
		desc_to_info(&rep->models[i], &infos[i]);
	return (int)rep->count;
}

int bitmix_open_model(struct bitmix *bm, const char *name, struct bitmix_model **out)
{
	struct bitmix_open_req req = { 0 };
	uint8_t buf[BITMIX_MSG_MAX];
	struct bitmix_open_reply *rep = (void *)buf;
	struct bitmix_model *m;
	int fds[2], r;

	if (strlen(name) >= sizeof(req.name))
		return bitmix_set_error(bm, -ENAMETOOLONG, "model name \"%s\" is too long", name);
	memcpy(req.name, name, strlen(name) + 1);
	r = call(bm, &req, sizeof(req), BITMIX_MSG_OPEN_MODEL, buf, sizeof(*rep), sizeof(buf), fds,
		 2, NULL);
	if (r < 0)
		return r;
	close(fds[1]); /* the model's bytes: not needed to infer */
	if (rep->model.layer_count > BITMIX_MAX_LAYERS ||
	    rep->r.hdr.length < sizeof(*rep) + rep->model.layer_count * sizeof(uint16_t) ||
	    rep->control_size < sizeof(struct bitmix_control_page)) {
		close(fds[0]);
		return bitmix_set_error(bm, -EPROTO, "malformed OPEN_MODEL reply");
	}
	m = calloc(1, sizeof(*m));
	if (m)
		m->layer_masks = calloc(rep->model.layer_count + 1, sizeof(uint16_t));
	if (!m || !m->layer_masks) {
		free(m);
		close(fds[0]);
		return bitmix_set_error(bm, -ENOMEM, "out of memory");
	}
	m->control = mmap(NULL, rep->control_size, PROT_READ, MAP_SHARED, fds[0], 0);
	close(fds[0]);
	if (m->control == MAP_FAILED) {
		r = bitmix_set_error(bm, -errno, "mapping the control page: %s", strerror(errno));
		free(m->layer_masks);
		free(m);
		return r;
	}
	m->bm = bm;
	m->id = rep->model.model_id;
	m->control_size = rep->control_size;
	desc_to_info(&rep->model, &m->info);
	memcpy(m->layer_masks, rep->layer_bits_mask, rep->model.layer_count * sizeof(uint16_t));
	m->next = bm->models;
	bm->models = m;
	*out = m;
	return 0;
}

const struct bitmix_model_info *bitmix_model_get_info(const struct bitmix_model *model)
{
	return &model->info;
}

uint16_t bitmix_model_layer_bits_mask(const struct bitmix_model *model, uint32_t layer)
{
	return layer < model->info.layer_count ? model->layer_masks[layer] : 0;
}

int bitmix_get_bits(struct bitmix_model *model, struct bitmix_layer_bits *bits,
		    uint64_t *generation)
{
	static_assert(sizeof(struct bitmix_layer_bits) == sizeof(struct bitmix_bits) &&
			      offsetof(struct bitmix_layer_bits, a_bits) ==
				      offsetof(struct bitmix_bits, a_bits),
		      "public and wire bits share a layout");
	uint64_t g = bitmix_control_snapshot(model->control, model->info.layer_count,
					     (struct bitmix_bits *)bits);

	if (generation)
		*generation = g;
	return 0;
}

int bitmix_set_bits(struct bitmix_model *model, const struct bitmix_layer_bits *bits,
		    uint64_t *generation)
{
	struct bitmix *bm = model->bm;
	uint8_t buf[BITMIX_MSG_MAX] = { 0 };
	struct bitmix_set_bits_req *req = (void *)buf;
	struct bitmix_set_bits_reply rep;
	uint32_t n = model->info.layer_count;
	size_t len = sizeof(*req) + n * sizeof(req->bits[0]);
	int r;

	req->model_id = model->id;
	req->layer_count = n;
	for (uint32_t i = 0; i < n; i++)
		req->bits[i] = (struct bitmix_bits){ bits[i].w_bits, bits[i].a_bits };
	r = bitmix_call(bm, req, len, BITMIX_MSG_SET_BITS, &rep, sizeof(rep));
	if (r < 0)
		return r;
	if (generation)
		*generation = rep.generation;
	return 0;
}

int bitmix_get_status(struct bitmix *bm, struct bitmix_status *status)
{
	struct bitmix_msg_hdr req;
	struct bitmix_status_reply rep;
	int r;

	r = bitmix_call(bm, &req, sizeof(req), BITMIX_MSG_STATUS, &rep, sizeof(rep));
	if (r < 0)
		return r;
	memcpy(status->version, rep.version, sizeof(status->version));
	status->version[sizeof(status->version) - 1] = 0;
	status->uptime_ns = rep.uptime_ns;
	status->requests_completed = rep.requests_completed;
	status->requests_failed = rep.requests_failed;
	status->dropped_on_close = rep.dropped_on_close;
	status->clients = rep.clients;
	status->models = rep.models;
	status->workers = rep.workers;
	memcpy(status->doorbell, rep.doorbell, sizeof(status->doorbell));
	status->doorbell[sizeof(status->doorbell) - 1] = 0;
	memcpy(status->kernels, rep.kernels, sizeof(status->kernels));
	status->kernels[sizeof(status->kernels) - 1] = '\0';
	return 0;
}

int bitmix_get_sensors(struct bitmix *bm, struct bitmix_sensors *out)
{
	struct bitmix_msg_hdr req;
	struct bitmix_sensors_reply rep;
	int r;

	r = bitmix_call(bm, &req, sizeof(req), BITMIX_MSG_SENSORS, &rep, sizeof(rep));
	if (r < 0)
		return r;
	memset(out, 0, sizeof(*out));
	memcpy(out->source, rep.source, sizeof(out->source) - 1);
	memcpy(out->explain, rep.explain, sizeof(out->explain) - 1);
	out->have = rep.have;
	out->temp_c = rep.temp_mc / 1000.0;
	out->power_w = rep.power_mw / 1000.0;
	out->load = rep.load_permille / 1000.0;
	out->freq_khz = rep.freq_khz;
	out->period_ms = rep.period_ms;
	out->age_s = (double)rep.age_ns / 1e9;
	out->samples = rep.samples;
	out->events = rep.events;
	return 0;
}

int bitmix_region_register(struct bitmix *bm, int memfd, void *addr, size_t size)
{
	struct bitmix_region_req req = { .size = size };
	struct bitmix_region_reply rep;
	struct client_region *slot = NULL;
	int r;

	for (unsigned i = 0; i < BITMIX_MAX_CLIENT_REGIONS && !slot; i++)
		if (!bm->regions[i].id)
			slot = &bm->regions[i];
	if (!slot)
		return bitmix_set_error(bm, -EMFILE,
					"this connection has %d regions, libbitmix's most",
					BITMIX_MAX_CLIENT_REGIONS);
	r = call_fd(bm, &req, sizeof(req), BITMIX_MSG_REGISTER_REGION, &rep, sizeof(rep),
		    sizeof(rep), NULL, 0, NULL, memfd);
	if (r < 0)
		return r;
	if (rep.region == 0 || rep.region > UINT16_MAX)
		return bitmix_set_error(bm, -EPROTO, "bitmixd answered region %u", rep.region);
	*slot = (struct client_region){ rep.region, addr, size };
	return (int)rep.region;
}

int bitmix_region_unregister(struct bitmix *bm, int region)
{
	struct bitmix_region_req req = { .region = (uint32_t)region };
	struct bitmix_reply rep;
	int r;

	r = bitmix_call(bm, &req, sizeof(req), BITMIX_MSG_UNREGISTER_REGION, &rep, sizeof(rep));
	if (r < 0)
		return r;
	for (unsigned i = 0; i < BITMIX_MAX_CLIENT_REGIONS; i++)
		if (bm->regions[i].id == (uint32_t)region)
			bm->regions[i].id = 0;
	return 0;
}
