/* SPDX-License-Identifier: MIT */
/*
 * event_loop.c — bitmixd's one io_uring event loop.
 *
 * Everything the daemon waits for is an io_uring operation whose user_data points at a struct
 * loop_op: accepting clients, each client's control messages (recvmsg), each client's submit
 * doorbell (a futex wait or an eventfd read, doorbell.c), and signals (a signalfd read). Before
 * it sleeps, the loop spins on the clients' rings for ipc.spin_us. Worker threads never touch
 * the ring. SIGTERM/SIGINT stop the daemon after in-flight requests finish; SIGHUP reloads the
 * configuration and keeps the old one if the new one is not valid.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

struct io_uring_sqe *event_loop_get_sqe(struct bmx_daemon *d)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&d->ring);

	if (!sqe) {
		/* The submission queue is full: hand what is queued to the kernel and retry. */
		io_uring_submit(&d->ring);
		sqe = io_uring_get_sqe(&d->ring);
	}
	return sqe;
}

static struct io_uring_sqe *get_sqe(struct bmx_daemon *d)
{
	return event_loop_get_sqe(d);
}

void event_loop_arm(struct bmx_daemon *d, struct io_uring_sqe *sqe, struct loop_op *op)
{
	io_uring_sqe_set_data(sqe, op);
	d->pending_ops++;
	if (op->session)
		session_ref(op->session);
}

static int arm(struct bmx_daemon *d, struct io_uring_sqe *sqe, struct loop_op *op)
{
	event_loop_arm(d, sqe, op);
	return 0;
}

static int arm_accept(struct bmx_daemon *d)
{
	struct io_uring_sqe *sqe = get_sqe(d);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_accept(sqe, d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	return arm(d, sqe, &d->accept_op);
}

static int arm_signal(struct bmx_daemon *d)
{
	struct io_uring_sqe *sqe = get_sqe(d);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_read(sqe, d->signal_fd, &d->siginfo, sizeof(d->siginfo), 0);
	return arm(d, sqe, &d->signal_op);
}

/*
 * Until a connection's first message, its receive is linked to a timeout of
 * limits.handshake_timeout_ms: a silent connection is cancelled out of its receive and closed.
 */
int event_loop_arm_recv(struct bmx_daemon *d, struct session *s)
{
	struct io_uring_sqe *sqe;
	unsigned ms = d->config->limits.handshake_timeout_ms;

	if (!s->greeted && io_uring_sq_space_left(&d->ring) < 2)
		io_uring_submit(&d->ring); /* a link must not be split between two submissions */
	sqe = get_sqe(d);
	if (!sqe)
		return -EBUSY;
	s->recv_iov = (struct iovec){ .iov_base = s->recv_buf, .iov_len = sizeof(s->recv_buf) };
	s->recv_msg = (struct msghdr){
		.msg_iov = &s->recv_iov,
		.msg_iovlen = 1,
		.msg_control = s->recv_control.buf,
		.msg_controllen = sizeof(s->recv_control.buf),
	};
	io_uring_prep_recvmsg(sqe, s->fd, &s->recv_msg, MSG_CMSG_CLOEXEC);
	arm(d, sqe, &s->recv_op);
	if (s->greeted)
		return 0;
	sqe->flags |= IOSQE_IO_LINK;
	sqe = get_sqe(d); /* there is room: checked above */
	s->handshake_timeout =
		(struct __kernel_timespec){ .tv_sec = ms / 1000,
					    .tv_nsec = (long long)(ms % 1000) * 1000000 };
	io_uring_prep_link_timeout(sqe, &s->handshake_timeout, 0);
	return arm(d, sqe, &s->handshake_op);
}

int event_loop_arm_timeout(struct bmx_daemon *d, struct loop_op *op, struct __kernel_timespec *ts)
{
	struct io_uring_sqe *sqe = get_sqe(d);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_timeout(sqe, ts, 0, 0);
	return arm(d, sqe, op);
}

int event_loop_arm_poll(struct bmx_daemon *d, struct loop_op *op, int fd)
{
	struct io_uring_sqe *sqe = get_sqe(d);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_add(sqe, fd, POLLIN);
	return arm(d, sqe, op);
}

/*
 * Out of descriptors or memory, the listening socket stays readable and an immediate retry
 * would spin: pause 100 ms, serving everyone already connected meanwhile.
 */
/* The pause after running out of descriptors is over: accept again. */
static void on_backoff(struct bmx_daemon *d, struct loop_op *op, int res)
{
	(void)op, (void)res;
	if (!d->stopping)
		arm_accept(d);
}

static void accept_backoff(struct bmx_daemon *d)
{
	struct io_uring_sqe *sqe = get_sqe(d);

	if (!sqe)
		return;
	d->backoff = (struct __kernel_timespec){ .tv_nsec = 100 * 1000 * 1000 };
	io_uring_prep_timeout(sqe, &d->backoff, 0, 0);
	arm(d, sqe, &d->backoff_op);
}

static void on_accept(struct bmx_daemon *d, struct loop_op *op, int res)
{
	(void)op;
	char why[200];
	struct session *s;
	int r;

	if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
		log_warning_errno(res, "accepting a client (retrying in 100 ms; %u connected)",
				  d->n_sessions);
		if (!d->stopping)
			accept_backoff(d);
		return;
	}
	if (res < 0) {
		if (res != -ECANCELED && !d->stopping)
			log_warning_errno(res, "accept");
		goto rearm;
	}
	r = session_new(d, res, &s);
	if (r < 0) {
		log_warning_errno(r, "setting up a client");
		close(res);
		goto rearm;
	}
	r = session_admit(s, why, sizeof(why));
	if (r < 0) {
		log_info("refusing a client (pid %d, uid %u): %s", (int)s->pid, (unsigned)s->uid,
			 why);
		reply_refusal(s->fd, r, why);
		session_unref(s);
		goto rearm;
	}
	s->next = d->sessions;
	if (d->sessions)
		d->sessions->prev = s;
	d->sessions = s;
	d->n_sessions++;
	log_debug("client %u connected (pid %d, uid %u)", s->id, (int)s->pid, (unsigned)s->uid);
	if (event_loop_arm_recv(d, s) < 0)
		session_close(s, "daemon out of io_uring entries: disconnected");
rearm:
	if (!d->stopping)
		arm_accept(d);
}

static void on_signal(struct bmx_daemon *d, struct loop_op *op, int res)
{
	(void)op;
	if (res == (int)sizeof(d->siginfo)) {
		switch (d->siginfo.ssi_signo) {
		case SIGHUP: {
			struct bmx_config_error err;

			(void)daemon_reload(d, &err);
			break;
		}
		case SIGTERM:
		case SIGINT:
			log_info("signal %u: finishing in-flight requests, then exiting",
				 d->siginfo.ssi_signo);
			d->stopping = true;
			break;
		default:
			test_hooks_on_signal(d, d->siginfo.ssi_signo);
			break;
		}
	} else if (res != -ECANCELED) {
		log_warning_errno(res < 0 ? res : EIO, "reading the signalfd");
	}
	if (!d->stopping)
		arm_signal(d);
}

/* Every completion: the operation's own callback, then the reference it held on its session. */
static void dispatch(struct bmx_daemon *d, struct loop_op *op, int res)
{
	struct session *s = op->session;

	d->pending_ops--;
	if (op->fn)
		op->fn(d, op, res);
	if (s)
		session_unref(s);
}

void event_loop_cancel(struct bmx_daemon *d, struct loop_op *op)
{
	static struct loop_op cancel = { .fn = NULL }; /* its result: nothing to do */
	struct io_uring_sqe *sqe = get_sqe(d);

	if (!sqe)
		return;
	io_uring_prep_cancel(sqe, op, 0);
	io_uring_sqe_set_data(sqe, &cancel);
	d->pending_ops++;
}

/*
 * Stop: take what clients already submitted, let the workers finish every request, then end
 * every session and wait until the kernel has given back every operation that points at them.
 */
static void shutdown_sessions(struct bmx_daemon *d)
{
	for (struct session *s = d->sessions; s; s = s->next)
		if (s->has_arena)
			session_drain_submissions(s);
	worker_pool_free(d->pool);
	d->pool = NULL;
	event_loop_cancel(d, &d->accept_op);
	event_loop_cancel(d, &d->signal_op);
	event_loop_cancel(d, &d->backoff_op);
	sensor_loop_stop(d);
	daemon_systemd_watchdog_stop(d);
	dbus_stop(d);
	while (d->sessions)
		session_close(d->sessions, NULL);
	io_uring_submit(&d->ring);
}

/* Spin on the rings for a while, then sleep in io_uring until something completes. */
static int wait_for_work(struct bmx_daemon *d)
{
	bool sleep;
	int r;

	doorbell_spin(d);
	sleep = !io_uring_cq_ready(&d->ring) && doorbell_sleep_prepare(d);
	r = io_uring_submit_and_wait(&d->ring, sleep ? 1 : 0);
	if (sleep)
		doorbell_awake(d);
	return r;
}

int event_loop_run(struct bmx_daemon *d)
{
	bool shutting_down = false;
	int r;

	d->accept_op = (struct loop_op){ .fn = on_accept };
	d->signal_op = (struct loop_op){ .fn = on_signal };
	d->backoff_op = (struct loop_op){ .fn = on_backoff };
	if ((r = arm_accept(d)) < 0 || (r = arm_signal(d)) < 0)
		return r;
	sensor_loop_arm(d);
	daemon_systemd_watchdog_start(d);
	dbus_after_pass(d);
	while (d->pending_ops > 0) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;

		if (d->stopping && !shutting_down) {
			shutting_down = true;
			shutdown_sessions(d);
		}
		r = wait_for_work(d);
		if (r < 0 && r != -EINTR)
			return log_error_errno(r, "io_uring_submit_and_wait");
		io_uring_for_each_cqe(&d->ring, head, cqe)
		{
			dispatch(d, io_uring_cqe_get_data(cqe), cqe->res);
			n++;
		}
		io_uring_cq_advance(&d->ring, n);
		dbus_after_pass(d); /* the bus's messages, changes to announce, its poll re-armed */
	}
	return 0;
}
