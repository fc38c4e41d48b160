/* SPDX-License-Identifier: MIT */
/*
 * bitmix.h — libbitmix, the client library of bitmixd.
 *
 * A client connects to bitmixd's control socket, opens models by name, allocates tensors in the
 * shared arena the daemon gave it (or registers memfds of its own), and runs inference; requests
 * travel through shared-memory rings, so the data never goes through a socket. Like liburing:
 * prepare requests (bitmix_prep_*), publish them with one bitmix_submit(), and reap completions
 * with bitmix_reap(); bitmix_infer() does all three for one request. Every function returns 0
 * (or a count) on success and a negative errno on failure; bitmix_strerror() then explains the
 * failure in words. A struct bitmix is not thread-safe: use one per thread.
 */
#ifndef BITMIX_H
#define BITMIX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BITMIX_DEFAULT_SOCKET "/run/bitmix/bitmixd.sock"

struct bitmix;	     /* a connection */
struct bitmix_model; /* an opened model, owned by its connection */

/* What a model looks like to a client. */
struct bitmix_model_info {
	char name[48];
	uint32_t layer_count;
	uint32_t input_h, input_w, input_c; /* per sample, float32, NHWC */
	uint32_t output_size; /* float32 values per sample (logits or probabilities) */
	uint16_t bits_mask;   /* bit b set: b bits (2..8) are available */
};

/* One layer's operating point: weight bits and activation bits. */
struct bitmix_layer_bits {
	uint8_t w_bits;
	uint8_t a_bits;
};

/*
 * Connect to the daemon at SOCKET_PATH (NULL: $BITMIX_SOCKET, else BITMIX_DEFAULT_SOCKET) and
 * map the arena it creates for this client. On success *out is a new connection.
 */
int bitmix_connect(const char *socket_path, struct bitmix **out);

/* Close the connection; models opened on it and tensors allocated in it go with it. NULL is a no-op. */
void bitmix_close(struct bitmix *bm);

/*
 * The text of the last failure on BM (never NULL; "" if none). With BM == NULL, the text of the
 * last bitmix_connect() failure in this thread.
 */
const char *bitmix_strerror(const struct bitmix *bm);

/*
 * List the models the daemon serves: up to MAX entries go to INFOS. Returns the number of
 * models the daemon has (which may exceed MAX) or -errno.
 */
int bitmix_list_models(struct bitmix *bm, struct bitmix_model_info *infos, size_t max);

/* Open the model called NAME. *out stays valid until bitmix_close(). */
int bitmix_open_model(struct bitmix *bm, const char *name, struct bitmix_model **out);

/* The shape and bit-widths of MODEL. */
const struct bitmix_model_info *bitmix_model_get_info(const struct bitmix_model *model);

/* Bits LAYER (0-based) supports, as a mask (bit b set: b bits), or 0 if LAYER is out of range. */
uint16_t bitmix_model_layer_bits_mask(const struct bitmix_model *model, uint32_t layer);

/*
 * Read the model's current operating point, one consistent snapshot: BITS receives layer_count
 * entries, *generation (if not NULL) the generation that carries them.
 */
int bitmix_get_bits(struct bitmix_model *model, struct bitmix_layer_bits *bits,
		    uint64_t *generation);

/*
 * Set the model's operating point system-wide (BITS: layer_count entries). Only users and groups
 * allowed by the daemon's configuration may; others get -EPERM. *generation (if not NULL)
 * receives the generation that carries the new bits.
 */
int bitmix_set_bits(struct bitmix_model *model, const struct bitmix_layer_bits *bits,
		    uint64_t *generation);

/*
 * Allocate SIZE bytes (64-byte aligned) in the shared arena. Returns a pointer the client may
 * read and write, or NULL (with -ENOMEM's message in bitmix_strerror()) when the arena is full.
 */
void *bitmix_tensor_alloc(struct bitmix *bm, size_t size);

/* Give back a tensor from bitmix_tensor_alloc(). NULL is a no-op. */
void bitmix_tensor_free(struct bitmix *bm, void *tensor);

/*
 * Register SIZE bytes of MEMFD, which the caller has mapped at ADDR, so that tensors inside it
 * can be used without a copy. The memfd must be created with MFD_ALLOW_SEALING and sealed with
 * F_SEAL_SHRINK | F_SEAL_GROW, and SIZE must be its size; bitmixd checks all of it and its
 * limits (regions, mapped bytes). The caller keeps MEMFD and the mapping (bitmixd maps its own;
 * the descriptor may be closed). Returns the region's number (>= 1) or -errno.
 */
int bitmix_region_register(struct bitmix *bm, int memfd, void *addr, size_t size);

/* Forget REGION; requests already submitted that name it still complete normally. */
int bitmix_region_unregister(struct bitmix *bm, int region);

/*
 * Run BATCH samples through MODEL at its current operating point and wait for the result.
 * INPUT (batch * input size floats) and OUTPUT (batch * output_size floats) must be tensors of
 * this connection (arena or registered region). *generation (if not NULL) receives the operating
 * point's generation the whole request ran at. Refused (-EBUSY) while asynchronous requests are
 * outstanding: their completions would be mixed up with this one's.
 */
int bitmix_infer(struct bitmix_model *model, const float *input, float *output, uint32_t batch,
		 uint64_t *generation);

/* What bitmix_reap() returns for each request. */
struct bitmix_completion {
	uint64_t user_data; /* as given to bitmix_prep_*() */
	int32_t status; /* 0, or -errno: -EBADF model not open, -EINVAL batch, -EMSGSIZE lengths,
				-ERANGE offsets, -ENXIO region, -EBUSY limits.in_flight,
				-EOPNOTSUPP adaptive precision of a model without it */
	uint64_t generation; /* inference: the operating point's generation it ran at */
	unsigned mode, configs, escalated; /* inference: as in struct bitmix_result below */
	uint64_t bitops;		   /* inference: BitOps spent on the request */
};

/*
 * Per-sample adaptive precision (docs/adaptive.md). Adaptive modes choose each sample's bits at
 * or below the governor's operating point and never under a QoS floor; the result says what ran
 * and what it cost.
 */
#define BITMIX_INFER_CURRENT 0 /* the model's default (governor.policies.MODEL.precision) */
#define BITMIX_INFER_CASCADE 1 /* the model's confidence cascade */
#define BITMIX_INFER_POLICY 2  /* the model's learned policy */
#define BITMIX_INFER_FIXED 3   /* the operating point, whatever the default */
struct bitmix_result {
	uint64_t generation; /* the operating point (the ceiling) the request ran under */
	unsigned mode;	     /* what ran: 0 the operating point, 1 cascade, 2 policy */
	unsigned configs;    /* bit k set: some sample's output came from configuration k */
	unsigned escalated;  /* samples that ran more than one configuration */
	uint64_t bitops; /* BitOps spent on the whole request (MACs x weight x activation bits) */
};

/* bitmix_infer() with PRECISION (BITMIX_INFER_*); RESULT may be NULL. */
int bitmix_infer_precision(struct bitmix_model *model, const float *input, float *output,
			   uint32_t batch, unsigned precision, struct bitmix_result *result);

/* bitmix_prep_infer() with a precision. */
int bitmix_prep_infer_precision(struct bitmix_model *model, const float *input, float *output,
				uint32_t batch, unsigned precision, uint64_t user_data);

/*
 * Queue an inference of BATCH samples (as bitmix_infer()) with USER_DATA to be echoed in its
 * completion. Nothing reaches bitmixd until bitmix_submit(). -EBUSY when as many requests as the
 * connection allows are outstanding (submitted or queued, and not yet reaped).
 */
int bitmix_prep_infer(struct bitmix_model *model, const float *input, float *output, uint32_t batch,
		      uint64_t user_data);

/*
 * Queue a request that runs nothing: bitmixd checks TENSOR (LENGTH bytes, in the arena or a
 * registered region; NULL and 0 for none) like any tensor reference and completes it. It
 * measures the transport, and shows that a tensor's size does not change its cost.
 */
int bitmix_prep_nop(struct bitmix *bm, const void *tensor, size_t length, uint64_t user_data);

/*
 * Publish every queued request with one store; a system call wakes bitmixd only if it said it
 * sleeps. Returns how many requests were published.
 */
int bitmix_submit(struct bitmix *bm);

/*
 * Reap up to MAX completions into OUT, in the order they finished. TIMEOUT_NS: 0 polls, < 0
 * waits until at least one completion is there, > 0 waits at most that long. Spins first (see
 * bitmix_set_spin()), then sleeps. Returns how many were reaped (0 on timeout) or -errno
 * (-ECONNRESET once bitmixd is gone and every completion it posted has been reaped).
 */
int bitmix_reap(struct bitmix *bm, struct bitmix_completion *out, unsigned max, int64_t timeout_ns);

/*
 * How long bitmix_reap() polls the completion ring before it sleeps (default 20 us). Spinning
 * trades a CPU for latency: about 1 us round trips instead of a wake-up's tens of microseconds.
 */
void bitmix_set_spin(struct bitmix *bm, uint64_t spin_ns);

/* Daemon-wide counters, as `bitmixctl status` prints them. */
struct bitmix_status {
	char version[16];
	uint64_t uptime_ns;
	uint64_t requests_completed;
	uint64_t requests_failed;
	uint32_t clients;
	uint32_t models;
	uint32_t workers;
	char kernels[16]; /* the daemon engine's compute path: "ref", "avx2", "avxvnni", "avx512" */
	char doorbell[16];	   /* "futex" (io_uring futex ops) or "eventfd" */
	uint64_t dropped_on_close; /* requests still queued when their connection closed: never run */
};

int bitmix_get_status(struct bitmix *bm, struct bitmix_status *status);

/* What the daemon senses, as `bitmixctl status` prints it. */
struct bitmix_sensors {
	char source[16]; /* the active source: "bpf", "sysfs" or "simulator" */
	unsigned have;	 /* which fields hold a value: 1 temp, 2 power, 4 load, 8 freq */
	double temp_c;
	double power_w;
	double load; /* busy share of all CPUs, 0..1 */
	unsigned freq_khz;
	unsigned period_ms; /* sampling period */
	double age_s;	    /* how old the reading is */
	uint64_t samples, events;
	char explain[2048]; /* one line per source: why it was or was not chosen */
};

int bitmix_get_sensors(struct bitmix *bm, struct bitmix_sensors *sensors);

/*
 * Ask bitmixd to reload its configuration (root or the daemon's own user; what `systemctl
 * reload bitmixd` runs). Returns when the reload is over: 0 if it was applied, else -errno and
 * the running configuration was kept; WHY (if not NULL) then gets the whole reason,
 * "file:line:column: what", and bitmix_strerror() its beginning.
 */
#define BITMIX_RELOAD_WHY_MAX 512
int bitmix_reload(struct bitmix *bm, char *why, size_t why_size);

/*
 * The governor (see docs/governor.md). bitmix_governor() reports the running governor and, with
 * SET not NULL, first switches to it (needs the right to set bits). A governor that cannot start
 * leaves performance running and says why in `fallback`.
 */
struct bitmix_governor_info {
	char name[24];	     /* the governor running now */
	char available[128]; /* every governor, space separated */
	char fallback[200];  /* why the configured or requested governor is not running, or "" */
	unsigned policies;   /* models governed */
	/* The work cap, the governor's second cooling device (docs/governor.md). */
	double work_cap_cpus; /* CPUs the daemon's workers may keep busy; 0 = no cap */
	double busy_cpus;     /* what they kept busy, averaged over a few periods */
	double capacity_cpus; /* the workers */
	uint64_t capped_ns;   /* time spent under a cap */
	int saturated; /* the daemon keeps all it may use busy: fewer bits buy rate, not power */
};

int bitmix_governor(struct bitmix *bm, const char *set, struct bitmix_governor_info *info);

#define BITMIX_GOV_STATES 13 /* statistics states: average bits 2.0, 2.5, ... 8.0 */

/* A model's policy: its operating point, limits, QoS holds and cpufreq-style statistics. */
struct bitmix_policy_info {
	double average_bits; /* MAC-weighted over the layers */
	double cost_ns;	     /* engine time per sample at these bits, from the measured table */
	double rate;	     /* samples per second served */
	unsigned min_bits, max_bits; /* limits */
	unsigned floor_bits;	     /* the highest floor held (0: none) */
	uint64_t max_latency_ns;     /* the lowest latency ceiling held (0: none) */
	unsigned holds;
	uint64_t transitions, decisions, last_decision_ns;
	unsigned state; /* index into time_in_state_ns */
	uint64_t time_in_state_ns[BITMIX_GOV_STATES];
	uint32_t trans_table[BITMIX_GOV_STATES][BITMIX_GOV_STATES];
	/* Per-sample adaptive precision (docs/adaptive.md). */
	char precision[16]; /* the default of requests: "fixed", "cascade" or "policy" */
	uint64_t adaptive_requests, adaptive_samples, adaptive_escalated;
	double adaptive_bitops;		/* average BitOps per adaptive request */
	double adaptive_ceiling_bitops; /* the same requests at the operating point, on average */
	double cost_scale; /* measured cost / the operating point's, used by the power model */
};

int bitmix_get_policy(struct bitmix *bm, const char *model, struct bitmix_policy_info *info);

/*
 * A model's per-layer cost table (docs/governor.md): for every layer and bit-width it allows, the
 * engine's time per sample at batch 1 and at the large batch, measured on the daemon's kernel
 * path or (until the background measurement reaches it) estimated.
 */
struct bitmix_cost_layer {
	char name[32];
	uint16_t allowed;     /* bit b: the layer allows b bits */
	uint16_t measured[2]; /* bit b: measured at batch 1 / the large batch (else estimated) */
	uint16_t pruned;      /* bit b: saves nothing measurable; not lowered to for cost */
	double ns[2][9];      /* [batch][bits] ns per sample; 0 where not allowed */
};

struct bitmix_cost_info {
	char cpu[64], kernels[16], source[16]; /* measured on; "measured" or "cache" */
	unsigned layer_count, large_batch;
	unsigned rows, measured[2]; /* (layer, bits) rows, and those measured at each batch */
	int complete;		    /* every row measured at both batches */
	double complete_s;	    /* seconds from load to a complete table, 0 if not (yet) */
	double batch;		    /* the traffic's mean batch the allocator costs at */
};

/*
 * The cost table of MODEL: INFO, and the first MAX_LAYERS layers into LAYERS (NULL with 0: the
 * summary alone). Returns 0 or -errno.
 */
int bitmix_get_cost(struct bitmix *bm, const char *model, struct bitmix_cost_info *info,
		    struct bitmix_cost_layer *layers, unsigned max_layers);

/*
 * QoS holds, aggregated as the kernel's PM QoS aggregates requests: the highest floor on bits
 * and the lowest ceiling on engine time per sample win. A hold lasts until bitmix_release() or
 * until the connection closes. At most 8 per connection.
 */
#define BITMIX_HOLD_MIN_BITS 1	     /* value: 2..8 bits, every layer that allows it */
#define BITMIX_HOLD_MAX_LATENCY_NS 2 /* value: ns of engine time per sample */

int bitmix_hold(struct bitmix *bm, const char *model, unsigned kind, uint64_t value, uint32_t *id);
int bitmix_release(struct bitmix *bm, const char *model, uint32_t id);

/* Every hold on MODEL, whoever placed it (up to MAX into HOLDS); the count, or -errno. */
struct bitmix_hold_info {
	uint32_t id;
	unsigned kind; /* BITMIX_HOLD_* */
	uint64_t value;
	char owner[32]; /* "client 7" (a socket connection) or ":1.42" (a bus peer) */
};
int bitmix_get_holds(struct bitmix *bm, const char *model, struct bitmix_hold_info *holds,
		     size_t max);

/*
 * A model's limits: every layer's bits within min..max, some layers pinned to one bit-width.
 * Setting them needs the set_bits right; they are checked whole, and bad ones change nothing.
 * An ungoverned model reads 2..8 with none pinned and cannot be set (-EOPNOTSUPP).
 */
struct bitmix_limits {
	uint8_t min_bits, max_bits;
	unsigned n_pinned;
	struct {
		char layer[32]; /* a layer's name, or its index */
		uint8_t bits;
	} pinned[32];
};
int bitmix_get_limits(struct bitmix *bm, const char *model, struct bitmix_limits *limits);
int bitmix_set_limits(struct bitmix *bm, const char *model, const struct bitmix_limits *limits);

#ifdef __cplusplus
}
#endif

#endif
