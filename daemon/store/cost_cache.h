/* SPDX-License-Identifier: MIT */
/*
 * cost_cache.h — the per-layer cost tables kept across restarts, one file per model under the
 * directory systemd gives the service ($CACHE_DIRECTORY, else $STATE_DIRECTORY), so that a
 * restart serves with the measured table at once. A file stands only for the key it was written
 * under: the model's content (its checksum and size), the CPU (/proc/cpuinfo's model name) and
 * the kernel path; any other key, or a file that does not parse, is ignored with a log line and
 * the table measured again.
 */
#ifndef BITMIX_COST_CACHE_H
#define BITMIX_COST_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "cost_table.h"

struct cost_key {
	uint32_t checksum; /* the .bmx header's CRC-32 */
	uint64_t size;	   /* of the .bmx */
	char cpu[128];	   /* "model name" of the first CPU in /proc/cpuinfo, or "unknown" */
	char kernels[16];  /* bmx_kernels_name() of the engine's path */
};

/* KEY for MODEL run on ENGINE. */
void cost_key_of(const struct bmx_model *model, const struct bmx_engine *engine,
		 struct cost_key *key);

/* The cache file of model NAME into PATH: 0, or -ENOENT when systemd gave no directory. */
int cost_cache_path(const char *name, char *path, size_t size);

/*
 * Take the measured rows of PATH into T (whose layers' allowed bits must match): 0; -ENOENT
 * when there is no file; -ESTALE when it was written under another key; -EBADMSG when it is
 * not a cost table of this model. The last two are logged.
 */
int cost_cache_read(const char *path, const struct cost_key *key, struct cost_table *t);

/* Write T's measured rows to PATH (through a temporary file and a rename): 0 or -errno. */
int cost_cache_write(const char *path, const struct cost_key *key, const struct cost_table *t);

#endif
