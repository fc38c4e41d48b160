/* SPDX-License-Identifier: MIT */
/*
 * bitmixctl.h — the commands of bitmixctl that live outside bitmixctl.c.
 */
#ifndef BITMIXCTL_H
#define BITMIXCTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "bitmix.h"

/* bitmixctl_bits.c: the bits notation (see `bitmixctl --help`). */
void ctl_bits_range(uint16_t mask, char *buf, size_t size);
/* Apply SPEC to BITS (the current ones). Returns 0, or 1 after printing why not. */
int ctl_apply_spec(const uint16_t *masks, uint32_t n, const char *spec,
		   struct bitmix_layer_bits *bits);
/* The one printer of `bits MODEL`, whichever transport gave the bits, masks and layer names. */
void ctl_bits_print(const char *model, uint64_t generation, const struct bitmix_layer_bits *bits,
		    const uint16_t *masks, const char *const *names, uint32_t n, bool json);
/* `bits MODEL` over the socket: the open model M, its layers' names from COST. */
int ctl_bits_show(struct bitmix *bm, struct bitmix_model *m, const char *model, bool json);

/*
 * bitmixctl_dbus_verbs.c (bitmixctl_dbus_disabled.c without libsystemd): the admin verbs over
 * D-Bus. ADDRESS NULL means the system bus. Each returns the verb's exit status, or -ENOENT
 * (or another -errno) when no bitmixd is on that bus, so that the caller can use the socket.
 */
bool ctl_dbus_verb(const char *verb);
int ctl_dbus_run(const char *address, bool json, const char *verb, int argc, char **argv);
int ctl_reload_dbus(const char *address);

/* bitmixctl_json.c: --json. A string with its quotes and escapes; a number, or null. */
void ctl_json_string(FILE *f, const char *s);
void ctl_json_number(FILE *f, double v);
/*
 * The daemon's part of status's JSON object, the same over either plane: it opens the object and
 * ends before "models". BUS NULL prints null (not on a bus); a NaN temperature or power, null.
 */
struct ctl_json_status {
	const char *version, *bus, *governor, *fallback, *source, *doorbell, *kernels;
	double temp_c, power_w, uptime_s;
	unsigned clients, workers;
	unsigned long long completed, failed;
	const struct bitmix_governor_info *cap; /* its work-cap fields */
};
void ctl_json_status_head(const struct ctl_json_status *st);
/* One layer's members of bits' JSON, the same over either plane: "w_bits":W,"a_bits":A,
 * "allowed":[the bit-widths MASK allows]. */
void ctl_json_layer_bits(const struct bitmix_layer_bits *bits, uint16_t mask);
/* status, governor, bits and stats as JSON over the socket (bitmixd not on a bus). */
int ctl_socket_json(struct bitmix *bm, const char *verb, int argc, char **argv);

/* bitmixctl_governor.c */
int ctl_governor(struct bitmix *bm, int argc, char **argv);
int ctl_stats(struct bitmix *bm, int argc, char **argv, bool json);
/* The one printer of `stats`, whichever transport filled P (G: the work cap, or NULL). */
void ctl_stats_print(const char *model, const struct bitmix_policy_info *p,
		     const struct bitmix_governor_info *g, bool json);
int ctl_hold(struct bitmix *bm, int argc, char **argv);
/* hold's arguments: the kind (BITMIX_HOLD_*), the value in the daemon's unit, the seconds to hold
 * (0: until interrupted); -EINVAL if malformed. Then say so and wait (either transport). */
int ctl_hold_parse(int argc, char **argv, unsigned *kind, uint64_t *value, double *seconds);
void ctl_hold_wait(uint32_t id, char **argv, double seconds);
/* bitmixctl_cost.c: `cost MODEL` over the socket, and what both planes print. */
#define CTL_COST_MAX_LAYERS 1024
int ctl_cost(struct bitmix *bm, int argc, char **argv, bool json);
void ctl_cost_print(const char *model, const struct bitmix_cost_info *c,
		    const struct bitmix_cost_layer *layers, bool json);
/* The line of `status` that says how far a model's cost table is. */
void ctl_cost_status_line(const struct bitmix_cost_info *c);
/* bitmixctl_limits.c: holds and limits, one printer each for both transports. */
void ctl_hold_print(const char *model, const struct bitmix_hold_info *h, bool json, bool *first);
void ctl_limits_print(const char *model, const struct bitmix_limits *l, bool json);
/* MIN MAX [LAYER=BITS...] into L; -EINVAL if malformed. */
int ctl_limits_parse(int argc, char **argv, struct bitmix_limits *l);
int ctl_holds(struct bitmix *bm, int argc, char **argv, bool json);
int ctl_limits(struct bitmix *bm, int argc, char **argv, bool json);
/* bitmixctl_admin.c */
int ctl_reload(struct bitmix *bm, int argc, char **argv);
/* The governor's lines of `status`. */
int ctl_status_governor(struct bitmix *bm);
void ctl_print_work_cap(const struct bitmix_governor_info *g);

#endif
