/* SPDX-License-Identifier: MIT */
/*
 * daemon.h — bitmixd's top-level context and the pieces that hang off it.
 *
 * Threads: one event-loop thread owns the io_uring, the listening socket, the sessions list and
 * the model store; N worker threads run inference. They share only what is declared here as
 * shared: refcounts and counters (atomics), each session's completion ring (under cq_lock) and
 * each model's control page (a seqlock the loop writes and workers read).
 */
#ifndef BITMIX_DAEMON_H
#define BITMIX_DAEMON_H

#include <liburing.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "bmx_util.h"
#include "bitmix_proto.h"
#include "bmx_engine.h"
#include "config.h"
#include "cost_cache.h"
#include "governor.h"
#include "sensors.h"

#define BMX_MAX_BATCH 256
#define BMX_DEFAULT_SQ_ENTRIES 64
#define BMX_MAX_SQ_ENTRIES 1024
#define BMX_DEFAULT_DATA_SIZE (16u << 20)
#define BMX_MAX_DATA_SIZE (256u << 20)
#define BMX_MAX_OPEN_MODELS 64 /* per session */
#define BMX_MAX_SESSIONS 1024  /* every client; docs/protocol.md, "Connections" */
#define BMX_ADMIN_RESERVE 16   /* of them, kept for administrators (bmx_config_is_admin) */
#define BMX_MAX_REGIONS 64     /* per session; limits.regions may lower it */
#define BMX_FDNAME_MAX 256     /* a model's name in systemd's fd store (model_fdstore.c) */
#define BMX_MAX_STORED_MODELS 64

/*
 * Per-sample adaptive precision of one served model (served_adaptive.c, docs/adaptive.md).
 * default_mode and floor are written by the loop thread and read by workers; the counters are
 * added to by workers and read by the loop. All atomic, relaxed: each is one number on its own.
 */
struct served_adaptive_window {
	uint64_t samples, adaptive_samples, bitops, ceiling_bitops;
};

struct served_adaptive {
	unsigned default_mode; /* enum bmx_adaptive_mode of BITMIX_PRECISION_CURRENT requests */
	uint8_t floor;	       /* max(QoS floor, policy min_bits), 0 when ungoverned */
	uint64_t requests, samples, escalated;
	uint64_t bitops;	 /* spent by adaptive requests */
	uint64_t ceiling_bitops; /* what the same samples cost at the operating point */
	struct served_adaptive_window window; /* loop thread: the counters at the last tick */
};

/*
 * A served model's per-layer cost table (daemon_cost.c): what fitted the start-up budget (or the
 * cache) at load, completed by a thread at idle priority that publishes each batch's rows under
 * LOCK with a new GENERATION; the loop hands them to the policy on its next tick.
 */
struct served_cost {
	pthread_mutex_t lock;
	bool lock_ready;
	struct cost_table table; /* under lock: measured rows and the estimates of the rest */
	char estimated[200];	 /* under lock: how the estimates were made, "" when none */
	uint64_t complete_ns;	 /* under lock: when the last row was measured, 0 = not yet */
	unsigned generation;	 /* atomic: bumped whenever the table changes */
	unsigned applied;	 /* loop thread: the generation the policy has */
	bool stop;		 /* atomic: the model is being freed, the thread ends */
	bool done;		 /* under lock: the thread has finished its work */
	bool orphaned;		 /* under lock: the model was freed first: the thread frees it */
	bool thread_running;
	pthread_t thread;
	uint64_t start_ns;    /* when the model's measurement began */
	char source[16];      /* "cache" or "measured" */
	struct cost_key key;  /* what the table is valid for */
	char cache_path[512]; /* "" when no cache directory */
};

/* A model being served: its sealed memfd, the validated view, the engine and the control page. */
struct served_model {
	char name[BITMIX_NAME_MAX];
	char *path;
	uint32_t id;
	int memfd; /* the .bmx bytes, sealed against every change */
	uint64_t size;
	struct bmx_model *model; /* maps memfd */
	struct bmx_engine *engine;
	int control_fd; /* sealed with F_SEAL_FUTURE_WRITE: clients map it read-only */
	struct bitmix_control_page *control; /* the daemon's writable mapping */
	uint64_t control_size;
	int refs;		    /* atomic: the store's, each session's open, each job's */
	struct gov_policy *policy;  /* the governor's policy for it while the store serves it */
	uint64_t samples_completed; /* atomic: samples inferred, for the governor's rate */
	double uniform_ns[9];	    /* engine ns/sample at uniform b bits: the cost table's sums */
	struct served_cost cost;    /* per layer and bit-width (daemon_cost.c) */
	uint64_t requests_admitted, samples_admitted; /* loop thread: for the mean batch */
	struct {
		uint64_t requests, samples;
	} batch_window;			 /* loop thread: at the last tick */
	double mean_batch;		 /* loop thread: samples per request, averaged over ticks */
	struct served_adaptive adaptive; /* per-sample precision: default, floor, statistics */
	uint64_t mtime_ns;		 /* of the file when it was read */
	char fdname[BMX_FDNAME_MAX];	 /* its name in systemd's fd store, "" when not stored */
	bool from_fdstore;	   /* served from the memfd a previous bitmixd left in the store */
	struct bmx_daemon *daemon; /* set once governed: publications are announced on D-Bus */
	bool retired;		   /* unloaded (D-Bus UnloadModel): new requests get -ENODEV */
};

/* A model memfd systemd handed back at start (model_fdstore.c), until a config entry takes it. */
struct stored_model {
	char fdname[BMX_FDNAME_MAX];
	char model[BITMIX_NAME_MAX];
	uint64_t path_hash, size, mtime_ns;
	char kernels[16];     /* the compute path its cost table was measured on, "" if none */
	double uniform_ns[9]; /* that cost table (served_model.uniform_ns) */
	int fd;		      /* -1 once taken or dropped */
};

struct model_store {
	struct served_model **models; /* the models the config names, in config order */
	size_t count;
	uint32_t next_id;
	struct stored_model stored[BMX_MAX_STORED_MODELS]; /* from systemd's fd store, at start */
	size_t n_stored;
};

struct loop_op;
/* What runs when an operation completes: RES is its CQE's result. Each subsystem sets its own. */
typedef void loop_fn(struct bmx_daemon *d, struct loop_op *op, int res);

/* Every io_uring submission's user_data points at one of these. */
struct loop_op {
	loop_fn *fn;		 /* NULL: nothing to do (cancellations, batched futex wakes) */
	struct session *session; /* a session's operations: held for the operation's lifetime */
};

/* A client memfd registered once and mapped by the daemon (session_region.c). */
struct region {
	int refs;    /* atomic: the session's table, each job that names it */
	uint32_t id; /* >= 1 */
	uint8_t *base;
	uint64_t size;
};

/* A session's place in the workers' deficit round-robin (workers.c); under the pool's lock. */
struct session_fair {
	struct job *head, *tail; /* queued, in submission order */
	struct session *next;	 /* in the pool's round */
	int64_t deficit;	 /* samples it may still run this round */
	unsigned weight;	 /* limits.weights of its uid, 1 by default */
	bool active;		 /* in the round: has queued jobs */
	bool closed;		 /* worker_pool_cancel ran: a running slice's rest is dropped */
};

struct session {
	struct bmx_daemon *daemon;
	struct session *next, *prev; /* the daemon's list, loop thread only */
	uint32_t id;
	int fd;	   /* control socket */
	pid_t pid; /* SO_PEERCRED */
	uid_t uid;
	gid_t gid;
	gid_t *groups; /* SO_PEERGROUPS */
	int n_groups;
	int refs; /* atomic: the loop's, each pending io_uring op's, each job's */
	bool closing;

	/* Control messages. */
	struct loop_op recv_op;
	struct loop_op handshake_op; /* limits.handshake_timeout_ms, linked to the first receive */
	struct __kernel_timespec handshake_timeout;
	bool greeted; /* a first message arrived: no deadline any more */
	uint8_t recv_buf[BITMIX_MSG_MAX] __attribute__((aligned(8))); /* read as message structs */
	struct iovec recv_iov;
	struct msghdr recv_msg;
	union {
		char buf[128]; /* room for 16 fds; fds a client sends are closed unread */
		uint64_t align;
	} recv_control;

	/* Data plane, set by HELLO. Geometry and the daemon's own indices are private copies. */
	bool has_arena;
	int arena_fd;
	uint8_t *arena;
	uint64_t arena_size;
	struct bitmix_arena_hdr *hdr; /* shared: read only the client's indices from it */
	struct bitmix_sqe *sq;
	struct bitmix_cqe *cq;
	uint8_t *data;
	uint32_t sq_entries, cq_entries;
	uint64_t data_size;
	uint32_t sq_head;	      /* private */
	uint32_t admitted;	      /* private: SQEs taken, each owes exactly one CQE */
	int submit_efd, complete_efd; /* eventfd doorbells only */
	struct loop_op doorbell_op;   /* the armed eventfd read or io_uring futex wait */
	uint64_t doorbell_value;
	bool doorbell_armed;
	bool wake_pending;	 /* loop thread: posted CQEs, wake the client once per pass */
	pthread_mutex_t cq_lock; /* serializes completion writers (workers, loop) */
	uint32_t cq_tail;	 /* private, under cq_lock */

	struct region *regions[BMX_MAX_REGIONS]; /* id - 1 indexes; loop thread only */
	unsigned n_regions;
	uint64_t mapped_bytes; /* arena plus regions */

	struct served_model *open[BMX_MAX_OPEN_MODELS];
	size_t n_open;
	struct session_fair fair;
};

struct worker_pool;
struct bmx_dbus;

struct bmx_daemon {
	struct bmx_config *config;
	char *config_path;
	struct io_uring ring;
	int listen_fd;
	int signal_fd;
	struct loop_op accept_op, signal_op, backoff_op;
	struct __kernel_timespec backoff;
	struct signalfd_siginfo siginfo;
	struct model_store store;
	struct session *sessions;
	uint32_t n_sessions;
	uint32_t next_session_id;
	struct worker_pool *pool;
	uint64_t start_ns;
	uint64_t requests_completed; /* atomic */
	uint64_t requests_failed;    /* atomic */
	uint64_t dropped_on_close;   /* queued requests of closed sessions, never run */
	unsigned pending_ops;	     /* io_uring operations not yet completed */
	bool stopping;
	int doorbell;	       /* enum bitmix_doorbell, chosen at start (doorbell_probe) */
	uint64_t spin_ns;      /* ipc.spin_us */
	uint64_t last_work_ns; /* when the loop last took a submission */
	struct loop_op futex_wake_op;

	/* Sensors (sensor_loop.c): sampled on the loop thread every period. */
	struct sensors *sensors;
	struct sensor_reading reading; /* the latest; the governor acts on it */
	uint64_t sensor_samples;
	uint64_t sensor_events;
	uint64_t work_ns;	/* atomic: workers' engine CPU time not yet handed over */
	uint64_t work_total_ns; /* all of it handed over so far (the governor's busy CPUs) */
	struct loop_op sensor_timer_op, sensor_event_op;
	struct __kernel_timespec sensor_period;
	bool sensor_timer_armed, sensor_event_armed;

	/* The governor (daemon_governor.c): decides on every reading, loop thread only. */
	struct gov_core *governor;

	/* systemd (daemon_systemd.c): socket activation and the watchdog. */
	bool socket_activated; /* the listener came from systemd: do not unlink it */
	struct loop_op watchdog_op;
	struct __kernel_timespec watchdog_period;
	bool watchdog_armed;
	bool test_hooks; /* BITMIXD_TEST_HOOKS=1: test-only triggers (test_hooks.c) */

	/* The D-Bus API (dbus*.c), NULL when not on a bus. */
	struct bmx_dbus *dbus;
};

/* model_store.c */
int model_store_load(struct model_store *store, const struct bmx_config *config);
int served_model_load(const char *name, const char *path, uint32_t id, unsigned kernels,
		      struct served_model **out);
void served_model_ref(struct served_model *m);
/* What served_model_free() leaves to a cost thread that was still running: engine, model, m. */
void served_model_release(struct served_model *m);
void served_model_unref(struct served_model *m);
/* LoadModel (D-Bus): the model in FD (LABEL in messages), its id given by model_store_add. */
int served_model_load_fd(const char *name, const char *label, int fd, unsigned kernels,
			 struct served_model **out, char *why, size_t why_size);
/* Open PATH for a model, never blocking; regular files only (FLAGS: O_NOFOLLOW). fd or -errno. */
int model_file_open(const char *name, const char *path, int flags);
int model_fd_check(const char *name, const char *label, int fd);
struct served_model *model_store_find(const struct model_store *store, const char *name);
struct served_model *model_store_find_id(const struct model_store *store, uint32_t id);
/* Is M one of the models the store serves now (not one a reload has let go)? */
bool model_store_contains(const struct model_store *store, const struct served_model *m);
int model_store_reload(struct model_store *store, const struct bmx_config *config);
int model_store_add(struct model_store *store, struct served_model *m);
void model_store_remove(struct model_store *store, struct served_model *m);
/* A reload in two steps: load what CONFIG adds (nothing served changes), then swap it in. */
int model_store_prepare(struct model_store *store, const struct bmx_config *config,
			struct served_model ***next, size_t *failed);
void model_store_commit(struct model_store *store, struct served_model **next, size_t count);
void model_store_abort(struct served_model **next, size_t count);
void model_store_clear(struct model_store *store);
uint64_t served_model_set_bits(struct served_model *m, const struct bitmix_bits *bits);
uint64_t served_model_snapshot(const struct served_model *m, struct bmx_layer_bits *bits);

/* model_fdstore.c: model memfds kept in systemd's fd store across restarts */
int model_fdstore_adopt(struct model_store *store, const char *fdname, int fd);
int model_fdstore_take(struct model_store *store, const char *name, const char *path,
		       struct stored_model *out);
void model_fdstore_release_unused(struct model_store *store);
void model_fdstore_push(struct served_model *m);
void model_fdstore_drop(struct served_model *m);
void model_fdstore_remove(const char *fdname);

/* daemon_systemd.c: sd-daemon notifications, socket activation, the watchdog */
int daemon_systemd_take_fds(struct bmx_daemon *d);
void daemon_systemd_status(struct bmx_daemon *d);
void daemon_systemd_ready(struct bmx_daemon *d);
void daemon_systemd_reloading(void);
void daemon_systemd_stopping(void);
void daemon_systemd_watchdog_start(struct bmx_daemon *d);
void daemon_systemd_watchdog_stop(struct bmx_daemon *d);

/* test_hooks.c: triggers for the systemd test, honoured only with BITMIXD_TEST_HOOKS=1 */
void test_hooks_init(struct bmx_daemon *d, sigset_t *signals);
void test_hooks_on_signal(struct bmx_daemon *d, unsigned signo);

/* session.c */
int session_new(struct bmx_daemon *d, int fd, struct session **out);
/* May S join the sessions? 0, or -errno with WHY saying which limit it is over. */
int session_admit(const struct session *s, char *why, size_t why_size);
void session_ref(struct session *s);
void session_unref(struct session *s);
void session_handle_message(struct session *s, size_t len, struct msghdr *msg);
unsigned session_drain_submissions(struct session *s);
unsigned session_drain_all(struct bmx_daemon *d);
void session_post_completion(struct session *s, uint64_t user_data, int32_t status,
			     uint64_t generation, uint32_t adaptive, uint64_t bitops);
void session_close(struct session *s, const char *why);
bool session_may_set_bits(const struct session *s);

/* session_region.c */
int session_register_region(struct session *s, int fd, uint64_t size, uint32_t *id, char *why,
			    size_t why_size);
int session_unregister_region(struct session *s, uint32_t id, char *why, size_t why_size);
struct region *session_region(const struct session *s, uint32_t id);
void region_unref(struct region *r);
void session_regions_clear(struct session *s);

/* doorbell.c: how the loop and the clients wake each other (proto/bitmix_proto.h). */
int doorbell_probe(struct bmx_daemon *d);
const char *doorbell_name(int doorbell);
int doorbell_arm(struct bmx_daemon *d, struct session *s);
/* Spin on every client's ring for ipc.spin_us after the last work; true if work was done. */
bool doorbell_spin(struct bmx_daemon *d);
/* Advertise that the loop sleeps; false if a submission arrived meanwhile (do not sleep). */
bool doorbell_sleep_prepare(struct bmx_daemon *d);
void doorbell_awake(struct bmx_daemon *d);
/* After CQEs were posted: wake the client if it sleeps (loop: batched; workers: at once). */
void doorbell_wake_client(struct session *s, bool from_loop);

/* event_loop.c */
int event_loop_run(struct bmx_daemon *d);
int daemon_reload(struct bmx_daemon *d, struct bmx_config_error *err);
int event_loop_arm_recv(struct bmx_daemon *d, struct session *s);
struct io_uring_sqe *event_loop_get_sqe(struct bmx_daemon *d);
void event_loop_arm(struct bmx_daemon *d, struct io_uring_sqe *sqe, struct loop_op *op);
int event_loop_arm_timeout(struct bmx_daemon *d, struct loop_op *op, struct __kernel_timespec *ts);
int event_loop_arm_poll(struct bmx_daemon *d, struct loop_op *op, int fd);
/* Ask the kernel to cancel OP (its completion still arrives, with -ECANCELED). */
void event_loop_cancel(struct bmx_daemon *d, struct loop_op *op);

/* sensor_loop.c */
int sensor_loop_open(struct bmx_daemon *d);
void sensor_loop_arm(struct bmx_daemon *d);
/* Open the sensors NEXT asks for (unless unchanged); 0 or -errno, the running ones untouched. */
int sensor_loop_prepare_reload(struct bmx_daemon *d, const struct bmx_config *next,
			       struct sensors **out, struct bmx_config_error *err);
void sensor_loop_swap(struct bmx_daemon *d, struct sensors *next, const struct bmx_config *config);
void sensor_loop_stop(struct bmx_daemon *d);
void sensor_loop_close(struct bmx_daemon *d);

/* session_msg.c: replies, for the handlers in other files */
void reply_init(struct bitmix_reply *r, const struct bitmix_msg_hdr *req, size_t len);
int reply_send(struct session *s, const void *buf, size_t len, const int *fds, int n_fds);
int reply_error(struct session *s, const struct bitmix_msg_hdr *req, int status, const char *fmt,
		...) __attribute__((format(printf, 4, 5)));
/* Refuse a connection before it asked anything: one error reply with seq 0, never blocking. */
void reply_refusal(int fd, int status, const char *why);

/* session_governor.c: the governor's control messages */
int session_handle_governor(struct session *s, const struct bitmix_msg_hdr *m);
int session_handle_policy(struct session *s, const struct bitmix_msg_hdr *m);
int session_handle_hold(struct session *s, const struct bitmix_msg_hdr *m);
int session_handle_release(struct session *s, const struct bitmix_msg_hdr *m);
int session_handle_cost(struct session *s, const struct bitmix_msg_hdr *m);
int session_handle_holds(struct session *s, const struct bitmix_msg_hdr *m);
int session_handle_limits(struct session *s, const struct bitmix_msg_hdr *m);

/* session_admin.c: the session as an admin caller (admin.h), and RELOAD */
struct admin_caller;
struct admin_error;
void session_caller(const struct session *s, struct admin_caller *c, char *who, size_t size);
int session_reply_admin_error(struct session *s, const struct bitmix_msg_hdr *m,
			      const struct admin_error *err);
int session_handle_reload(struct session *s, const struct bitmix_msg_hdr *m);

/* daemon_cost.c: the per-layer cost table of each served model */
/* At load: the cache, or batch 1 within the start-up budget; a thread for the rest. */
int served_cost_start(struct served_model *m);
/*
 * Stop the thread and free the table (served_model_free). A thread still measuring is not
 * waited for (at idle priority on a busy machine it may not run for seconds, and the loop must
 * not stall): it is left to end on its own and then free the model with served_model_release();
 * -EINPROGRESS says so. After served_cost_join_at_exit() it is joined instead.
 */
int served_cost_stop(struct served_model *m);
void served_cost_join_at_exit(void);
/* The table as the policy takes it ([layer_count], free it); marks it handed over. */
int served_cost_layer_costs(struct served_model *m, struct gov_layer_cost **out);
/* A copy of the table (OUT zeroed or from an earlier call) and how long it took to complete. */
int served_cost_snapshot(struct served_model *m, struct cost_table *out, uint64_t *complete_ns);
/* Loop thread, every governor tick: new rows and the traffic's mean batch to the policy. */
void served_cost_tick(struct served_model *m);

/* served_adaptive.c: per-sample adaptive precision (docs/adaptive.md). */
struct bmx_adaptive_result;
struct job;
bool served_adaptive_supported(const struct served_model *m, uint8_t precision);
/* Set M's default mode (enum bmx_adaptive_mode); a mode M cannot run is logged and OFF. */
int served_adaptive_set_default(struct served_model *m, unsigned mode, const char *source);
void served_adaptive_set_floor(void *userdata, uint8_t floor_bits); /* a gov_floor_fn */
const char *served_adaptive_mode_name(unsigned mode);
size_t served_adaptive_scratch_size(const struct served_model *m, const struct bitmix_sqe *e);
/* Run JOB at or below CEILING as its precision asks; fills job->adaptive and job->bitops. */
/* Whether a request of this PRECISION runs at the model's operating point (no per-sample choice). */
bool served_adaptive_off(const struct served_model *m, uint8_t precision);
int served_adaptive_run(struct served_model *m, struct job *job,
			const struct bmx_layer_bits *ceiling, void *scratch,
			const struct bmx_parallel *par, struct bmx_adaptive_result *results);
/* Loop thread, every governor tick: the policy's cost scale from the traffic since the last. */
void served_adaptive_tick(struct served_model *m);
/* The adaptive part of a POLICY reply (statistics for bitmixctl status/stats). */
void policy_reply_adaptive(const struct served_model *m, const struct gov_policy *p,
			   struct bitmix_policy_reply *rep);
/* Create the governor, a policy per served model, and start the configured governor. */
int daemon_governor_start(struct bmx_daemon *d);
/* After a reload: policies for new models, none for departed ones, new tunables and limits. */
void daemon_governor_reload(struct bmx_daemon *d, const struct bmx_config *next);
/* Check NEXT's policy limits against MODELS (about to be served) before anything is swapped. */
int daemon_governor_check(const struct bmx_config *next, struct served_model *const *models,
			  size_t count, struct bmx_config_error *err);
/* A new reading: observe each model's rate, let the governor decide. */
void daemon_governor_tick(struct bmx_daemon *d);
void daemon_governor_stop(struct bmx_daemon *d);
/* A model loaded or unloaded at run time (D-Bus LoadModel/UnloadModel): its policy. */
int daemon_governor_add_model(struct bmx_daemon *d, struct served_model *m);
void daemon_governor_remove_model(struct bmx_daemon *d, struct served_model *m);

/*
 * dbus.c (dbus_disabled.c in a build without libsystemd): the D-Bus API, org.bitmix.Daemon1.
 * dbus_open() connects to the bus the config names (none: 0 and nothing happens); the loop
 * calls dbus_after_pass() once per pass to process the bus, announce changes and re-arm its
 * poll and timeout; dbus_stop() cancels them at shutdown.
 */
int dbus_open(struct bmx_daemon *d);
void dbus_after_pass(struct bmx_daemon *d);
void dbus_stop(struct bmx_daemon *d);
void dbus_close(struct bmx_daemon *d);
/* Called where bits are published (served_model_set_bits): BitsChanged and CurrentBits. */
void dbus_bits_changed(struct bmx_daemon *d, struct served_model *m, uint64_t generation);
/* Where the API is: "the system bus as org.bitmix.Daemon1", or why it is on none. */
const char *dbus_where(const struct bmx_daemon *d);
/* A hold owner as text: ":1.42" for a bus peer, "client 7" for a socket session. */
void dbus_owner_text(const struct bmx_daemon *d, uint64_t owner, char *buf, size_t size);

/* workers.c */
struct job {
	struct session *session;	       /* holds a ref */
	struct served_model *model;	       /* holds a ref */
	struct bitmix_sqe sqe;		       /* private, validated copy */
	struct region *in_region, *out_region; /* hold refs; NULL for the arena's data area */
	const float *in;		       /* resolved from (region, offset) at admission */
	float *out;
	uint32_t adaptive; /* the CQE's: set by the worker */
	uint64_t bitops;
	/*
	 * A request at the model's operating point runs in slices of WORKER_SLICE samples while
	 * other requests wait (workers.c): the samples done so far, and the operating point it
	 * started at (every slice runs at it), allocated at the first slice.
	 */
	bool sliceable; /* set at submission: at the operating point, batch > 1 */
	uint32_t done;
	uint64_t generation;
	struct bmx_layer_bits *bits;
	struct job *next;
};
/* session.c: post the job's CQE, wake the client, drop its references, free it. */
void job_complete(struct job *job, int status, uint64_t generation);
int worker_pool_new(struct bmx_daemon *d, unsigned n_threads, struct worker_pool **out);
/* Queue JOB behind its session's others; WEIGHT is the session's share (limits.weights). */
void worker_pool_submit(struct worker_pool *pool, struct job *job, unsigned weight);
/* Take a closing session's queued jobs out of the round: the list (->next), to complete. */
struct job *worker_pool_cancel(struct worker_pool *pool, struct session *s);
/* Let every queued and running job finish, then stop and free the threads. */
void worker_pool_free(struct worker_pool *pool);
unsigned worker_pool_size(const struct worker_pool *pool);
/* The governor's work cap in CPUs (0: none); loop thread. */
void worker_pool_set_work_cap(struct worker_pool *pool, double cpus);
/* Wall time workers spent on requests so far (running or preempted by other processes). */
uint64_t worker_pool_occupied_ns(const struct worker_pool *pool);
/* Worker time spent waiting for the cap so far. */
uint64_t worker_pool_throttled_ns(const struct worker_pool *pool);

#endif
