/* SPDX-License-Identifier: MIT */
/*
 * sensor_bpf_disabled.c — the probe's place in a build without BPF (meson -Dbpf=disabled, or
 * libbpf, clang, bpftool or the kernel's BTF missing at configure time): it never opens, and says
 * why, so `auto` falls back and an explicit `source: bpf` fails with that reason.
 */
#include <errno.h>
#include <stdio.h>

#include "sensor_source.h"

static int bpf_disabled_open(const struct bmx_sensors_config *cfg, void **state, unsigned *provides,
			     char *why, size_t why_size)
{
	(void)cfg;
	(void)state;
	(void)provides;
	snprintf(why, why_size,
		 "bitmixd was built without the eBPF probe (meson -Dbpf=disabled, "
		 "or libbpf, clang, bpftool or /sys/kernel/btf/vmlinux missing when built)");
	return -EOPNOTSUPP;
}

const struct sensor_source_ops sensor_bpf_ops = {
	.name = "bpf",
	.open = bpf_disabled_open,
};
