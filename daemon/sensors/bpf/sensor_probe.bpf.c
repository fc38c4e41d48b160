// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * sensor_probe.bpf.c — bitmixd's eBPF sensor probe (CO-RE): per-CPU busy time from scheduler
 * switches, idle residency from cpuidle entry/exit, the CPU frequency from cpufreq changes (all
 * BTF tracepoints, counters in the `cpus` array the daemon maps and reads every period), and thermal zone
 * temperature updates as discrete events in the `events` ring buffer, so a trip is seen at once.
 *
 * The thermal hook is a raw tracepoint that reads the zone with bpf_probe_read() (the helper
 * that accepts kernel and user addresses), so the test can execute this very bytecode with
 * BPF_PROG_TEST_RUN on a zone image it crafted in user memory from the kernel's BTF.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "sensor_probe.h"

#define PWR_EVENT_EXIT ((unsigned int)-1)

_Static_assert((PROBE_MAX_CPUS & (PROBE_MAX_CPUS - 1)) == 0, "PROBE_MAX_CPUS: a power of two");

struct probe_cpu cpus[PROBE_MAX_CPUS];

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

static __always_inline struct probe_cpu *cpu_slot(__u32 cpu)
{
	/* The mask keeps the index provably in bounds for the verifier, whatever clang reorders. */
	return cpu < PROBE_MAX_CPUS ? &cpus[cpu & (PROBE_MAX_CPUS - 1)] : (void *)0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(on_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct probe_cpu *c = cpu_slot(bpf_get_smp_processor_id());
	__u64 now = bpf_ktime_get_ns();

	if (!c)
		return 0;
	/* The first switch seen only starts the clock. */
	if (c->running && c->last_switch_ns)
		c->busy_ns += now - c->last_switch_ns;
	c->last_switch_ns = now;
	c->running = next->pid != 0; /* pid 0: this CPU's idle task */
	c->switches++;
	return 0;
}

SEC("tp_btf/cpu_idle")
int BPF_PROG(on_cpu_idle, unsigned int state, unsigned int cpu_id)
{
	struct probe_cpu *c = cpu_slot(cpu_id);
	__u64 now = bpf_ktime_get_ns();

	if (!c)
		return 0;
	if (state == PWR_EVENT_EXIT) {
		if (c->idle_since_ns)
			c->idle_ns += now - c->idle_since_ns;
		c->idle_since_ns = 0;
	} else {
		c->idle_since_ns = now;
		c->idle_entries++;
	}
	return 0;
}

SEC("tp_btf/cpu_frequency")
int BPF_PROG(on_cpu_frequency, unsigned int frequency, unsigned int cpu_id)
{
	struct probe_cpu *c = cpu_slot(cpu_id);

	if (!c)
		return 0;
	c->freq_khz = frequency;
	c->freq_changes++;
	return 0;
}

SEC("raw_tp/thermal_temperature")
int on_thermal_temperature(struct bpf_raw_tracepoint_args *ctx)
{
	struct thermal_zone_device *tz = (void *)ctx->args[0];
	struct probe_event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->time_ns = bpf_ktime_get_ns();
	e->kind = PROBE_EVENT_THERMAL;
	e->cpu = bpf_get_smp_processor_id();
	/* CO-RE field offsets; bpf_probe_read also takes the test's user-space image. */
	bpf_probe_read(&e->zone_id, sizeof(e->zone_id), __builtin_preserve_access_index(&tz->id));
	bpf_probe_read(&e->temp_mc, sizeof(e->temp_mc),
		       __builtin_preserve_access_index(&tz->temperature));
	bpf_probe_read(&e->prev_temp_mc, sizeof(e->prev_temp_mc),
		       __builtin_preserve_access_index(&tz->last_temperature));
	bpf_probe_read_str(e->zone_type, sizeof(e->zone_type),
			   __builtin_preserve_access_index(&tz->type));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
