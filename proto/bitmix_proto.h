/* SPDX-License-Identifier: MIT */
/*
 * bitmix_proto.h — the wire protocol between libbitmix and bitmixd (internal, not installed).
 *
 * Control plane: one message per SOCK_SEQPACKET packet, at most BITMIX_MSG_MAX bytes, every
 * message starting with struct bitmix_msg_hdr. A reply has the request's type | BITMIX_MSG_REPLY
 * and the request's seq, and starts with struct bitmix_reply. Descriptors travel as SCM_RIGHTS.
 *
 * Data plane: a per-client arena (a memfd the daemon creates and seals against resizing) laid
 * out as: struct bitmix_arena_hdr at 0, the submission ring at sq_offset, the completion ring at
 * cq_offset, and the tensor data area at data_offset. Ring indices are free-running u32 values
 * (index & (entries - 1) selects the slot); each side owns the indices it writes, and those
 * live on separate cache lines. Producer: write the entry, then store-release the tail.
 * Consumer: load-acquire the tail, read the entry, then store-release the head.
 * The daemon keeps its own private copy of the geometry and of its own indices and never trusts
 * a value the client can write: every SQE is copied out of the ring before it is checked.
 *
 * Doorbells, spin then sleep (io_uring's SQPOLL NEED_WAKEUP pattern, both directions): a side
 * that is about to sleep sets its SLEEPING flag, issues a full fence (seq_cst), and reads the
 * other side's tail once more; it sleeps only if nothing arrived. A producer store-releases its
 * tail, issues a full fence, and reads the consumer's flag: only if it is set does it make a
 * system call to wake it. The two fences order store-then-load on both sides, so at least one
 * side sees the other's store and no wake-up is lost. The futex words are the tails themselves
 * (sq_tail wakes the daemon, cq_tail wakes the client); with eventfd doorbells the daemon hands
 * the client a submit and a completion eventfd instead.
 */
#ifndef BITMIX_PROTO_H
#define BITMIX_PROTO_H

#include <assert.h>
#include <stdint.h>

#define BITMIX_PROTO_VERSION 2
#define BITMIX_MSG_MAGIC 0x504d4842u /* "BHMP" little-endian */
#define BITMIX_MSG_MAX 4096
#define BITMIX_NAME_MAX 48
#define BITMIX_ERROR_MAX 160
#define BITMIX_CACHELINE 64
#define BITMIX_MAX_LAYERS 1024 /* == BMX_MAX_LAYERS */

enum bitmix_msg_type {
	BITMIX_MSG_HELLO =
		1, /* -> struct bitmix_hello_reply + fds [arena, submit efd, complete efd] */
	BITMIX_MSG_LIST_MODELS = 2, /* -> struct bitmix_list_reply */
	BITMIX_MSG_OPEN_MODEL =
		3, /* struct bitmix_open_req -> struct bitmix_open_reply + fds [control, model] */
	BITMIX_MSG_SET_BITS = 4, /* struct bitmix_set_bits_req -> struct bitmix_set_bits_reply */
	BITMIX_MSG_STATUS = 5,	 /* -> struct bitmix_status_reply */
	/* 6..15: data plane. (16..31 governor, 32..39 sensors.) */
	BITMIX_MSG_REGISTER_REGION =
		6, /* struct bitmix_region_req + fd [memfd] -> struct bitmix_region_reply */
	BITMIX_MSG_UNREGISTER_REGION = 7, /* struct bitmix_region_req -> struct bitmix_reply */
	/* 16..31: the governor */
	BITMIX_MSG_GOVERNOR = 16, /* struct bitmix_governor_req -> struct bitmix_governor_reply */
	BITMIX_MSG_POLICY = 17,	  /* struct bitmix_policy_req -> struct bitmix_policy_reply */
	BITMIX_MSG_HOLD = 18,	  /* struct bitmix_hold_req -> struct bitmix_hold_reply */
	BITMIX_MSG_RELEASE = 19,  /* struct bitmix_hold_req (id set) -> struct bitmix_reply */
	BITMIX_MSG_COST = 20,	  /* struct bitmix_cost_req -> struct bitmix_cost_reply */
	BITMIX_MSG_HOLDS = 21,	  /* struct bitmix_holds_req -> struct bitmix_holds_reply */
	BITMIX_MSG_LIMITS = 22,	  /* struct bitmix_limits_req -> struct bitmix_limits_reply */
	/* 32..39: sensors */
	BITMIX_MSG_SENSORS = 32, /* -> struct bitmix_sensors_reply */
	/* 40..47: administration (root or the daemon's own user) */
	BITMIX_MSG_RELOAD = 40, /* -> struct bitmix_reload_reply, sent when the reload is over */
};
#define BITMIX_MSG_REPLY 0x8000u

struct bitmix_msg_hdr {
	uint32_t magic;	  /* BITMIX_MSG_MAGIC */
	uint16_t version; /* BITMIX_PROTO_VERSION */
	uint16_t type;	  /* enum bitmix_msg_type, | BITMIX_MSG_REPLY in replies */
	uint32_t length;  /* bytes of the whole message, header included */
	uint32_t seq;	  /* chosen by the client, echoed in the reply */
};

/* Every reply starts with this; status is 0 or -errno and error explains a failure. */
struct bitmix_reply {
	struct bitmix_msg_hdr hdr;
	int32_t status;
	char error[BITMIX_ERROR_MAX];
};

/*
 * RELOAD: re-read the configuration and its drop-ins, apply it all or keep the running one.
 * The reply is always this size; on failure r.status is -errno and detail the whole
 * "file:line:column: what" (r.error holds its first BITMIX_ERROR_MAX - 1 bytes).
 */
#define BITMIX_RELOAD_DETAIL_MAX 512
struct bitmix_reload_reply {
	struct bitmix_reply r;
	char detail[BITMIX_RELOAD_DETAIL_MAX];
};

struct bitmix_hello_req {
	struct bitmix_msg_hdr hdr;
	uint32_t sq_entries; /* wanted; 0 = default. Rounded to a power of two and capped */
	uint32_t reserved;
	uint64_t data_size; /* wanted tensor area in bytes; 0 = default. Capped */
};

/* How the two sides wake each other (see the top of this file). */
enum bitmix_doorbell {
	BITMIX_DOORBELL_EVENTFD = 1, /* HELLO's reply carries a submit and a completion eventfd */
	BITMIX_DOORBELL_FUTEX =
		2, /* futexes on sq_tail and cq_tail; the daemon waits through io_uring */
};

struct bitmix_hello_reply {
	struct bitmix_reply r;
	uint32_t client_id;
	uint32_t sq_entries, cq_entries;
	uint32_t doorbell; /* enum bitmix_doorbell: fds [arena] or [arena, submit, complete] */
	uint64_t arena_size, sq_offset, cq_offset, data_offset, data_size;
	uint32_t max_in_flight;	   /* limits.in_flight: requests admitted and not yet completed */
	uint32_t max_regions;	   /* limits.regions */
	uint64_t max_mapped_bytes; /* limits.mapped_bytes: the arena plus every registered region */
};

/*
 * REGISTER_REGION: one memfd in SCM_RIGHTS, sealed with F_SEAL_SHRINK | F_SEAL_GROW, opened
 * read-write, exactly SIZE bytes. The daemon maps it once; tensors in it are then named by
 * (region, offset, length) without copying. UNREGISTER_REGION: REGION only; requests already
 * admitted keep the mapping until they complete.
 */
struct bitmix_region_req {
	struct bitmix_msg_hdr hdr;
	uint32_t region; /* UNREGISTER only */
	uint32_t reserved;
	uint64_t size; /* REGISTER only */
};

struct bitmix_region_reply {
	struct bitmix_reply r;
	uint32_t region; /* >= 1; 0 is the arena's data area */
	uint32_t reserved;
};

struct bitmix_model_desc {
	uint32_t model_id;
	uint32_t layer_count;
	char name[BITMIX_NAME_MAX];
	uint32_t input_h, input_w, input_c;
	uint32_t output_size;
	uint16_t bits_mask;
	uint16_t reserved0;
	uint32_t reserved1;
};

struct bitmix_list_reply {
	struct bitmix_reply r;
	uint32_t count;
	uint32_t reserved;
	struct bitmix_model_desc models[]; /* count entries */
};

struct bitmix_open_req {
	struct bitmix_msg_hdr hdr;
	char name[BITMIX_NAME_MAX]; /* NUL-terminated */
};

struct bitmix_open_reply {
	struct bitmix_reply r;
	struct bitmix_model_desc model;
	uint64_t control_size;	    /* bytes of the control page memfd (fds[0]) */
	uint64_t model_size;	    /* bytes of the sealed .bmx memfd (fds[1]) */
	uint16_t layer_bits_mask[]; /* layer_count entries */
};

/* One layer's bits on the wire and in the control page. */
struct bitmix_bits {
	uint8_t w_bits;
	uint8_t a_bits;
};

struct bitmix_set_bits_req {
	struct bitmix_msg_hdr hdr;
	uint32_t model_id;
	uint32_t layer_count;	   /* must equal the model's */
	struct bitmix_bits bits[]; /* layer_count entries */
};

struct bitmix_set_bits_reply {
	struct bitmix_reply r;
	uint64_t generation; /* the generation that carries the new bits */
};

struct bitmix_status_reply {
	struct bitmix_reply r;
	char version[16];
	uint64_t uptime_ns;
	uint64_t requests_completed;
	uint64_t requests_failed;
	uint32_t clients;
	uint32_t models;
	uint32_t workers;
	uint32_t dropped_on_close; /* queued requests of closed connections, dropped unrun */
	char kernels[16];  /* the engine's kernel path: "ref", "avx2", "avxvnni", "avx512" */
	char doorbell[16]; /* "futex" or "eventfd": what bitmixd chose at start */
};

/* The governor: query (name empty) or switch (name set; needs the set_bits right). */
#define BITMIX_GOVERNOR_NAME_MAX 24
struct bitmix_governor_req {
	struct bitmix_msg_hdr hdr;
	char name[BITMIX_GOVERNOR_NAME_MAX];
};

struct bitmix_governor_reply {
	struct bitmix_reply r;
	char name[BITMIX_GOVERNOR_NAME_MAX]; /* the governor running now */
	char available[128];		     /* space separated */
	char fallback[200];		     /* why a governor asked for is not running, or "" */
	uint32_t policies;
	uint32_t saturated; /* 1: the daemon keeps all it may use busy */
	/* The second cooling device (docs/governor.md, "The work cap"). */
	double work_cap_cpus; /* CPUs the workers may keep busy; 0 = no cap */
	double busy_cpus;     /* what they kept busy, averaged over a few periods */
	double capacity_cpus; /* the workers */
	uint64_t capped_ns;   /* time spent under a cap */
};

/* A model's policy: its operating point, limits, holds and statistics (as cpufreq_stats). */
#define BITMIX_GOV_STATES 13 /* average bits 2.0, 2.5, ... 8.0 */
struct bitmix_policy_req {
	struct bitmix_msg_hdr hdr;
	char model[BITMIX_NAME_MAX];
};

struct bitmix_policy_reply {
	struct bitmix_reply r;
	double average_bits; /* MAC-weighted over layers */
	double cost_ns;	     /* engine time per sample at these bits (the cost table) */
	double rate;	     /* samples per second served */
	uint8_t min_bits, max_bits, floor_bits, reserved0;
	uint32_t holds;
	uint64_t max_latency_ns; /* the lowest latency ceiling held, 0 = none */
	uint64_t transitions;
	uint64_t decisions;
	uint64_t last_decision_ns; /* how long the last decision took */
	uint32_t state;		   /* index into time_in_state_ns */
	uint32_t reserved1;
	uint64_t time_in_state_ns[BITMIX_GOV_STATES];
	uint32_t trans_table[BITMIX_GOV_STATES][BITMIX_GOV_STATES];
	/* Per-sample adaptive precision (docs/adaptive.md): the model's default and its traffic. */
	char precision[16]; /* "fixed", "cascade" or "policy": what CURRENT requests get */
	uint64_t adaptive_requests, adaptive_samples;
	uint64_t adaptive_escalated;	/* samples that ran more than one configuration */
	double adaptive_bitops;		/* average BitOps per adaptive request */
	double adaptive_ceiling_bitops; /* the same requests at the operating point, on average */
	double cost_scale;		/* what the power model multiplies the ceiling's cost by */
};

/*
 * COST: a model's per-layer cost table (docs/governor.md), BITMIX_COST_PAGE layers per reply
 * from FIRST on; a client asks again from first + n until layer_count.
 */
#define BITMIX_COST_PAGE 24
struct bitmix_cost_req {
	struct bitmix_msg_hdr hdr;
	char model[BITMIX_NAME_MAX];
	uint32_t first;
	uint32_t reserved;
};

struct bitmix_cost_layer_wire {
	char name[32];
	uint16_t allowed;     /* bit b: the layer allows b bits */
	uint16_t measured[2]; /* bit b: that row is measured at batch 1 / the large batch */
	uint16_t pruned;      /* bit b: the allocator does not lower to b for cost */
	double ns[2][7]; /* ns per sample at bits 2..8, batch 1 / the large batch; 0 not allowed */
};

struct bitmix_cost_reply {
	struct bitmix_reply r;
	char cpu[64];			/* the CPU the table was measured on */
	char kernels[16];		/* and the kernel path */
	char source[16];		/* "measured" (since load) or "cache" */
	uint32_t layer_count, first, n; /* this reply holds layers [first, first + n) */
	uint32_t large_batch;
	uint32_t rows;	      /* (layer, bits) rows the model allows */
	uint32_t measured[2]; /* of them measured at batch 1 / the large batch */
	uint32_t complete;    /* 1: every row measured at both batches */
	double complete_s;    /* how long after load the table was complete, 0 if not (yet) */
	double batch;	      /* the traffic's mean batch the allocator takes costs at */
	struct bitmix_cost_layer_wire layers[BITMIX_COST_PAGE];
};
static_assert(sizeof(struct bitmix_cost_reply) <= BITMIX_MSG_MAX, "a COST reply fits a message");

struct bitmix_hold_req {
	struct bitmix_msg_hdr hdr;
	char model[BITMIX_NAME_MAX];
	uint32_t kind; /* 1: min bits, 2: max latency ns (BITMIX_HOLD_* in bitmix.h) */
	uint32_t id;   /* the hold to release (RELEASE) */
	uint64_t value;
};

struct bitmix_hold_reply {
	struct bitmix_reply r;
	uint32_t id;
	uint32_t reserved;
};

/* HOLDS: every hold on a model, whoever placed it (a model has at most 64). */
#define BITMIX_HOLDS_MAX 64
struct bitmix_holds_req {
	struct bitmix_msg_hdr hdr;
	char model[BITMIX_NAME_MAX];
};

struct bitmix_hold_wire {
	uint32_t id;
	uint32_t kind; /* 1: min bits, 2: max latency ns */
	uint64_t value;
	char owner[32]; /* "client 7" (a socket connection) or ":1.42" (a bus peer) */
};

struct bitmix_holds_reply {
	struct bitmix_reply r;
	uint32_t count; /* holds on the model; the first BITMIX_HOLDS_MAX are here */
	uint32_t reserved;
	struct bitmix_hold_wire holds[BITMIX_HOLDS_MAX];
};
static_assert(sizeof(struct bitmix_holds_reply) <= BITMIX_MSG_MAX, "a HOLDS reply fits");

/*
 * LIMITS: a model's bit range and pinned layers; with set = 1 replaces them first (the admin
 * right; checked whole, bad limits leave the old ones). The reply is the limits in force.
 */
#define BITMIX_PINNED_MAX 32
struct bitmix_pin_wire {
	char layer[32]; /* a layer name, or its index */
	uint8_t bits;
	uint8_t reserved[7];
};

struct bitmix_limits_req {
	struct bitmix_msg_hdr hdr;
	char model[BITMIX_NAME_MAX];
	uint8_t set;
	uint8_t min_bits, max_bits;
	uint8_t reserved;
	uint32_t n_pinned;
	struct bitmix_pin_wire pinned[BITMIX_PINNED_MAX];
};

struct bitmix_limits_reply {
	struct bitmix_reply r;
	uint8_t min_bits, max_bits;
	uint8_t reserved[2];
	uint32_t n_pinned;
	struct bitmix_pin_wire pinned[BITMIX_PINNED_MAX];
};
static_assert(sizeof(struct bitmix_limits_req) <= BITMIX_MSG_MAX, "a LIMITS request fits");

/* The sensors: the active source, why the others were not chosen, and the latest reading. */
#define BITMIX_SENSORS_EXPLAIN_MAX 2048
struct bitmix_sensors_reply {
	struct bitmix_reply r;
	char source[16]; /* "bpf", "sysfs", "simulator" */
	uint32_t have;	 /* which fields hold a value: 1 temp, 2 power, 4 load, 8 freq */
	int32_t temp_mc;
	uint32_t power_mw;
	uint32_t load_permille;
	uint32_t freq_khz;
	uint32_t period_ms;
	uint64_t age_ns; /* how old the reading is */
	uint64_t samples;
	uint64_t events;
	char explain[BITMIX_SENSORS_EXPLAIN_MAX]; /* one line per source, '\n'-separated */
};

/* Memory-ordering helpers named for what they do (after liburing's io_uring_smp_*). */
#define bitmix_load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define bitmix_store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* Tell the CPU we are spinning (frees the sibling hyperthread, saves power). */
static inline void bitmix_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/*
 * The per-model control page (a memfd sealed with F_SEAL_FUTURE_WRITE: the daemon writes through
 * its mapping, clients can only map it read-only). generation is a sequence count: odd while
 * the daemon rewrites bits. A reader loads generation (acquire), copies bits, fences (acquire),
 * and loads generation again; equal and even means the copy is one consistent snapshot.
 */
struct bitmix_control_page {
	uint64_t generation;
	uint32_t layer_count;
	uint32_t model_id;
	uint8_t pad[BITMIX_CACHELINE - 16];
	struct bitmix_bits bits[BITMIX_MAX_LAYERS];
};

/*
 * Copy one consistent snapshot of the first N layers' bits of PAGE into OUT and return the
 * generation that carries them (the seqlock reader described above). Used by the daemon's
 * workers and by libbitmix alike.
 */
static inline uint64_t bitmix_control_snapshot(const struct bitmix_control_page *page, uint32_t n,
					       struct bitmix_bits *out)
{
	uint64_t g1, g2;

	for (;;) {
		g1 = bitmix_load_acquire(&page->generation);
		if (g1 & 1) {
			bitmix_cpu_relax();
			continue;
		}
		for (uint32_t i = 0; i < n; i++) {
			out[i].w_bits = __atomic_load_n(&page->bits[i].w_bits, __ATOMIC_RELAXED);
			out[i].a_bits = __atomic_load_n(&page->bits[i].a_bits, __ATOMIC_RELAXED);
		}
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		g2 = __atomic_load_n(&page->generation, __ATOMIC_RELAXED);
		if (g1 == g2)
			return g1;
	}
}

/*
 * Per-request precision. The operating point the governor publishes is the ceiling of every
 * mode; adaptive modes choose per sample at or below it, never under a client's QoS floor or the
 * policy's min_bits (docs/adaptive.md). precision_arg stays zero.
 */
enum bitmix_precision {
	BITMIX_PRECISION_CURRENT = 0, /* the model's default: governor.policies.MODEL.precision */
	BITMIX_PRECISION_CASCADE =
		1,		     /* the model's confidence cascade (its .bmx CASCADE section) */
	BITMIX_PRECISION_POLICY = 2, /* the model's learned policy (its .bmx POLICY section) */
	BITMIX_PRECISION_FIXED = 3,  /* the operating point, whatever the model's default */
};

/* bitmix_cqe.adaptive: what an INFER request ran (0 and a single run: the operating point). */
#define BITMIX_CQE_CONFIGS(a) ((a)&0xffu)	/* bit k: some sample ended at config k */
#define BITMIX_CQE_MODE(a) (((a) >> 8) & 0xffu) /* enum bitmix_precision that ran */
#define BITMIX_CQE_ESCALATED(a) ((a) >> 16)	/* samples escalated (saturates at 65535) */

enum bitmix_op {
	BITMIX_OP_INFER = 0, /* run the model on the input tensor into the output tensor */
	BITMIX_OP_NOP = 1,   /* check the tensor references like any request, run nothing */
};

/* Tensors are (region, offset, length): region 0 is the arena's data area, others are memfds
 * the client registered. Offsets are 64-byte aligned and the whole range lies in the region. */
struct bitmix_sqe {
	uint64_t user_data; /* echoed in the CQE */
	uint8_t opcode;	    /* enum bitmix_op */
	uint8_t precision;  /* enum bitmix_precision */
	uint8_t flags;	    /* zero */
	uint8_t reserved0;
	uint32_t model_id; /* INFER */
	uint32_t batch;	   /* INFER: samples, >= 1 */
	uint16_t in_region, out_region;
	uint64_t in_offset;	/* float32 input */
	uint64_t in_length;	/* bytes; INFER: == batch * input size * 4 */
	uint64_t out_offset;	/* float32 output */
	uint64_t out_length;	/* bytes; INFER: >= batch * output size * 4 */
	uint64_t precision_arg; /* reserved for precision modes that take an argument; zero */
};
static_assert(sizeof(struct bitmix_sqe) == 64, "bitmix_sqe is one cache line");

struct bitmix_cqe {
	uint64_t user_data;
	int32_t status;	     /* 0 or -errno */
	uint32_t adaptive;   /* INFER: BITMIX_CQE_CONFIGS/MODE/ESCALATED */
	uint64_t generation; /* the control-page generation the whole request ran at (the ceiling) */
	uint64_t bitops;     /* INFER: BitOps spent on the whole request (MACs x w x a bits) */
};
static_assert(sizeof(struct bitmix_cqe) == 32, "bitmix_cqe is 32 bytes");

#define BITMIX_ARENA_MAGIC 0x4e524158u /* "XARN" */

/* At offset 0 of the arena. Each index sits alone on its own cache line. */
struct bitmix_arena_hdr {
	uint32_t magic;
	uint32_t version;
	uint32_t sq_entries, cq_entries;
	uint64_t sq_offset, cq_offset, data_offset, data_size;
	uint8_t pad0[BITMIX_CACHELINE - 48];
	/* Each flag shares the line of the index its reader loads anyway, so checking it costs no
	 * extra cache-line transfer. */
	uint32_t sq_tail;      /* written by the client; the daemon's futex word */
	uint32_t client_flags; /* written by the client: BITMIX_CLIENT_SLEEPING */
	uint8_t pad1[BITMIX_CACHELINE - 8];
	uint32_t sq_head; /* written by the daemon */
	uint8_t pad2[BITMIX_CACHELINE - 4];
	uint32_t cq_tail;      /* written by the daemon; the client's futex word */
	uint32_t daemon_flags; /* written by the daemon: BITMIX_DAEMON_SLEEPING */
	uint8_t pad3[BITMIX_CACHELINE - 8];
	uint32_t cq_head; /* written by the client */
	uint8_t pad4[BITMIX_CACHELINE - 4];
};
static_assert(sizeof(struct bitmix_arena_hdr) == 5 * BITMIX_CACHELINE, "arena header layout");

#define BITMIX_CLIENT_SLEEPING 1u /* the client waits for cq_tail to move: wake it */
#define BITMIX_DAEMON_SLEEPING 1u /* the daemon waits for sq_tail to move: wake it */

/* The full fence of the sleep/wake protocol: orders a store before a later load. */
#define bitmix_smp_mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)

#endif
