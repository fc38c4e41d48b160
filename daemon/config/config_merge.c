/* SPDX-License-Identifier: MIT */
/*
 * config_merge.c — the main configuration file and its drop-ins, merged into one YAML document
 * before the block parsers walk it (config/README.md, "Drop-ins").
 *
 * Drop-ins are the *.yaml files of DIR/conf.d, DIR being the main file's folder; for the
 * default main file (SYSCONFDIR/bitmix/bitmixd.yaml) also /run/bitmix/conf.d and
 * /usr/lib/bitmix/conf.d, with systemd's precedence: a file name in /etc hides the same name in
 * /run and /usr/lib, one in /run hides /usr/lib; a drop-in that is empty or a symlink to
 * /dev/null only hides. The survivors are applied in lexical order of their file names.
 *
 * Merging: mappings merge key by key, recursively; any other value (a scalar, a list) replaces
 * what earlier files said. Every node of the merged document keeps its line and column, and
 * p->node_files[id - 1] names the file it came from, so errors found by the block parsers name
 * the file the bad value is in.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "bmx_util.h"
#include "bitmix-config.h"
#include "config.h"
#include "config_parse.h"

#define CONFIG_MAX_BYTES (1u << 20)
#define CONFIG_MAX_DROPINS 128
/* Deeper than any real configuration; YAML aliases can make a node contain itself. */
#define CONFIG_MAX_DEPTH 32
/* Aliases copied out can multiply a small file (a "billion laughs"): cap the merged document. */
#define CONFIG_MAX_NODES 100000

const char *config_node_file(const struct config_parse *p, const yaml_node_t *node)
{
	size_t i;

	if (!node || !p->node_files || node < p->doc.nodes.start || node >= p->doc.nodes.top)
		return p->file;
	i = (size_t)(node - p->doc.nodes.start);
	return i < p->n_node_files && p->node_files[i] ? p->node_files[i] : p->file;
}

static int fail(struct config_parse *p, const char *file, const yaml_node_t *node, const char *what)
{
	if (p->err)
		snprintf(p->err->msg, sizeof(p->err->msg), "%s:%zu:%zu: %s", file,
			 node ? node->start_mark.line + 1 : 1,
			 node ? node->start_mark.column + 1 : 1, what);
	return -EINVAL;
}

/*
 * Walk TEXT's events once before anything is built: stop at the first event nested deeper
 * than CONFIG_MAX_DEPTH (so 500k "[" cost 33 events, not a quadratic parse) and refuse a
 * second document, which yaml_parser_load() would silently leave unread.
 */
static int config_prescan(const char *name, const unsigned char *text, size_t len,
			  struct bmx_config_error *err)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	unsigned depth = 0, documents = 0;
	int r = 0;

	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, text, len);
	for (;;) {
		if (!yaml_parser_parse(&parser, &ev)) {
			r = -EINVAL;
			if (err)
				snprintf(err->msg, sizeof(err->msg),
					 "%s:%zu:%zu: YAML syntax error: %s%s%s", name,
					 parser.problem_mark.line + 1,
					 parser.problem_mark.column + 1,
					 parser.problem ? parser.problem : "unknown problem",
					 parser.context ? " " : "",
					 parser.context ? parser.context : "");
			break;
		}
		if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT)
			depth++;
		else if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT)
			depth--;
		if (depth > CONFIG_MAX_DEPTH) {
			r = -EINVAL;
			if (err)
				snprintf(
					err->msg, sizeof(err->msg),
					"%s:%zu:%zu: nested deeper than %d levels (a configuration is "
					"a few levels deep)",
					name, ev.start_mark.line + 1, ev.start_mark.column + 1,
					CONFIG_MAX_DEPTH);
		} else if (ev.type == YAML_DOCUMENT_START_EVENT && ++documents > 1) {
			r = -EINVAL;
			if (err)
				snprintf(
					err->msg, sizeof(err->msg),
					"%s:%zu:%zu: a second YAML document (after \"---\"): a "
					"configuration file holds one; put the rest in a conf.d drop-in",
					name, ev.start_mark.line + 1, ev.start_mark.column + 1);
		}
		if (r < 0 || ev.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	return r;
}

int config_read_document(const char *name, const unsigned char *text, size_t len,
			 yaml_document_t *doc, struct bmx_config_error *err)
{
	yaml_parser_t parser;
	int r;

	memset(doc, 0, sizeof(*doc));
	r = config_prescan(name, text, len, err);
	if (r < 0)
		return r;
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, text, len);
	if (!yaml_parser_load(&parser, doc)) {
		if (err)
			snprintf(err->msg, sizeof(err->msg),
				 "%s:%zu:%zu: YAML syntax error: %s%s%s", name,
				 parser.problem_mark.line + 1, parser.problem_mark.column + 1,
				 parser.problem ? parser.problem : "unknown problem",
				 parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		memset(doc, 0, sizeof(*doc));
		return -EINVAL;
	}
	yaml_parser_delete(&parser);
	return 0;
}

/* "a FIFO", "a character device", ...: what a path that is not a regular file is. */
const char *config_file_type_name(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFIFO:
		return "a FIFO";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	case S_IFDIR:
		return "a folder";
	case S_IFSOCK:
		return "a socket";
	case S_IFLNK:
		return "a symbolic link";
	default:
		return "not a regular file";
	}
}

/*
 * FD's bytes, in a buffer as large as the file says it is (plus one byte, to see it end),
 * growing if it grows while being read, never past the cap: not 1 MiB for every few-line
 * drop-in. Returns 0, -EFBIG past the cap, or -errno.
 */
static int read_capped(int fd, off_t size, char **out, size_t *out_len)
{
	const size_t want = size > 0 && (uint64_t)size < CONFIG_MAX_BYTES ? (size_t)size
									  : CONFIG_MAX_BYTES;
	size_t len = 0, cap = want + 1;
	_cleanup_(freep) char *text = malloc(cap);

	if (!text)
		return -ENOMEM;
	while (len <= CONFIG_MAX_BYTES) {
		ssize_t got;

		if (len == cap) {
			size_t more = cap * 2 > CONFIG_MAX_BYTES + 1 ? CONFIG_MAX_BYTES + 1
								     : cap * 2;
			char *t = realloc(text, more);

			if (!t)
				return -ENOMEM;
			text = t;
			cap = more;
		}
		got = read(fd, text + len, cap - len);
		if (got == 0)
			break;
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		len += (size_t)got;
	}
	if (len > CONFIG_MAX_BYTES)
		return -EFBIG;
	*out = text;
	text = NULL;
	*out_len = len;
	return 0;
}

/*
 * Open PATH for reading without ever blocking: O_NONBLOCK, so that a FIFO nobody writes to
 * cannot stall the event loop in open(), then refuse anything but a regular file.
 */
static int read_file_document(const char *path, yaml_document_t *doc, struct bmx_config_error *err)
{
	_cleanup_(closep) int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	_cleanup_(freep) char *text = NULL;
	struct stat st;
	size_t len = 0;
	int r;

	memset(doc, 0, sizeof(*doc));
	if (fd < 0) {
		r = -errno;
		if (err)
			snprintf(err->msg, sizeof(err->msg), "%s: cannot open: %s", path,
				 strerror(-r));
		return r;
	}
	r = fstat(fd, &st) < 0 ? -errno : !S_ISREG(st.st_mode) ? -EINVAL : 0;
	if (r < 0) {
		if (err)
			snprintf(err->msg, sizeof(err->msg), "%s: %s, expected a regular YAML file",
				 path,
				 r == -EINVAL ? config_file_type_name(st.st_mode) : strerror(-r));
		return r;
	}
	r = read_capped(fd, st.st_size, &text, &len);
	if (r < 0) {
		if (err)
			snprintf(err->msg, sizeof(err->msg), "%s: %s", path,
				 r == -EFBIG ? "larger than 1 MiB, not a configuration file"
					     : strerror(-r));
		return r;
	}
	return config_read_document(path, (const unsigned char *)text, len, doc, err);
}

/* Note that node ID of the merged document came from FILE. */
static int record(struct config_parse *p, int id, const char *file)
{
	if ((size_t)id > p->n_node_files) {
		size_t n = (size_t)id * 2;
		const char **f = realloc(p->node_files, n * sizeof(*f));

		if (!f)
			return -ENOMEM;
		memset(f + p->n_node_files, 0, (n - p->n_node_files) * sizeof(*f));
		p->node_files = f;
		p->n_node_files = n;
	}
	p->node_files[id - 1] = file;
	return 0;
}

/* Copy node SRC_ID of SRC (from FILE) into the merged document; its id there, or -errno. */
static int copy_node(struct config_parse *p, yaml_document_t *src, int src_id, const char *file,
		     int depth)
{
	yaml_node_t *n = yaml_document_get_node(src, src_id);
	int id = 0;

	if (depth > CONFIG_MAX_DEPTH)
		return fail(p, file, n,
			    "nested deeper than 32 levels (an alias that contains itself?)");
	if (p->doc.nodes.top - p->doc.nodes.start > CONFIG_MAX_NODES)
		return fail(p, file, n, "more than 100000 values (aliases repeated too often?)");
	switch (n->type) {
	case YAML_SCALAR_NODE:
		id = yaml_document_add_scalar(&p->doc, n->tag, n->data.scalar.value,
					      (int)n->data.scalar.length, n->data.scalar.style);
		break;
	case YAML_SEQUENCE_NODE:
		id = yaml_document_add_sequence(&p->doc, n->tag, n->data.sequence.style);
		for (yaml_node_item_t *it = n->data.sequence.items.start;
		     id && it < n->data.sequence.items.top; it++) {
			int c = copy_node(p, src, *it, file, depth + 1);

			if (c < 0)
				return c;
			if (!yaml_document_append_sequence_item(&p->doc, id, c))
				return -ENOMEM;
		}
		break;
	case YAML_MAPPING_NODE:
		id = yaml_document_add_mapping(&p->doc, n->tag, n->data.mapping.style);
		for (yaml_node_pair_t *a = n->data.mapping.pairs.start;
		     id && a < n->data.mapping.pairs.top; a++) {
			int k = copy_node(p, src, a->key, file, depth + 1), v;

			if (k < 0)
				return k;
			v = copy_node(p, src, a->value, file, depth + 1);
			if (v < 0)
				return v;
			if (!yaml_document_append_mapping_pair(&p->doc, id, k, v))
				return -ENOMEM;
		}
		break;
	default:
		return -EINVAL;
	}
	if (!id)
		return -ENOMEM;
	/* libyaml's constructors leave the marks at zero: keep the source's line and column. */
	yaml_document_get_node(&p->doc, id)->start_mark = n->start_mark;
	yaml_document_get_node(&p->doc, id)->end_mark = n->end_mark;
	return record(p, id, file) < 0 ? -ENOMEM : id;
}

static yaml_node_pair_t *find_pair(struct config_parse *p, int map_id, const char *key)
{
	yaml_node_t *map = yaml_document_get_node(&p->doc, map_id);

	for (yaml_node_pair_t *a = map->data.mapping.pairs.start; a < map->data.mapping.pairs.top;
	     a++) {
		yaml_node_t *k = yaml_document_get_node(&p->doc, a->key);

		if (k->type == YAML_SCALAR_NODE && strcmp(config_scalar(k), key) == 0)
			return a;
	}
	return NULL;
}

/* Merge mapping SRC_ID of SRC (from FILE) into mapping DST_ID of the merged document. */
static int merge_mapping(struct config_parse *p, int dst_id, yaml_document_t *src, int src_id,
			 const char *file)
{
	yaml_node_t *map = yaml_document_get_node(src, src_id);

	for (yaml_node_pair_t *a = map->data.mapping.pairs.start; a < map->data.mapping.pairs.top;
	     a++) {
		yaml_node_t *k = yaml_document_get_node(src, a->key);
		yaml_node_t *v = yaml_document_get_node(src, a->value);
		yaml_node_pair_t *old;
		char what[160];
		int r;

		if (k->type != YAML_SCALAR_NODE)
			return fail(p, file, k, "keys must be plain names");
		for (yaml_node_pair_t *b = map->data.mapping.pairs.start; b < a; b++) {
			yaml_node_t *k2 = yaml_document_get_node(src, b->key);

			if (k2->type == YAML_SCALAR_NODE &&
			    strcmp(config_scalar(k2), config_scalar(k)) == 0) {
				snprintf(what, sizeof(what),
					 "duplicate key \"%.64s\" (first at line %zu)",
					 config_scalar(k), k2->start_mark.line + 1);
				return fail(p, file, k, what);
			}
		}
		old = find_pair(p, dst_id, config_scalar(k));
		if (old && v->type == YAML_MAPPING_NODE &&
		    yaml_document_get_node(&p->doc, old->value)->type == YAML_MAPPING_NODE) {
			r = merge_mapping(p, old->value, src, a->value, file);
			if (r < 0)
				return r;
			continue;
		}
		r = copy_node(p, src, a->value, file, 1);
		if (r < 0)
			return r;
		/* Adding nodes may have moved the pairs: look the old one up again. */
		old = find_pair(p, dst_id, config_scalar(k));
		if (old) {
			old->value = r; /* a later scalar or list replaces */
			continue;
		}
		int key = copy_node(p, src, a->key, file, 1);

		if (key < 0)
			return key;
		if (!yaml_document_append_mapping_pair(&p->doc, dst_id, key, r))
			return -ENOMEM;
	}
	return 0;
}

static int by_name(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;

	return strcmp(strrchr(x, '/') + 1, strrchr(y, '/') + 1);
}

static bool has_name(char **files, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(strrchr(files[i], '/') + 1, name) == 0)
			return true;
	return false;
}

/* Add DIR's *.yaml whose names no earlier (higher precedence) directory had. */
static int scan_dir(const char *dir, char **files, size_t *n)
{
	size_t before = *n;
	struct dirent *e;
	DIR *d = opendir(dir);

	if (!d)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);

		if (e->d_name[0] == '.' || len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0)
			continue;
		if (has_name(files, before, e->d_name))
			continue;
		if (*n == CONFIG_MAX_DROPINS) {
			closedir(d);
			return -E2BIG;
		}
		if (asprintf(&files[*n], "%s/%s", dir, e->d_name) < 0) {
			closedir(d);
			return -ENOMEM;
		}
		(*n)++;
	}
	closedir(d);
	return 0;
}

/*
 * A drop-in that is empty or /dev/null (a symlink to it) hides its name and adds nothing. Any
 * other device, a FIFO or a folder is not masked: reading it says what it is.
 */
static bool masked(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && ((S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) ||
					(S_ISREG(st.st_mode) && st.st_size == 0));
}

int config_dropins(const char *main_path, char ***out, size_t *n_out)
{
	char **files = calloc(CONFIG_MAX_DROPINS, sizeof(*files));
	char *copy = strdup(main_path), dir[PATH_MAX];
	size_t n = 0;
	int r;

	*out = NULL;
	*n_out = 0;
	if (!files || !copy) {
		free(files);
		free(copy);
		return -ENOMEM;
	}
	snprintf(dir, sizeof(dir), "%s/conf.d", dirname(copy));
	free(copy);
	r = scan_dir(dir, files, &n);
	if (r == 0 && strcmp(main_path, BITMIX_SYSCONFDIR "/bitmixd.yaml") == 0) {
		r = scan_dir("/run/bitmix/conf.d", files, &n);
		if (r == 0)
			r = scan_dir("/usr/lib/bitmix/conf.d", files, &n);
	}
	if (r < 0) {
		config_dropins_free(files, n);
		return r;
	}
	qsort(files, n, sizeof(*files), by_name);
	*out = files;
	*n_out = n;
	return 0;
}

void config_dropins_free(char **files, size_t n)
{
	for (size_t i = 0; files && i < n; i++)
		free(files[i]);
	free(files);
}

/* Merge one more file into p->doc (empty so far: the file becomes it). */
static int merge_file(struct config_parse *p, const char *path, bool first)
{
	yaml_document_t src;
	yaml_node_t *root, *dst;
	int r;

	r = read_file_document(path, &src, p->err);
	if (r < 0)
		return r;
	root = yaml_document_get_root_node(&src);
	if (first) {
		if (!yaml_document_initialize(&p->doc, NULL, NULL, NULL, 1, 1)) {
			yaml_document_delete(&src);
			return -ENOMEM;
		}
		r = root ? copy_node(p, &src, 1, path, 0) : 0; /* the root is node 1 */
	} else if (root) {
		dst = yaml_document_get_root_node(&p->doc);
		if (root->type != YAML_MAPPING_NODE)
			r = fail(p, path, root, "top level: a drop-in must be a mapping");
		else if (!dst || dst->type != YAML_MAPPING_NODE)
			r = 0; /* the main file's own error is reported by the parser */
		else
			r = merge_mapping(p, 1, &src, 1, path);
	}
	yaml_document_delete(&src);
	return r < 0 ? r : 0;
}

int config_merge_files(struct config_parse *p, const char *main_path)
{
	char **files;
	size_t n;
	int r;

	r = merge_file(p, main_path, true);
	if (r < 0)
		return r;
	r = config_dropins(main_path, &files, &n);
	if (r < 0) {
		if (p->err)
			snprintf(p->err->msg, sizeof(p->err->msg), "%s: reading its conf.d: %s",
				 main_path, strerror(-r));
		return r;
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		if (masked(files[i]))
			continue;
		r = merge_file(p, files[i], false);
	}
	/* The names outlive the list: node_files points at them until the parse ends. */
	p->dropins = files;
	p->n_dropins = n;
	return r;
}
