/* SPDX-License-Identifier: MIT */
/*
 * proto_stubs.c — the parts of bitmixd that fuzz_proto.c replaces: the io_uring event loop
 * (event_loop.c), the doorbells (doorbell.c) and the worker pool (workers.c).
 *
 * The session code under test (session*.c) is linked unchanged; what it asks of these parts is
 * done at once on the calling thread, so that one input always runs the same way. The worker
 * "runs" a job by checking what admission promised: its tensors lie inside the memory it named.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <time.h>

#include "daemon.h"
#include "proto_stubs.h"

struct io_uring_sqe *event_loop_get_sqe(struct bmx_daemon *d)
{
	(void)d;
	return NULL;
}

void event_loop_arm(struct bmx_daemon *d, struct io_uring_sqe *sqe, struct loop_op *op)
{
	(void)d, (void)sqe, (void)op;
}

int event_loop_arm_recv(struct bmx_daemon *d, struct session *s)
{
	(void)d, (void)s;
	return 0;
}

int event_loop_arm_timeout(struct bmx_daemon *d, struct loop_op *op, struct __kernel_timespec *ts)
{
	(void)d, (void)op, (void)ts;
	return 0;
}

int event_loop_arm_poll(struct bmx_daemon *d, struct loop_op *op, int fd)
{
	(void)d, (void)op, (void)fd;
	return 0;
}

void event_loop_cancel(struct bmx_daemon *d, struct loop_op *op)
{
	(void)d, (void)op;
}

int daemon_reload(struct bmx_daemon *d, struct bmx_config_error *err)
{
	(void)d;
	snprintf(err->msg, sizeof(err->msg), "reload is not part of the protocol fuzz target");
	return -EOPNOTSUPP;
}

const char *doorbell_name(int doorbell)
{
	return doorbell == BITMIX_DOORBELL_FUTEX ? "futex" : "eventfd";
}

int doorbell_arm(struct bmx_daemon *d, struct session *s)
{
	(void)d, (void)s;
	return 0;
}

void doorbell_wake_client(struct session *s, bool from_loop)
{
	(void)s, (void)from_loop;
}

/* Does [P, P + LEN) lie inside the arena's data area or the region REF? */
static bool tensor_inside(const struct session *s, const struct region *ref, const void *p,
			  uint64_t len)
{
	const uint8_t *base = ref ? ref->base : s->data;
	uint64_t size = ref ? ref->size : s->data_size;
	const uint8_t *q = p;

	return q >= base && (uint64_t)(q - base) <= size && len <= size - (uint64_t)(q - base);
}

void worker_pool_submit(struct worker_pool *pool, struct job *job, unsigned weight)
{
	const struct bmx_model *m = job->model->model;
	uint64_t in = (uint64_t)job->sqe.batch * bmx_model_input_size(m) * sizeof(float);
	uint64_t out = (uint64_t)job->sqe.batch * bmx_model_output_size(m) * sizeof(float);

	(void)pool, (void)weight;
	if (job->sqe.opcode != BITMIX_OP_INFER ||
	    !tensor_inside(job->session, job->in_region, job->in, in) ||
	    !tensor_inside(job->session, job->out_region, job->out, out))
		abort(); /* admission let through what it promised to refuse */
	proto_stub_jobs++;
	job_complete(job, 0, 0);
}

/* Jobs complete at submission here: none is ever queued to cancel. */
struct job *worker_pool_cancel(struct worker_pool *pool, struct session *s)
{
	(void)pool, (void)s;
	return NULL;
}

unsigned worker_pool_size(const struct worker_pool *pool)
{
	(void)pool;
	return 1;
}

void worker_pool_set_work_cap(struct worker_pool *pool, double cpus)
{
	(void)pool, (void)cpus;
}

uint64_t worker_pool_occupied_ns(const struct worker_pool *pool)
{
	(void)pool;
	return 0;
}

uint64_t worker_pool_throttled_ns(const struct worker_pool *pool)
{
	(void)pool;
	return 0;
}

unsigned long proto_stub_jobs;

/*
 * The cost tables' measuring threads (daemon_cost.c) ask for SCHED_IDLE. On a busy machine such
 * a thread may not run for many seconds, and unloading its model joins it: an input that loads
 * and unloads a model would then take that long. Here they keep the fuzzer's priority.
 */
int pthread_setschedparam(pthread_t thread, int policy, const struct sched_param *param)
{
	(void)thread, (void)policy, (void)param;
	return 0;
}
