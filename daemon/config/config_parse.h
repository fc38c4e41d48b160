/* SPDX-License-Identifier: MIT */
/*
 * config_parse.h — the YAML walking helpers shared by config.c and the files that parse one
 * top-level block each (config_<block>.c). Internal to the configuration library.
 *
 * Every helper that fails fills p->err with "file:line:column: key.path: what was wrong and what
 * was expected" and returns -EINVAL, so a block parser only says what it expected.
 */
#ifndef BITMIX_CONFIG_PARSE_H
#define BITMIX_CONFIG_PARSE_H

#include <stdbool.h>
#include <sys/types.h>
#include <yaml.h>

#include "config.h"

struct config_parse {
	const char *file;	 /* the main file (or a string's name) */
	char *base_dir;		 /* relative paths resolve against it */
	yaml_document_t doc;	 /* the main file with its drop-ins merged in (config_merge.c) */
	const char **node_files; /* [node id - 1]: the file the node came from; NULL: file */
	size_t n_node_files;
	char **dropins; /* the drop-in paths node_files points into */
	size_t n_dropins;
	struct bmx_config *cfg;
	struct bmx_config_error *err;
};

/* config_merge.c: the main file and its drop-ins as one document in p->doc. */
int config_read_document(const char *name, const unsigned char *text, size_t len,
			 yaml_document_t *doc, struct bmx_config_error *err);
int config_merge_files(struct config_parse *p, const char *main_path);
/* "a FIFO", "a character device", ...: for errors about paths that are not regular files. */
const char *config_file_type_name(mode_t mode);
/* The drop-ins of MAIN_PATH in the order they apply (config/README.md). */
int config_dropins(const char *main_path, char ***files, size_t *n);
void config_dropins_free(char **files, size_t n);
/* The file NODE of p->doc came from. */
const char *config_node_file(const struct config_parse *p, const yaml_node_t *node);

int config_fail(struct config_parse *p, const yaml_node_t *node, const char *path, const char *fmt,
		...) __attribute__((format(printf, 4, 5)));
const char *config_node_type_name(const yaml_node_t *n);
/* "file:line:column" of NODE (1-based), for checks made after parsing. */
void config_where(struct config_parse *p, const yaml_node_t *node, char *buf, size_t size);
int config_expect(struct config_parse *p, const yaml_node_t *n, yaml_node_type_t type,
		  const char *path);

static inline const char *config_scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/* Walk a mapping's pairs, rejecting duplicate keys and non-scalar keys. */
typedef int (*config_pair_fn)(struct config_parse *p, const char *key, yaml_node_t *key_node,
			      yaml_node_t *value, void *userdata);
int config_for_each_pair(struct config_parse *p, yaml_node_t *map, const char *path,
			 config_pair_fn fn, void *userdata);

/* One parser per top-level block, each in config_<block>.c. */
int config_parse_governor(struct config_parse *p, yaml_node_t *v);
/* One top-level block per file. */
int config_parse_sensors(struct config_parse *p, yaml_node_t *v); /* config_sensors.c */
/* config_kernels.c: the top-level "kernels" key. */
int config_parse_kernels(struct config_parse *p, yaml_node_t *v);
/* One top-level block each (config_<block>.c): defaults, then the parser of the block. */
void config_ipc_defaults(struct bmx_config *cfg);
int config_parse_ipc(struct config_parse *p, yaml_node_t *v);
void config_limits_defaults(struct bmx_config *cfg);
int config_parse_limits(struct config_parse *p, yaml_node_t *v);
int config_parse_dbus(struct config_parse *p, yaml_node_t *v); /* config_dbus.c */
/* A user or group entry (name or number) of a list, resolved now; config.c. */
int config_resolve_id(struct config_parse *p, yaml_node_t *n, const char *path, bool group,
		      unsigned *out);

#endif
