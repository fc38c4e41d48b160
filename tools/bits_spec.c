// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "bits_spec.h"

int bits_spec_parse(const char *prog, const struct bmx_model *m, const char *spec,
		    struct bmx_layer_bits *bits)
{
	unsigned long v[BMX_MAX_LAYERS];
	const char *p = spec;
	uint32_t n = 0;

	while (n < m->layer_count) {
		char *end;

		v[n++] = strtoul(p, &end, 10);
		if (end == p || (*end != ',' && *end != '\0'))
			goto bad;
		p = end + 1;
		if (*end == '\0')
			break;
	}
	if (n != 1 && n != m->layer_count)
		goto bad;
	for (uint32_t i = 0; i < m->layer_count; i++) {
		const struct bmx_layer_view *lv = &m->views[i];
		unsigned long b = v[n == 1 ? 0 : i];

		if (b < 2 || b > 8 || (lv->bit_index[b] < 0 && n != 1))
			goto bad;
		if (lv->bit_index[b] < 0)
			b = lv->bits[lv->nbits - 1];
		bits[i] = (struct bmx_layer_bits){ (uint8_t)b, (uint8_t)b };
	}
	return 0;
bad:
	fprintf(stderr,
		"%s: bits %s: expected one bit-width 2..8 or %u comma-separated "
		"bit-widths each supported by its layer\n",
		prog, spec, m->layer_count);
	return -EINVAL;
}
