/* SPDX-License-Identifier: MIT */
/*
 * bitmixctl_dbus_cost.c — `bitmixctl cost MODEL` over D-Bus: the model object's CostTable
 * property read into the same structures the socket fills, printed by bitmixctl_cost.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bitmixctl_dbus.h"

/* One (sqqqqadad) entry into L. */
static int read_layer(sd_bus_message *m, struct bitmix_cost_layer *l)
{
	const char *name;
	const void *ns;
	size_t size;
	int r = sd_bus_message_enter_container(m, 'r', "sqqqqadad");

	if (r <= 0)
		return r < 0 ? r : -EBADMSG;
	memset(l, 0, sizeof(*l));
	r = sd_bus_message_read(m, "sqqqq", &name, &l->allowed, &l->measured[0], &l->measured[1],
				&l->pruned);
	if (r < 0)
		return r;
	snprintf(l->name, sizeof(l->name), "%s", name);
	for (int bi = 0; bi < 2; bi++) {
		r = sd_bus_message_read_array(m, 'd', &ns, &size);
		if (r < 0)
			return r;
		if (size != 7 * sizeof(double))
			return -EBADMSG;
		memcpy(&l->ns[bi][2], ns, size);
	}
	return sd_bus_message_exit_container(m);
}

static void count_rows(struct bitmix_cost_info *info, const struct bitmix_cost_layer *l)
{
	info->rows += (unsigned)__builtin_popcount(l->allowed & 0x1fc);
	info->measured[0] += (unsigned)__builtin_popcount(l->allowed & l->measured[0]);
	info->measured[1] += (unsigned)__builtin_popcount(l->allowed & l->measured[1]);
}

int ctl_get_cost(sd_bus *bus, const char *path, struct bitmix_cost_info *info,
		 struct bitmix_cost_layer *layers, unsigned max_layers)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *cpu, *kernels, *source;
	struct bitmix_cost_layer scratch;
	int complete = 0, r;

	memset(info, 0, sizeof(*info));
	r = sd_bus_get_property(bus, CTL_NAME, path, CTL_MODEL_IFACE, "CostTable", &error, &reply,
				"(sssuddba(sqqqqadad))");
	if (r >= 0)
		r = sd_bus_message_enter_container(reply, 'r', "sssuddba(sqqqqadad)");
	if (r >= 0)
		r = sd_bus_message_read(reply, "sssuddb", &cpu, &kernels, &source,
					&info->large_batch, &info->complete_s, &info->batch,
					&complete);
	if (r >= 0) {
		snprintf(info->cpu, sizeof(info->cpu), "%s", cpu);
		snprintf(info->kernels, sizeof(info->kernels), "%s", kernels);
		snprintf(info->source, sizeof(info->source), "%s", source);
		info->complete = complete;
		r = sd_bus_message_enter_container(reply, 'a', "(sqqqqadad)");
	}
	while (r >= 0) {
		struct bitmix_cost_layer *l =
			info->layer_count < max_layers ? &layers[info->layer_count] : &scratch;

		if (sd_bus_message_at_end(reply, false) > 0)
			break;
		r = read_layer(reply, l);
		if (r >= 0) {
			count_rows(info, l);
			info->layer_count++;
		}
	}
	if (r < 0)
		fprintf(stderr, "bitmixctl: reading CostTable: %s\n",
			error.message ? error.message : strerror(-r));
	sd_bus_message_unref(reply);
	sd_bus_error_free(&error);
	return r < 0 ? r : 0;
}

int ctl_cost_dbus(sd_bus *bus, int argc, char **argv, bool json)
{
	struct bitmix_cost_layer *layers;
	struct bitmix_cost_info info;
	char *path;
	int r;

	if (argc != 1) {
		fputs("usage: bitmixctl [--json] cost MODEL\n", stderr);
		return 2;
	}
	path = ctl_model_path(argv[0]);
	layers = calloc(CTL_COST_MAX_LAYERS, sizeof(*layers));
	if (!path || !layers) {
		free(path);
		free(layers);
		fputs("bitmixctl: out of memory\n", stderr);
		return 1;
	}
	r = ctl_get_cost(bus, path, &info, layers, CTL_COST_MAX_LAYERS);
	if (r >= 0)
		ctl_cost_print(argv[0], &info, layers, json);
	free(path);
	free(layers);
	return r < 0 ? 1 : 0;
}
