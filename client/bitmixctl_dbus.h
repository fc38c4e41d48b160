/* SPDX-License-Identifier: MIT */
/*
 * bitmixctl_dbus.h — what bitmixctl's D-Bus files share: the connection to org.bitmix.Daemon1,
 * property readers, and the small JSON writer behind --json.
 */
#ifndef BITMIXCTL_DBUS_H
#define BITMIXCTL_DBUS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <systemd/sd-bus.h>

#include "bitmixctl.h"

#define CTL_NAME "org.bitmix.Daemon1"
#define CTL_PATH "/org/bitmix/Daemon1"
#define CTL_IFACE "org.bitmix.Daemon1"
#define CTL_MODEL_IFACE "org.bitmix.Model1"
#define CTL_MAX_LAYERS 1024
#define CTL_MAX_MODELS 64

/* A model's figures from its Stats property (missing fields stay 0). */
struct ctl_stats {
	double average_bits, cost_ns, samples_per_second;
	uint64_t samples_completed, transitions, decisions, last_decision_ns;
	uint32_t state;
	uint8_t min_bits, max_bits, floor_bits; /* limits and the holds' floor */
	uint64_t max_latency_ns;		/* the holds' latency ceiling, 0: none */
	uint32_t holds;
	char precision[16]; /* the model's default precision: fixed, cascade, policy */
	uint64_t adaptive_requests, adaptive_samples, adaptive_escalated;
	double adaptive_bitops, adaptive_ceiling_bitops, cost_scale; /* BitOps per request */
	uint64_t time_in_state_ns[13];
	uint32_t n_trans;
	struct {
		uint32_t from, to, count;
	} trans[169];
};

/* Connect and find the daemon: 0, -ENOENT when it is not on that bus, or another -errno. */
int ctl_bus_open(const char *address, sd_bus **out);
/* bitmixctl_load.c: load NAME FILE (the descriptor, LoadModelFd), unload NAME */
int ctl_load_dbus(sd_bus *bus, int argc, char **argv);
/* bitmixctl_dbus_limits.c */
int ctl_holds_dbus(sd_bus *bus, int argc, char **argv, bool json);
int ctl_limits_dbus(sd_bus *bus, int argc, char **argv, bool json);
int ctl_hold_dbus(sd_bus *bus, int argc, char **argv);
int ctl_unload_dbus(sd_bus *bus, int argc, char **argv);
/* Where ADDRESS leads, for messages: the address, or "the system bus". */
const char *ctl_bus_name(const char *address);

int ctl_get_string(sd_bus *bus, const char *path, const char *iface, const char *prop, char **out);
/* The WorkCap property into G's work-cap fields. */
int ctl_get_work_cap(sd_bus *bus, struct bitmix_governor_info *g);
int ctl_get_double(sd_bus *bus, const char *path, const char *iface, const char *prop, double *out);
/* The model object's path for NAME (free it), or NULL. */
char *ctl_model_path(const char *name);
/* Models: names and paths (each strdup'ed; free with ctl_free_models). Returns the count or -errno. */
int ctl_list_models(sd_bus *bus, char **names, char **paths, int max);
void ctl_free_models(char **names, char **paths, int n);
/* CurrentBits (and Generation); returns the layer count or -errno. */
int ctl_get_bits(sd_bus *bus, const char *path, struct bitmix_layer_bits *bits,
		 uint64_t *generation);
int ctl_get_masks(sd_bus *bus, const char *path, uint16_t *masks);
int ctl_get_stats(sd_bus *bus, const char *path, struct ctl_stats *st);

/* bitmixctl_dbus_cost.c: a model's CostTable (the first MAX_LAYERS layers into LAYERS). */
int ctl_get_cost(sd_bus *bus, const char *path, struct bitmix_cost_info *info,
		 struct bitmix_cost_layer *layers, unsigned max_layers);
int ctl_cost_dbus(sd_bus *bus, int argc, char **argv, bool json);

/* bitmixctl_watch.c */
int ctl_watch(sd_bus *bus, int argc, char **argv);

#endif
