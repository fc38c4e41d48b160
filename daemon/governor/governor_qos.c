/* SPDX-License-Identifier: MIT */
/*
 * governor_qos.c — client QoS holds on a model's policy, aggregated as the kernel's PM QoS
 * aggregates its requests: the effective floor on bits is the highest floor held, the effective
 * latency ceiling the lowest ceiling held. A hold belongs to its owner (a client session) and
 * goes away when the owner releases it or disconnects. A floor wins over a latency ceiling it
 * contradicts: precision a client asked for is never silently taken away.
 */
#include <errno.h>
#include <string.h>

#include "governor_internal.h"

static void aggregate(struct gov_policy *p)
{
	p->qos_floor = 0;
	p->qos_max_latency_ns = 0;
	for (size_t i = 0; i < p->n_holds; i++) {
		const struct gov_hold *h = &p->holds[i];

		if (h->kind == GOV_HOLD_MIN_BITS && h->value > p->qos_floor)
			p->qos_floor = (uint8_t)h->value;
		if (h->kind == GOV_HOLD_MAX_LATENCY_NS &&
		    (!p->qos_max_latency_ns || h->value < p->qos_max_latency_ns))
			p->qos_max_latency_ns = h->value;
	}
}

int gov_policy_hold(struct gov_policy *p, enum gov_hold_kind kind, uint64_t value, uint64_t owner,
		    uint32_t *id)
{
	if (kind == GOV_HOLD_MIN_BITS && (value < 2 || value > 8))
		return -EINVAL;
	if (kind == GOV_HOLD_MAX_LATENCY_NS && (value == 0 || value > 3600ull * 1000000000ull))
		return -EINVAL;
	if (kind != GOV_HOLD_MIN_BITS && kind != GOV_HOLD_MAX_LATENCY_NS)
		return -EINVAL;
	if (p->n_holds == GOV_MAX_HOLDS)
		return -ENOSPC;
	p->holds[p->n_holds] = (struct gov_hold){
		.id = p->core->next_hold_id++, .kind = kind, .value = value, .owner = owner
	};
	if (p->core->next_hold_id == 0)
		p->core->next_hold_id = 1;
	*id = p->holds[p->n_holds++].id;
	aggregate(p);
	gov_policy_limits_changed(p);
	return 0;
}

/* Release hold ID (owned by OWNER; owner 0 releases any). */
int gov_policy_release(struct gov_policy *p, uint32_t id, uint64_t owner)
{
	for (size_t i = 0; i < p->n_holds; i++) {
		if (p->holds[i].id != id)
			continue;
		if (owner && p->holds[i].owner != owner)
			return -EPERM;
		p->holds[i] = p->holds[--p->n_holds];
		aggregate(p);
		gov_policy_limits_changed(p);
		return 0;
	}
	return -ENOENT;
}

void gov_core_release_owner(struct gov_core *c, uint64_t owner)
{
	for (size_t k = 0; k < c->n; k++) {
		struct gov_policy *p = c->policies[k];
		size_t before = p->n_holds;

		for (size_t i = 0; i < p->n_holds;) {
			if (p->holds[i].owner == owner)
				p->holds[i] = p->holds[--p->n_holds];
			else
				i++;
		}
		if (p->n_holds != before) {
			aggregate(p);
			gov_policy_limits_changed(p);
		}
	}
}

void gov_policy_qos(const struct gov_policy *p, uint8_t *floor_bits, uint64_t *max_latency_ns,
		    size_t *n_holds)
{
	*floor_bits = p->qos_floor;
	*max_latency_ns = p->qos_max_latency_ns;
	*n_holds = p->n_holds;
}

size_t gov_policy_holds_of(const struct gov_policy *p, uint64_t owner)
{
	size_t n = 0;

	for (size_t i = 0; i < p->n_holds; i++)
		n += p->holds[i].owner == owner;
	return n;
}

size_t gov_core_holds_of(const struct gov_core *c, uint64_t owner)
{
	size_t n = 0;

	for (size_t k = 0; k < c->n; k++)
		n += gov_policy_holds_of(c->policies[k], owner);
	return n;
}
