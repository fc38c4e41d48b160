/* SPDX-License-Identifier: MIT */
/*
 * test_tunables.c — every tunable a governor declares (governor.h), driven by the tables
 * themselves: each parses at its minimum, maximum and default, values outside its range are
 * refused with file:line:column, key and range, each value survives the D-Bus path (the running
 * block written as YAML with gov_tunable_format and parsed again) bit for bit, and the docs
 * (docs/governor.md's table, config/README.md) name every one. A new governor's tunables are
 * tested by adding them; nothing here lists them.
 *
 * Arguments: config/README.md docs/governor.md.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "governor.h"

static const char *readme_path, *governor_md_path;

static const struct governor_ops *const *governors_end(void)
{
	size_t n;
	const struct governor_ops *const *list = gov_list(&n);

	return list + n;
}

/* Every tunable T of every registered governor GOV. */
#define FOR_EACH_TUNABLE(gov, t)                                                     \
	for (const struct governor_ops *const *gp_ = gov_list(&(size_t){ 0 }), *gov; \
	     gp_ < governors_end() && (gov = *gp_); gp_++)                           \
		for (const struct gov_tunable *t = gov->tunables;                    \
		     t && t < gov->tunables + gov->n_tunables; t++)

/* Parse governor GOV's block with KEY: VALUE; 0 or -EINVAL with ERR filled. */
static int parse_one(const struct governor_ops *gov, const char *key, const char *value,
		     struct bmx_config **out, struct bmx_config_error *err)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 "models: {m: /x.bmx}\ngovernor:\n  name: %s\n  %s:\n    %s: %s\n", gov->name,
		 gov->name, key, value);
	return bmx_config_load_string("t.yaml", text, out, err);
}

/* Whether the defaults with T at VALUE pass the governor's check. */
static bool passes_check(const struct governor_ops *gov, const struct gov_tunable *t, double value)
{
	struct bmx_governor_config g;
	char why[256];

	bmx_governor_config_defaults(&g);
	assert_int_equal(gov_tunable_set(t, &g, value), 0);
	return !gov->check || gov->check(&g, why, sizeof(why)) == 0;
}

static void tables_are_sane(void **state)
{
	struct bmx_governor_config g;
	size_t n;
	const struct governor_ops *const *govs = gov_list(&n);

	(void)state;
	assert_true(n >= 7);
	for (size_t i = 0; i < n; i++) {
		assert_ptr_equal(gov_find(govs[i]->name), govs[i]);
		assert_non_null(strstr(gov_available(), govs[i]->name));
	}
	bmx_governor_config_defaults(&g);
	FOR_EACH_TUNABLE(gov, t)
	{
		assert_true(t->name && t->name[0] && t->doc && t->doc[0] && t->unit);
		assert_ptr_equal(gov_tunable_find(gov->name, t->name), t);
		assert_true(t->min <= t->max);
		if (t->type == GOV_TUNABLE_TRIPS)
			continue;
		assert_true(t->min <= t->def && t->def <= t->max);
		assert_true(gov_tunable_get(t, &g) == t->def);
	}
	/* The defaults pass every check. */
	for (size_t i = 0; i < n; i++) {
		char why[256];

		if (govs[i]->check)
			assert_int_equal(govs[i]->check(&g, why, sizeof(why)), 0);
	}
	assert_null(gov_tunable_find("performance", "up_threshold"));
	assert_null(gov_tunable_find("turbo", "up_threshold"));
}

static void parses_at_min_max_default(void **state)
{
	(void)state;
	FOR_EACH_TUNABLE(gov, t)
	{
		const double values[] = { t->min, t->max, t->def };

		if (t->type == GOV_TUNABLE_TRIPS)
			continue;
		for (size_t k = 0; k < 3; k++) {
			struct bmx_config_error err = { "" };
			struct bmx_config *c = NULL;
			struct bmx_governor_config g;
			char text[64];
			bool ok = passes_check(gov, t, values[k]);

			bmx_governor_config_defaults(&g);
			gov_tunable_set(t, &g, values[k]);
			gov_tunable_format(t, &g, text, sizeof(text));
			if (parse_one(gov, t->name, text, &c, &err) != (ok ? 0 : -EINVAL))
				fail_msg("%s.%s: %s: %s", gov->name, t->name, text, err.msg);
			if (!ok) {
				/* The check names the governor's block. */
				assert_non_null(strstr(err.msg, gov->name));
				continue;
			}
			assert_string_equal(c->governor.name, gov->name);
			if (gov_tunable_get(t, &c->governor) != values[k])
				fail_msg("%s.%s: %s read back as %g", gov->name, t->name, text,
					 gov_tunable_get(t, &c->governor));
			bmx_config_free(c);
		}
	}
}

static void expect_refused(const struct governor_ops *gov, const struct gov_tunable *t,
			   const char *value, const char *what)
{
	struct bmx_config_error err = { "" };
	struct bmx_config *c = NULL;
	char key[96];

	if (t->type == GOV_TUNABLE_TRIPS) /* the message is about the trip point inside */
		snprintf(key, sizeof(key), "t.yaml:5:");
	else
		snprintf(key, sizeof(key), "t.yaml:5:%zu: governor.%s.%s: ", 7 + strlen(t->name),
			 gov->name, t->name);
	assert_int_equal(parse_one(gov, t->name, value, &c, &err), -EINVAL);
	assert_null(c);
	if (!strstr(err.msg, key) || !strstr(err.msg, what))
		fail_msg("%s.%s = %s: \"%s\" lacks \"%s\" or \"%s\"", gov->name, t->name, value,
			 err.msg, key, what);
}

static void refuses_out_of_range(void **state)
{
	(void)state;
	FOR_EACH_TUNABLE(gov, t)
	{
		char value[64], range[64];

		switch (t->type) {
		case GOV_TUNABLE_UNSIGNED:
		case GOV_TUNABLE_DOUBLE:
			snprintf(range, sizeof(range), "is not a number in %g..%g", t->min, t->max);
			snprintf(value, sizeof(value), "%.17g", t->min - 1);
			expect_refused(gov, t, value, range);
			snprintf(value, sizeof(value), "%.17g", t->max + 1);
			expect_refused(gov, t, value, range);
			expect_refused(gov, t, "many", range);
			if (t->type == GOV_TUNABLE_UNSIGNED) {
				snprintf(value, sizeof(value), "%g", t->min + 0.5);
				snprintf(range, sizeof(range), "is not a whole number in %g..%g",
					 t->min, t->max);
				expect_refused(gov, t, value, range);
			}
			break;
		case GOV_TUNABLE_BOOL:
			expect_refused(gov, t, "maybe", "is not true or false");
			break;
		case GOV_TUNABLE_TRIPS:
			snprintf(value, sizeof(value), "[{temp: %.17g}]", t->max + 1);
			expect_refused(gov, t, value, "is not a number in");
			expect_refused(gov, t, "[]", "name at least one trip point");
			break;
		}
	}
}

/* A value strictly inside T's range that %g would not print exactly. */
static double odd_value(const struct gov_tunable *t)
{
	double v = t->min + (t->max - t->min) / 3;

	return t->type == GOV_TUNABLE_UNSIGNED ? floor(v)
	       : t->type == GOV_TUNABLE_BOOL   ? 1 - t->def
					       : v;
}

/* The D-Bus path (dbus_tunables.c): a governor's block written with gov_tunable_format, parsed. */
static void round_trips_through_yaml(void **state)
{
	size_t n;
	const struct governor_ops *const *govs = gov_list(&n);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		const struct governor_ops *gov = govs[i];
		struct bmx_governor_config g;
		struct bmx_config_error err = { "" };
		struct bmx_config *c = NULL;
		char *text = NULL, value[512], why[256];
		size_t size = 0;
		FILE *f;

		if (!gov->n_tunables)
			continue;
		bmx_governor_config_defaults(&g);
		g.step_wise.trips[0] = (struct bmx_config_trip){ -12.345678901234567, 0.1 };
		g.step_wise.trips[1] = (struct bmx_config_trip){ 33.300000000000001, 1.7 };
		g.step_wise.trips[2] = (struct bmx_config_trip){ 101.0 / 3, 0 };
		g.step_wise.n_trips = 3;
		for (size_t k = 0; k < gov->n_tunables; k++) {
			struct bmx_governor_config next = g;

			if (gov->tunables[k].type == GOV_TUNABLE_TRIPS)
				continue;
			assert_int_equal(gov_tunable_set(&gov->tunables[k], &next,
							 odd_value(&gov->tunables[k])),
					 0);
			if (!gov->check || gov->check(&next, why, sizeof(why)) == 0)
				g = next;
		}
		f = open_memstream(&text, &size);
		assert_non_null(f);
		fprintf(f, "models: {m: /dev/null}\ngovernor:\n  name: %s\n  %s:\n", gov->name,
			gov->name);
		for (size_t k = 0; k < gov->n_tunables; k++) {
			int len = gov_tunable_format(&gov->tunables[k], &g, value, sizeof(value));

			assert_true(len > 0 && (size_t)len < sizeof(value));
			fprintf(f, "    %s: %s\n", gov->tunables[k].name, value);
		}
		assert_int_equal(fclose(f), 0);
		if (bmx_config_load_string("tunables", text, &c, &err) < 0)
			fail_msg("%s: %s\n%s", gov->name, err.msg, text);
		for (size_t k = 0; k < gov->n_tunables; k++) {
			const struct gov_tunable *t = &gov->tunables[k];
			struct bmx_governor_config back = c->governor;

			if (t->type != GOV_TUNABLE_TRIPS) {
				assert_true(gov_tunable_get(t, &back) == gov_tunable_get(t, &g));
				continue;
			}
			assert_int_equal(back.step_wise.n_trips, 3);
			assert_memory_equal(back.step_wise.trips, g.step_wise.trips,
					    3 * sizeof(g.step_wise.trips[0]));
			/* gov_tunable_copy takes exactly this tunable over. */
			bmx_governor_config_defaults(&back);
			gov_tunable_copy(t, &back, &c->governor);
			assert_int_equal(back.step_wise.n_trips, 3);
		}
		bmx_config_free(c);
		free(text);
	}
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&text, &size);
	int ch;

	if (!f)
		fail_msg("cannot open %s", path);
	assert_non_null(out);
	while ((ch = fgetc(f)) != EOF)
		fputc(ch, out);
	fclose(f);
	fclose(out);
	return text;
}

/* docs/governor.md's row for T, exactly: the table is the docs. */
static void doc_row(const struct governor_ops *gov, const struct gov_tunable *t, char *buf,
		    size_t size)
{
	if (t->type == GOV_TUNABLE_TRIPS)
		snprintf(
			buf, size,
			"| `%s` | `%s` | list of `{temp, hysteresis}`, temp %g..%g | %zu trips | %s | %s |",
			gov->name, t->name, t->min, t->max, t->n_def_trips, t->unit, t->doc);
	else if (t->type == GOV_TUNABLE_BOOL)
		snprintf(buf, size, "| `%s` | `%s` | `true`, `false` | `%s` | %s | %s |", gov->name,
			 t->name, t->def ? "true" : "false", t->unit, t->doc);
	else
		snprintf(buf, size, "| `%s` | `%s` | %g..%g | `%g` | %s | %s |", gov->name, t->name,
			 t->min, t->max, t->def, t->unit, t->doc);
}

static void docs_name_every_tunable(void **state)
{
	char *readme = slurp(readme_path), *governor_md = slurp(governor_md_path);
	int missing = 0;

	(void)state;
	FOR_EACH_TUNABLE(gov, t)
	{
		char row[512], key[128], plain[96];

		doc_row(gov, t, row, sizeof(row));
		if (!strstr(governor_md, row)) {
			fprintf(stderr, "docs/governor.md lacks the row:\n%s\n", row);
			missing++;
		}
		/* config/README.md: `governor.G.name`, or `name` on the row of `governor.G.x`. */
		snprintf(key, sizeof(key), "`governor.%s.%s`", gov->name, t->name);
		snprintf(plain, sizeof(plain), "`%s`", t->name);
		if (strstr(readme, key))
			continue;
		bool found = false;
		snprintf(key, sizeof(key), "| `governor.%s.", gov->name);
		for (const char *line = readme; line && *line && !found;) {
			const char *end = strchr(line, '\n');
			size_t len = end ? (size_t)(end - line) : strlen(line);
			const char *k = strstr(line, key), *p = strstr(line, plain);

			found = k && p && k < line + len && p < line + len;
			line = end ? end + 1 : NULL;
		}
		if (!found) {
			fprintf(stderr, "config/README.md lacks governor.%s.%s\n", gov->name,
				t->name);
			missing++;
		}
	}
	free(readme);
	free(governor_md);
	assert_int_equal(missing, 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tables_are_sane),
		cmocka_unit_test(parses_at_min_max_default),
		cmocka_unit_test(refuses_out_of_range),
		cmocka_unit_test(round_trips_through_yaml),
		cmocka_unit_test(docs_name_every_tunable),
	};

	if (argc != 3) {
		fprintf(stderr, "usage: %s config/README.md docs/governor.md\n", argv[0]);
		return 2;
	}
	readme_path = argv[1];
	governor_md_path = argv[2];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
