/* SPDX-License-Identifier: MIT */
/*
 * cost_cache.c — per-layer cost tables on disk (cost_cache.h). The file is text, one line per
 * measured row, so that an administrator can read it:
 *
 *     bitmix-cost-table 1
 *     model CRC32HEX SIZE
 *     cpu MODEL NAME
 *     kernels PATH
 *     layers N batch LARGE
 *     row LAYER BITS MEASURED NS1 ERR1 NSL ERRL    (MEASURED: 1 batch 1, 2 the large batch)
 *     end
 *
 * Every field is checked against the model being served before a row is taken.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cost_cache.h"
#include "log.h"

#define MAGIC "bitmix-cost-table 1"

void cost_key_of(const struct bmx_model *model, const struct bmx_engine *engine,
		 struct cost_key *key)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[256];

	memset(key, 0, sizeof(*key));
	key->checksum = model->header->checksum;
	key->size = model->size;
	snprintf(key->kernels, sizeof(key->kernels), "%s",
		 bmx_kernels_name(bmx_engine_path(engine)));
	snprintf(key->cpu, sizeof(key->cpu), "unknown");
	while (f && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) != 0 || !colon)
			continue;
		colon += 1 + (colon[1] == ' ');
		colon[strcspn(colon, "\n")] = '\0';
		snprintf(key->cpu, sizeof(key->cpu), "%s", colon);
		break;
	}
	if (f)
		fclose(f);
}

int cost_cache_path(const char *name, char *path, size_t size)
{
	const char *dir = getenv("CACHE_DIRECTORY");
	size_t len;

	if (!dir || !*dir)
		dir = getenv("STATE_DIRECTORY");
	if (!dir || !*dir)
		return -ENOENT;
	len = strcspn(dir, ":"); /* systemd lists several directories with colons: the first */
	if ((size_t)snprintf(path, size, "%.*s/cost-%s.tab", (int)len, dir, name) >= size)
		return -ENAMETOOLONG;
	return 0;
}

static int parse_row(struct cost_table *t, const char *line)
{
	unsigned l, b, measured;
	double ns[2], err[2];

	if (sscanf(line, "row %u %u %u %lf %lf %lf %lf", &l, &b, &measured, &ns[0], &err[0], &ns[1],
		   &err[1]) != 7 ||
	    l >= t->layer_count || b < 2 || b > 8 || measured > 3 ||
	    !(t->layers[l].allowed & (1u << b)))
		return -EBADMSG;
	for (unsigned bi = 0; bi < COST_BATCHES; bi++) {
		if (!(measured & (1u << bi)))
			continue;
		if (!(ns[bi] > 0 && ns[bi] < 1e12 && err[bi] >= 0 && err[bi] < 10))
			return -EBADMSG;
		t->layers[l].ns[bi][b] = ns[bi];
		t->layers[l].rel_error[bi][b] = err[bi];
		t->layers[l].measured[bi] |= (uint16_t)(1u << b);
	}
	return 0;
}

/* The header's lines, in order; -ESTALE when they name another key. */
static int read_header(FILE *f, const struct cost_key *key, const struct cost_table *t,
		       unsigned *lineno)
{
	char line[256], want[256];
	unsigned layers, batch;

	snprintf(want, sizeof(want), "%s\n", MAGIC);
	if (!fgets(line, sizeof(line), f) || strcmp(line, want) != 0)
		return -EBADMSG;
	(*lineno)++;
	snprintf(want, sizeof(want), "model %08" PRIx32 " %" PRIu64 "\n", key->checksum, key->size);
	if (!fgets(line, sizeof(line), f) || strncmp(line, "model ", 6) != 0)
		return -EBADMSG;
	(*lineno)++;
	if (strcmp(line, want) != 0)
		return -ESTALE;
	snprintf(want, sizeof(want), "cpu %s\n", key->cpu);
	if (!fgets(line, sizeof(line), f) || strncmp(line, "cpu ", 4) != 0)
		return -EBADMSG;
	(*lineno)++;
	if (strcmp(line, want) != 0)
		return -ESTALE;
	snprintf(want, sizeof(want), "kernels %s\n", key->kernels);
	if (!fgets(line, sizeof(line), f) || strncmp(line, "kernels ", 8) != 0)
		return -EBADMSG;
	(*lineno)++;
	if (strcmp(line, want) != 0)
		return -ESTALE;
	(*lineno)++;
	if (!fgets(line, sizeof(line), f) ||
	    sscanf(line, "layers %u batch %u", &layers, &batch) != 2 || layers != t->layer_count)
		return -EBADMSG;
	return batch == t->batch[1] ? 0 : -ESTALE;
}

int cost_cache_read(const char *path, const struct cost_key *key, struct cost_table *t)
{
	struct cost_table in = { 0 };
	unsigned lineno = 0;
	char line[256];
	int r, ended = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return errno == ENOENT ? -ENOENT : log_warning_errno(errno, "cost cache %s", path);
	r = cost_table_copy(&in, t);
	for (uint32_t l = 0; r == 0 && l < in.layer_count; l++)
		in.layers[l].measured[0] = in.layers[l].measured[1] = 0;
	if (r == 0)
		r = read_header(f, key, t, &lineno);
	while (r == 0 && !ended && fgets(line, sizeof(line), f)) {
		lineno++;
		if (strcmp(line, "end\n") == 0)
			ended = 1;
		else
			r = parse_row(&in, line);
	}
	if (r == 0 && !ended)
		r = -EBADMSG; /* cut short */
	fclose(f);
	if (r == -ESTALE)
		log_info("cost cache %s: written for another model, CPU, kernel path or batch "
			 "(line %u); measuring again",
			 path, lineno);
	else if (r == -EBADMSG)
		log_warning("cost cache %s: line %u is not what a cost table of this model has; "
			    "ignoring the file",
			    path, lineno + 1);
	if (r == 0)
		r = cost_table_copy(t, &in);
	cost_table_free(&in);
	return r;
}

int cost_cache_write(const char *path, const struct cost_key *key, const struct cost_table *t)
{
	char tmp[4200];
	FILE *f;
	int r = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f, "%s\nmodel %08" PRIx32 " %" PRIu64 "\ncpu %s\nkernels %s\nlayers %u batch %u\n",
		MAGIC, key->checksum, key->size, key->cpu, key->kernels, t->layer_count,
		t->batch[1]);
	for (uint32_t l = 0; l < t->layer_count; l++)
		for (unsigned b = 2; b <= 8; b++) {
			const struct cost_layer *c = &t->layers[l];
			unsigned m = (c->measured[0] >> b & 1) | (c->measured[1] >> b & 1) << 1;

			if (m)
				fprintf(f, "row %u %u %u %.6g %.6g %.6g %.6g\n", l, b, m,
					c->ns[0][b], c->rel_error[0][b], c->ns[1][b],
					c->rel_error[1][b]);
		}
	fputs("end\n", f);
	if (fflush(f) != 0 || ferror(f))
		r = errno ? -errno : -EIO;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}
