/* SPDX-License-Identifier: MIT */
/*
 * config.h — bitmixd's YAML configuration (libyaml), parsed and checked in one step.
 *
 * A config is immutable once loaded; a reload parses a new one and swaps it in only if it is
 * valid, so a typo never costs the daemon its running state. Every error names
 * file:line:column, the key, and what was expected (the accepted keys or values).
 * The schema is documented in config/README.md.
 */
#ifndef BITMIX_CONFIG_H
#define BITMIX_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BMX_CONFIG_NAME_MAX 48
#define BMX_CONFIG_MAX_MODELS 64
#define BMX_CONFIG_MAX_WORKERS 256

struct bmx_config_model {
	char name[BMX_CONFIG_NAME_MAX]; /* [A-Za-z0-9._-]+ */
	char *path;                     /* absolute: relative paths resolve against the config's folder */
};

/* ipc.doorbell: how bitmixd and its clients wake each other. */
enum bmx_doorbell_choice {
	BMX_DOORBELL_AUTO = 0, /* io_uring futex operations if the kernel has them, else eventfds */
	BMX_DOORBELL_FUTEX,    /* futexes, and refuse to start without the io_uring futex ops */
	BMX_DOORBELL_EVENTFD,  /* one eventfd per direction per client (kernels before 6.7) */
};

/* The ipc: block (config_ipc.c) and the limits: block (config_limits.c). */
struct bmx_config_ipc {
	enum bmx_doorbell_choice doorbell;
	unsigned spin_us;              /* the event loop polls the rings this long before it sleeps */
};

struct bmx_config_limits {
	unsigned in_flight;            /* per connection: requests admitted and not yet completed */
	unsigned regions;              /* per connection: registered memfd regions */
	uint64_t mapped_bytes;         /* per connection: arena plus regions */
	unsigned connections_per_uid;
};

struct bmx_config {
	char *source_path;              /* the file this came from */
	char *socket_path;              /* default /run/bitmix/bitmixd.sock */
	unsigned workers;               /* worker threads, 1..BMX_CONFIG_MAX_WORKERS; default: online CPUs */
	int log_level;                  /* syslog priority: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */
	struct bmx_config_model *models;
	size_t n_models;
	uid_t *set_bits_uids;           /* besides root, who may change bits */
	size_t n_set_bits_uids;
	gid_t *set_bits_gids;
	size_t n_set_bits_gids;
	struct bmx_config_ipc ipc;
	struct bmx_config_limits limits;
};

struct bmx_config_error {
	char msg[512];
};

/* Parse and validate PATH. Returns 0 and a new config in *out, or -errno with *err filled in. */
int bmx_config_load(const char *path, struct bmx_config **out, struct bmx_config_error *err);

/* The same from a string, with NAME used as the file name in messages (tests, drop-ins). */
int bmx_config_load_string(const char *name, const char *text, struct bmx_config **out,
			   struct bmx_config_error *err);

void bmx_config_free(struct bmx_config *config);

/* The model entry called NAME, or NULL. */
const struct bmx_config_model *bmx_config_find_model(const struct bmx_config *config,
						     const char *name);

#endif
