/* SPDX-License-Identifier: MIT */
/*
 * doorbell.c — how bitmixd's event loop and its clients wake each other: spin, then sleep.
 *
 * The loop polls every client's submission tail for ipc.spin_us after the last work, then
 * advertises BITMIX_DAEMON_SLEEPING in each arena and sleeps in io_uring: on a FUTEX_WAIT per
 * client (the futex word is the client's sq_tail; kernels 6.7+) or on a read of the client's
 * submit eventfd. Clients make a system call only while that flag is set, and the daemon wakes a
 * client only while its BITMIX_CLIENT_SLEEPING flag is set; the loop's wakes are queued as
 * io_uring FUTEX_WAKEs and go to the kernel together in the loop's next submit.
 *
 * Memory ordering (the NEED_WAKEUP pattern): sleeper: store flag; full fence; load the other
 * side's tail; sleep only if unchanged. Producer: store-release tail; full fence; load flag;
 * wake only if set. A futex wait queued with a stale value returns -EAGAIN at once, so a wake
 * that comes before the wait is armed is never lost. Flags are hints: a client lying about its
 * own flag only costs it wake-ups or latency.
 */
#include <errno.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

/* io_uring's futex operations, from the kernel's UAPI (a stable ABI; Debian 12's liburing 2.3
 * and its 6.1 headers predate them). SQE: fd = FUTEX2 flags, addr = futex word, addr2 = value
 * (WAIT) or how many to wake (WAKE), addr3 = bitset mask. */
#define BMX_IORING_OP_FUTEX_WAIT 51
#define BMX_IORING_OP_FUTEX_WAKE 52
#define BMX_FUTEX2_SIZE_U32 0x02 /* and not FUTEX2_PRIVATE (128): the words are in shared memfds */

const char *doorbell_name(int doorbell)
{
	return doorbell == BITMIX_DOORBELL_FUTEX ? "futex" : "eventfd";
}

int doorbell_probe(struct bmx_daemon *d)
{
	enum bmx_doorbell_choice want = d->config->ipc.doorbell;
	struct io_uring_probe *p = io_uring_get_probe_ring(&d->ring);
	bool have = p && io_uring_opcode_supported(p, BMX_IORING_OP_FUTEX_WAIT) &&
		    io_uring_opcode_supported(p, BMX_IORING_OP_FUTEX_WAKE);

	if (p)
		io_uring_free_probe(p);
	d->spin_ns = (uint64_t)d->config->ipc.spin_us * 1000;
	if (want == BMX_DOORBELL_FUTEX && !have) {
		log_error("ipc.doorbell is futex in %s, but this kernel's io_uring has no futex "
			  "operations (Linux 6.7+): use auto or eventfd",
			  d->config->source_path);
		return -EOPNOTSUPP;
	}
	d->doorbell = want == BMX_DOORBELL_EVENTFD || !have ? BITMIX_DOORBELL_EVENTFD
							    : BITMIX_DOORBELL_FUTEX;
	log_info("doorbell: %s (%s), spin %u us", doorbell_name(d->doorbell),
		 want == BMX_DOORBELL_EVENTFD ? "forced by ipc.doorbell"
		 : have			      ? "io_uring has futex operations"
					      : "io_uring has no futex operations, falling back",
		 d->config->ipc.spin_us);
	d->futex_wake_op = (struct loop_op){ .fn = NULL }; /* nothing to do when done */
	return 0;
}

static void prep_futex(struct io_uring_sqe *sqe, uint8_t op, uint32_t *word, uint64_t value)
{
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = op;
	sqe->fd = BMX_FUTEX2_SIZE_U32;
	sqe->addr = (uint64_t)(uintptr_t)word;
	sqe->addr2 = value;
	sqe->addr3 = FUTEX_BITSET_MATCH_ANY;
}

/* Wait for the client's next submission bell: a futex wait on sq_tail, or an eventfd read. */
int doorbell_arm(struct bmx_daemon *d, struct session *s)
{
	struct io_uring_sqe *sqe = event_loop_get_sqe(d);

	if (!sqe)
		return -EBUSY;
	if (d->doorbell == BITMIX_DOORBELL_FUTEX)
		prep_futex(sqe, BMX_IORING_OP_FUTEX_WAIT, &s->hdr->sq_tail,
			   bitmix_load_acquire(&s->hdr->sq_tail));
	else
		io_uring_prep_read(sqe, s->submit_efd, &s->doorbell_value,
				   sizeof(s->doorbell_value), 0);
	event_loop_arm(d, sqe, &s->doorbell_op);
	s->doorbell_armed = true;
	return 0;
}

bool doorbell_spin(struct bmx_daemon *d)
{
	bool worked = false;

	if (!d->spin_ns)
		return false;
	for (;;) {
		if (io_uring_sq_ready(&d->ring))
			io_uring_submit(&d->ring); /* wakes and re-arms queued by the last pass */
		if (session_drain_all(d) > 0) {
			d->last_work_ns = now_ns();
			worked = true;
			continue;
		}
		if (io_uring_cq_ready(&d->ring) || d->stopping ||
		    now_ns() - d->last_work_ns >= d->spin_ns)
			return worked;
		bitmix_cpu_relax();
	}
}

bool doorbell_sleep_prepare(struct bmx_daemon *d)
{
	for (struct session *s = d->sessions; s; s = s->next)
		if (s->has_arena)
			__atomic_store_n(&s->hdr->daemon_flags, BITMIX_DAEMON_SLEEPING,
					 __ATOMIC_RELAXED);
	bitmix_smp_mb();
	if (session_drain_all(d) > 0) {
		doorbell_awake(d);
		d->last_work_ns = now_ns();
		return false;
	}
	return true;
}

void doorbell_awake(struct bmx_daemon *d)
{
	for (struct session *s = d->sessions; s; s = s->next)
		if (s->has_arena)
			__atomic_store_n(&s->hdr->daemon_flags, 0, __ATOMIC_RELAXED);
}

void doorbell_wake_client(struct session *s, bool from_loop)
{
	struct bmx_daemon *d = s->daemon;
	struct io_uring_sqe *sqe;
	uint64_t one = 1;

	if (from_loop)
		s->wake_pending = false;
	bitmix_smp_mb(); /* the CQ tail store before the flag load */
	if (!(__atomic_load_n(&s->hdr->client_flags, __ATOMIC_RELAXED) & BITMIX_CLIENT_SLEEPING))
		return;
	if (d->doorbell == BITMIX_DOORBELL_EVENTFD) {
		if (write(s->complete_efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_debug("client %u: completion doorbell: %m", s->id);
		return;
	}
	if (from_loop && (sqe = event_loop_get_sqe(d))) {
		prep_futex(sqe, BMX_IORING_OP_FUTEX_WAKE, &s->hdr->cq_tail, 1);
		event_loop_arm(d, sqe, &d->futex_wake_op);
		return;
	}
	/* A worker thread (which never touches the ring), or the ring is full. */
	syscall(SYS_futex, &s->hdr->cq_tail, FUTEX_WAKE, 1, NULL, NULL, 0);
}
