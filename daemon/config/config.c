/* SPDX-License-Identifier: MIT */
/*
 * config.c — parse and check bitmixd's YAML configuration with libyaml's document API.
 *
 * The whole file is parsed into a document first, then walked key by key into a new struct
 * bmx_config. Nothing is applied here: the caller swaps configs only when this returned 0.
 * Every error names file:line:column (1-based), the key path, what was found and what was
 * expected. The schema is documented in config/README.md.
 */
#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>
#include <yaml.h>

#include "bitmix-config.h"
#include "config.h"
#include "config_parse.h"
#include "log.h"

#define DEFAULT_SOCKET "/run/bitmix/bitmixd.sock"

int config_fail(struct config_parse *p, const yaml_node_t *node, const char *path, const char *fmt,
		...)
{
	char what[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (p->err)
		snprintf(p->err->msg, sizeof(p->err->msg), "%s:%zu:%zu: %s%s%s",
			 config_node_file(p, node), node ? node->start_mark.line + 1 : 1,
			 node ? node->start_mark.column + 1 : 1, path ? path : "", path ? ": " : "",
			 what);
	return -EINVAL;
}

void config_where(struct config_parse *p, const yaml_node_t *node, char *buf, size_t size)
{
	snprintf(buf, size, "%s:%zu:%zu", config_node_file(p, node), node->start_mark.line + 1,
		 node->start_mark.column + 1);
}

const char *config_node_type_name(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return "a scalar";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a mapping";
	default:
		return "nothing";
	}
}

int config_expect(struct config_parse *p, const yaml_node_t *n, yaml_node_type_t type,
		  const char *path)
{
	static const char *names[] = { [YAML_SCALAR_NODE] = "a scalar",
				       [YAML_SEQUENCE_NODE] = "a list",
				       [YAML_MAPPING_NODE] = "a mapping" };

	if (n->type == type)
		return 0;
	return config_fail(p, n, path, "found %s, expected %s", config_node_type_name(n),
			   names[type]);
}

int config_for_each_pair(struct config_parse *p, yaml_node_t *map, const char *path,
			 config_pair_fn fn, void *userdata)
{
	for (yaml_node_pair_t *a = map->data.mapping.pairs.start; a < map->data.mapping.pairs.top;
	     a++) {
		yaml_node_t *k = yaml_document_get_node(&p->doc, a->key);
		yaml_node_t *v = yaml_document_get_node(&p->doc, a->value);
		int r;

		if (k->type != YAML_SCALAR_NODE)
			return config_fail(p, k, path, "keys must be plain names, found %s",
					   config_node_type_name(k));
		for (yaml_node_pair_t *b = map->data.mapping.pairs.start; b < a; b++) {
			yaml_node_t *k2 = yaml_document_get_node(&p->doc, b->key);

			if (k2->type == YAML_SCALAR_NODE &&
			    strcmp(config_scalar(k2), config_scalar(k)) == 0)
				return config_fail(p, k, path,
						   "duplicate key \"%s\" (first at line %zu)",
						   config_scalar(k), k2->start_mark.line + 1);
		}
		r = fn(p, config_scalar(k), k, v, userdata);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_workers(struct config_parse *p, yaml_node_t *v)
{
	const char *s;
	char *end;
	long n;

	if (config_expect(p, v, YAML_SCALAR_NODE, "workers") < 0)
		return -EINVAL;
	s = config_scalar(v);
	if (strcmp(s, "auto") == 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		p->cfg->workers = cpus < 1			  ? 1
				  : cpus > BMX_CONFIG_MAX_WORKERS ? BMX_CONFIG_MAX_WORKERS
								  : (unsigned)cpus;
		return 0;
	}
	errno = 0;
	n = strtol(s, &end, 10);
	if (errno || end == s || *end || n < 1 || n > BMX_CONFIG_MAX_WORKERS)
		return config_fail(p, v, "workers", "\"%s\" is not a number 1..%d or \"auto\"", s,
				   BMX_CONFIG_MAX_WORKERS);
	p->cfg->workers = (unsigned)n;
	return 0;
}

static int parse_socket(struct config_parse *p, yaml_node_t *v)
{
	const char *s;

	if (config_expect(p, v, YAML_SCALAR_NODE, "socket") < 0)
		return -EINVAL;
	s = config_scalar(v);
	if (s[0] != '/')
		return config_fail(p, v, "socket", "\"%s\" is not an absolute path", s);
	if (strlen(s) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return config_fail(p, v, "socket",
				   "path is %zu bytes, at most %zu fit a unix socket", strlen(s),
				   sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	free(p->cfg->socket_path);
	p->cfg->socket_path = strdup(s);
	return p->cfg->socket_path ? 0 : -ENOMEM;
}

/* A model name: 1..BMX_CONFIG_NAME_MAX-1 of A-Z a-z 0-9 . _ - (config and D-Bus LoadModel). */
bool bmx_config_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= BMX_CONFIG_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') &&
		    !(s[i] >= '0' && s[i] <= '9') && !strchr("._-", s[i]))
			return false;
	return true;
}

static int model_pair(struct config_parse *p, const char *key, yaml_node_t *k, yaml_node_t *v,
		      void *u)
{
	struct bmx_config *c = p->cfg;
	struct bmx_config_model *m;
	char path[64 + BMX_CONFIG_NAME_MAX];
	const char *file;

	(void)u;
	snprintf(path, sizeof(path), "models.%s", key);
	if (!bmx_config_name_ok(key))
		return config_fail(
			p, k, "models",
			"\"%s\" is not a model name (1-%d characters of A-Z a-z 0-9 . _ -)", key,
			BMX_CONFIG_NAME_MAX - 1);
	if (c->n_models == BMX_CONFIG_MAX_MODELS)
		return config_fail(p, k, "models", "more than %d models", BMX_CONFIG_MAX_MODELS);
	if (config_expect(p, v, YAML_SCALAR_NODE, path) < 0)
		return -EINVAL;
	file = config_scalar(v);
	if (!*file)
		return config_fail(p, v, path, "empty path, expected the path of a .bmx file");
	m = &c->models[c->n_models];
	snprintf(m->name, sizeof(m->name), "%s", key);
	config_where(p, v, m->where, sizeof(m->where));
	if (file[0] == '/')
		m->path = strdup(file);
	else if (asprintf(&m->path, "%s/%s", p->base_dir, file) < 0)
		m->path = NULL;
	if (!m->path)
		return -ENOMEM;
	c->n_models++;
	return 0;
}

static int parse_models(struct config_parse *p, yaml_node_t *v)
{
	if (config_expect(p, v, YAML_MAPPING_NODE, "models") < 0)
		return -EINVAL;
	if (v->data.mapping.pairs.top == v->data.mapping.pairs.start)
		return config_fail(p, v, "models",
				   "no models, expected at least one NAME: PATH entry");
	return config_for_each_pair(p, v, "models", model_pair, NULL);
}

static void free_folders(struct bmx_config *c)
{
	for (size_t i = 0; i < c->n_model_folders; i++)
		free(c->model_folders[i]);
	free(c->model_folders);
	c->model_folders = NULL;
	c->n_model_folders = 0;
}

/* model_folders: absolute folders D-Bus LoadModel may read models from (docs/dbus.md). */
static int parse_model_folders(struct config_parse *p, yaml_node_t *v)
{
	size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start), i = 0;
	struct bmx_config *c = p->cfg;

	if (config_expect(p, v, YAML_SEQUENCE_NODE, "model_folders") < 0)
		return -EINVAL;
	free_folders(c);
	c->model_folders = calloc(n ? n : 1, sizeof(char *));
	if (!c->model_folders)
		return -ENOMEM;
	for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++, i++) {
		yaml_node_t *item = yaml_document_get_node(&p->doc, *it);
		char ipath[32];
		size_t len;

		snprintf(ipath, sizeof(ipath), "model_folders[%zu]", i);
		if (config_expect(p, item, YAML_SCALAR_NODE, ipath) < 0)
			return -EINVAL;
		len = strlen(config_scalar(item));
		if (config_scalar(item)[0] != '/' || strstr(config_scalar(item), "/../") ||
		    (len >= 3 && strcmp(config_scalar(item) + len - 3, "/..") == 0))
			return config_fail(p, item, ipath,
					   "\"%s\" is not an absolute path without \"..\"",
					   config_scalar(item));
		c->model_folders[i] = strdup(config_scalar(item));
		if (!c->model_folders[i])
			return -ENOMEM;
		c->n_model_folders = i + 1;
	}
	return 0;
}

/* One entry of access.set_bits.users or .groups: a name or a number. */
int config_resolve_id(struct config_parse *p, yaml_node_t *n, const char *path, bool group,
		      unsigned *out)
{
	const char *s = config_scalar(n);
	char buf[4096], *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s && !*end && !errno && v < UINT_MAX) {
		*out = (unsigned)v;
		return 0;
	}
	if (group) {
		struct group g, *res = NULL;

		if (getgrnam_r(s, &g, buf, sizeof(buf), &res) == 0 && res) {
			*out = g.gr_gid;
			return 0;
		}
		return config_fail(p, n, path,
				   "no group called \"%s\" (expected a group name or gid)", s);
	}
	struct passwd pw, *res = NULL;

	if (getpwnam_r(s, &pw, buf, sizeof(buf), &res) == 0 && res) {
		*out = pw.pw_uid;
		return 0;
	}
	return config_fail(p, n, path, "no user called \"%s\" (expected a user name or uid)", s);
}

static int parse_id_list(struct config_parse *p, yaml_node_t *v, const char *path, bool group)
{
	size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	unsigned *ids;
	size_t i = 0;

	if (config_expect(p, v, YAML_SEQUENCE_NODE, path) < 0)
		return -EINVAL;
	ids = calloc(n ? n : 1, sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++, i++) {
		yaml_node_t *item = yaml_document_get_node(&p->doc, *it);
		char ipath[64];

		snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
		if (config_expect(p, item, YAML_SCALAR_NODE, ipath) < 0 ||
		    config_resolve_id(p, item, ipath, group, &ids[i]) < 0) {
			free(ids);
			return -EINVAL;
		}
	}
	if (group) {
		free(p->cfg->set_bits_gids);
		p->cfg->set_bits_gids = (gid_t *)ids;
		p->cfg->n_set_bits_gids = n;
	} else {
		free(p->cfg->set_bits_uids);
		p->cfg->set_bits_uids = (uid_t *)ids;
		p->cfg->n_set_bits_uids = n;
	}
	return 0;
}

static int set_bits_pair(struct config_parse *p, const char *key, yaml_node_t *k, yaml_node_t *v,
			 void *u)
{
	(void)u;
	if (strcmp(key, "users") == 0)
		return parse_id_list(p, v, "access.set_bits.users", false);
	if (strcmp(key, "groups") == 0)
		return parse_id_list(p, v, "access.set_bits.groups", true);
	return config_fail(p, k, "access.set_bits",
			   "unknown key \"%s\" (expected one of: users, groups)", key);
}

static int access_pair(struct config_parse *p, const char *key, yaml_node_t *k, yaml_node_t *v,
		       void *u)
{
	(void)u;
	if (strcmp(key, "set_bits") != 0)
		return config_fail(p, k, "access", "unknown key \"%s\" (expected one of: set_bits)",
				   key);
	if (config_expect(p, v, YAML_MAPPING_NODE, "access.set_bits") < 0)
		return -EINVAL;
	return config_for_each_pair(p, v, "access.set_bits", set_bits_pair, NULL);
}

static int top_pair(struct config_parse *p, const char *key, yaml_node_t *k, yaml_node_t *v,
		    void *u)
{
	bool *seen_models = u;

	if (strcmp(key, "socket") == 0)
		return parse_socket(p, v);
	if (strcmp(key, "workers") == 0)
		return parse_workers(p, v);
	if (strcmp(key, "log_level") == 0) {
		int level;

		if (config_expect(p, v, YAML_SCALAR_NODE, "log_level") < 0)
			return -EINVAL;
		level = bmx_log_level_from_string(config_scalar(v));
		if (level < 0)
			return config_fail(p, v, "log_level",
					   "\"%s\" is not one of: error, warning, info, debug",
					   config_scalar(v));
		p->cfg->log_level = level;
		return 0;
	}
	if (strcmp(key, "models") == 0) {
		*seen_models = true;
		return parse_models(p, v);
	}
	if (strcmp(key, "kernels") == 0)
		return config_parse_kernels(p, v);
	if (strcmp(key, "model_folders") == 0)
		return parse_model_folders(p, v);
	if (strcmp(key, "governor") == 0)
		return config_parse_governor(p, v);
	if (strcmp(key, "access") == 0) {
		if (config_expect(p, v, YAML_MAPPING_NODE, "access") < 0)
			return -EINVAL;
		return config_for_each_pair(p, v, "access", access_pair, NULL);
	}
	if (strcmp(key, "sensors") == 0)
		return config_parse_sensors(p, v);
	if (strcmp(key, "ipc") == 0)
		return config_parse_ipc(p, v);
	if (strcmp(key, "limits") == 0)
		return config_parse_limits(p, v);
	if (strcmp(key, "dbus") == 0)
		return config_parse_dbus(p, v);
	return config_fail(
		p, k, NULL,
		"unknown key \"%s\" (expected one of: socket, workers, log_level, models, model_folders, governor, sensors, access, kernels, ipc, limits, dbus)",
		key);
}

/* Walk p->doc (one file, or a main file with its drop-ins merged) into p->cfg. */
static int parse_root(struct config_parse *p)
{
	yaml_node_t *root;
	bool seen_models = false;
	int r;

	root = yaml_document_get_root_node(&p->doc);
	if (!root)
		return config_fail(
			p, NULL, NULL,
			"the file is empty, expected a mapping with at least \"models\"");
	if (config_expect(p, root, YAML_MAPPING_NODE, "top level") < 0)
		return -EINVAL;
	r = config_for_each_pair(p, root, NULL, top_pair, &seen_models);
	if (r < 0)
		return r;
	if (!seen_models)
		return config_fail(p, root, NULL,
				   "no \"models\" key: name at least one model (NAME: PATH)");
	return 0;
}

static struct bmx_config *config_new_defaults(const char *source)
{
	struct bmx_config *c = calloc(1, sizeof(*c));
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (!c)
		return NULL;
	c->source_path = strdup(source);
	c->socket_path = strdup(DEFAULT_SOCKET);
	c->models = calloc(BMX_CONFIG_MAX_MODELS, sizeof(*c->models));
	c->workers = cpus < 1			     ? 1
		     : cpus > BMX_CONFIG_MAX_WORKERS ? BMX_CONFIG_MAX_WORKERS
						     : (unsigned)cpus;
	c->log_level = LOG_INFO;
	bmx_governor_config_defaults(&c->governor);
	bmx_sensors_config_defaults(&c->sensors);
	config_ipc_defaults(c);
	config_limits_defaults(c);
	c->model_folders = calloc(1, sizeof(char *));
	if (c->model_folders && (c->model_folders[0] = strdup(BITMIX_MODELDIR)))
		c->n_model_folders = 1;
	if (!c->source_path || !c->socket_path || !c->models || !c->n_model_folders) {
		bmx_config_free(c);
		return NULL;
	}
	return c;
}

/* TEXT (a string's contents), or NULL: the file NAME and its drop-ins. */
static int load(const char *name, const char *base_dir, const char *text, size_t len,
		struct bmx_config **out, struct bmx_config_error *err)
{
	struct config_parse p = { .file = name, .err = err };
	int r;

	*out = NULL;
	p.cfg = config_new_defaults(name);
	p.base_dir = strdup(base_dir);
	if (!p.cfg || !p.base_dir) {
		r = -ENOMEM;
		if (err)
			snprintf(err->msg, sizeof(err->msg), "%s: out of memory", name);
	} else {
		r = text ? config_read_document(name, (const unsigned char *)text, len, &p.doc, err)
			 : config_merge_files(&p, name);
		if (r == 0)
			r = parse_root(&p);
	}
	yaml_document_delete(&p.doc);
	free(p.node_files);
	config_dropins_free(p.dropins, p.n_dropins);
	free(p.base_dir);
	if (r < 0) {
		bmx_config_free(p.cfg);
		return r;
	}
	*out = p.cfg;
	return 0;
}

int bmx_config_load_string(const char *name, const char *text, struct bmx_config **out,
			   struct bmx_config_error *err)
{
	char cwd[PATH_MAX];

	if (!getcwd(cwd, sizeof(cwd)))
		snprintf(cwd, sizeof(cwd), ".");
	return load(name, cwd, text, strlen(text), out, err);
}

int bmx_config_load(const char *path, struct bmx_config **out, struct bmx_config_error *err)
{
	char *dir_copy = strdup(path);
	int r;

	*out = NULL;
	if (!dir_copy)
		return -ENOMEM;
	r = load(path, dirname(dir_copy), NULL, 0, out, err);
	free(dir_copy);
	return r;
}

void bmx_config_free(struct bmx_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_models; i++)
		free(c->models[i].path);
	free(c->models);
	free_folders(c);
	free(c->set_bits_uids);
	free(c->set_bits_gids);
	free(c->socket_path);
	free(c->source_path);
	free(c);
}

const struct bmx_config_model *bmx_config_find_model(const struct bmx_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_models; i++)
		if (strcmp(c->models[i].name, name) == 0)
			return &c->models[i];
	return NULL;
}
