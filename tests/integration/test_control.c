/* SPDX-License-Identifier: MIT */
/*
 * test_control.c — bitmixd's control plane against a live daemon: listing and opening models,
 * reading and setting bits, who may set them, bitmixctl's commands, reload with a bad and a good config, a corrupt
 * model refused at start, and a clean SIGTERM.
 * Usage: test_control BITMIXD MODEL.bmx BITMIXCTL
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bitmix.h"
#include "daemon_harness.h"

static void test_models_and_bits(void **state)
{
	struct daemon_harness *h = *state;
	struct bitmix_layer_bits bits[1024], now[1024];
	struct bitmix_model_info infos[4];
	const struct bitmix_model_info *info;
	struct bitmix_model *m;
	struct bitmix *bm;
	uint64_t g0, g1, g2;

	assert_int_equal(bitmix_connect(h->socket, &bm), 0);
	assert_int_equal(bitmix_list_models(bm, infos, 4), 1);
	assert_string_equal(infos[0].name, "fmnist");
	assert_int_equal(bitmix_open_model(bm, "nosuch", &m), -ENOENT);
	assert_non_null(strstr(bitmix_strerror(bm), "nosuch"));
	assert_int_equal(bitmix_open_model(bm, "fmnist", &m), 0);
	info = bitmix_model_get_info(m);
	assert_int_equal(info->input_h, 28);
	assert_int_equal(info->output_size, 10);
	assert_true(info->layer_count >= 6);

	assert_int_equal(bitmix_get_bits(m, bits, &g0), 0);
	for (uint32_t i = 0; i < info->layer_count; i++) {
		uint16_t mask = bitmix_model_layer_bits_mask(m, i);
		uint8_t low = (uint8_t)__builtin_ctz(mask);

		bits[i] = (struct bitmix_layer_bits){ low, low };
	}
	assert_int_equal(bitmix_set_bits(m, bits, &g1), 0);
	assert_true(g1 > g0);
	assert_int_equal(bitmix_get_bits(m, now, &g2), 0);
	assert_int_equal(g2, g1);
	assert_memory_equal(now, bits, info->layer_count * sizeof(bits[0]));

	/* Bits a layer does not allow are refused, naming the layer; nothing changes. */
	bits[0].w_bits = 9;
	assert_int_equal(bitmix_set_bits(m, bits, &g2), -EINVAL);
	assert_non_null(strstr(bitmix_strerror(bm), "layer 0"));
	assert_int_equal(bitmix_get_bits(m, now, &g2), 0);
	assert_int_equal(g2, g1);
	bitmix_close(bm);
}

/* The child's part of the permission test, as nobody: may read bits, may not set them. */
static int set_bits_as_nobody(void *arg)
{
	const struct daemon_harness *h = arg;
	struct bitmix_layer_bits bits[1024];
	struct bitmix_model *m;
	struct bitmix *bm;

	if (bitmix_connect(h->socket, &bm) < 0 || bitmix_open_model(bm, "fmnist", &m) < 0)
		return 11;
	if (bitmix_get_bits(m, bits, NULL) < 0)
		return 12;
	if (bitmix_set_bits(m, bits, NULL) != -EPERM)
		return 13;
	if (!strstr(bitmix_strerror(bm), "may not change bits"))
		return 14;
	return 0;
}

/* Only root and the configured users and groups may set bits. */
static void test_set_bits_needs_permission(void **state)
{
	harness_run_as_nobody(set_bits_as_nobody, *state);
}

static int count_models(struct daemon_harness *h)
{
	struct bitmix_model_info infos[4];
	struct bitmix *bm;
	int n;

	assert_int_equal(bitmix_connect(h->socket, &bm), 0);
	n = bitmix_list_models(bm, infos, 4);
	bitmix_close(bm);
	return n;
}

/* bitmixctl end to end: every command, and its errors. */
static void test_bitmixctl(void **state)
{
	struct daemon_harness *h = *state;
	char out[8192], args[512], images[160], labels[160];
	uint8_t idx[16 + 3 * 28 * 28] = { 0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 28, 0, 0, 0, 28 };
	uint8_t lab[8 + 3] = { 0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3 };
	FILE *f;

	assert_int_equal(harness_ctl(h, out, sizeof(out), "status"), 0);
	assert_non_null(strstr(out, "bitmixd 0.1.0"));
	assert_int_equal(harness_ctl(h, out, sizeof(out), "models"), 0);
	assert_non_null(strstr(out, "fmnist"));
	assert_non_null(strstr(out, "input 28x28x1  outputs 10  bits 2-8"));
	assert_int_equal(harness_ctl(h, out, sizeof(out), "bits fmnist 3"), 0);
	assert_non_null(strstr(out, "do not allow 3 and keep their bits"));
	assert_int_equal(harness_ctl(h, out, sizeof(out), "bits fmnist 2=w5a6"), 0);
	assert_int_equal(harness_ctl(h, out, sizeof(out), "bits fmnist"), 0);
	assert_non_null(strstr(out, "layer  1: w3 a3"));
	assert_non_null(strstr(out, "layer  2: w5 a6"));
	assert_non_null(strstr(out, "layer  0: w8 a8  (allowed 8)"));
	assert_int_equal(harness_ctl(h, out, sizeof(out), "bits fmnist 0=4"), 1);
	assert_non_null(strstr(out, "layer 0 allows bits 8, not 4"));
	assert_int_equal(harness_ctl(h, out, sizeof(out), "bits fmnist 8,4"), 1);
	assert_non_null(strstr(out, "2 entries given, the model has 8 layers"));
	assert_int_equal(harness_ctl(h, out, sizeof(out), "bits nosuch"), 1);
	assert_non_null(strstr(out, "no model called \"nosuch\""));

	for (size_t i = 16; i < sizeof(idx); i++)
		idx[i] = (uint8_t)(i * 7);
	snprintf(images, sizeof(images), "%s/images.idx", h->dir);
	snprintf(labels, sizeof(labels), "%s/labels.idx", h->dir);
	f = fopen(images, "wb");
	fwrite(idx, 1, sizeof(idx), f);
	fclose(f);
	f = fopen(labels, "wb");
	fwrite(lab, 1, sizeof(lab), f);
	fclose(f);
	snprintf(args, sizeof(args), "infer fmnist %s --labels %s --batch 2", images, labels);
	assert_int_equal(harness_ctl(h, out, sizeof(out), args), 0);
	assert_non_null(strstr(out, "images.idx[2]: class"));
	assert_non_null(strstr(out, "3 image(s) in"));
	assert_non_null(strstr(out, "accuracy: "));
	snprintf(args, sizeof(args), "infer fmnist %s", labels);
	assert_int_equal(harness_ctl(h, out, sizeof(out), args), 1);
	assert_non_null(strstr(out, "neither an IDX3 image file nor a binary PGM/PPM"));
}

/* A reload with a typo keeps everything; a good one applies. */
static void test_reload(void **state)
{
	struct daemon_harness *h = *state;
	char extra[512];
	int n;

	assert_int_equal(harness_write_config(h, harness_model, "worker: 3\n"), 0);
	kill(h->pid, SIGHUP);
	assert_true(harness_log_contains(h, "reload failed", 5000));
	assert_true(harness_log_contains(h, "unknown key \"worker\"", 100));
	assert_int_equal(count_models(h), 1);

	assert_int_equal(harness_write_config(h, "/nonexistent/model.bmx", NULL), 0);
	kill(h->pid, SIGHUP);
	assert_true(harness_log_contains(h, "keeping the running configuration and models", 5000));
	assert_int_equal(count_models(h), 1);

	char *abs = realpath(harness_model, NULL);

	snprintf(extra, sizeof(extra), "  second: %s\n", abs);
	free(abs);
	assert_int_equal(harness_write_config(h, harness_model, extra), 0);
	kill(h->pid, SIGHUP);
	for (int i = 0; i < 200 && (n = count_models(h)) != 2; i++)
		usleep(10000);
	assert_int_equal(n, 2);
}

/*
 * SIGTERM lets a request already admitted finish and answers it, then exits cleanly. The request
 * is known to be admitted, whatever the machine's speed, once a NOP submitted behind it in the
 * same ring has completed: bitmixd reads its ring in order.
 */
static void test_sigterm_is_clean(void **state)
{
	struct daemon_harness *h = *state;
	struct bitmix_completion c[2];
	struct bitmix_model *m;
	struct bitmix *bm;
	int32_t infer_status = 1;
	float *in, *out;
	int got = 0;

	assert_int_equal(bitmix_connect(h->socket, &bm), 0);
	assert_int_equal(bitmix_open_model(bm, "fmnist", &m), 0);
	in = bitmix_tensor_alloc(bm, 256 * 28 * 28 * 4);
	out = bitmix_tensor_alloc(bm, 256 * 10 * 4);
	assert_non_null(in);
	assert_non_null(out);
	memset(in, 0, 256 * 28 * 28 * 4);
	assert_int_equal(bitmix_prep_infer(m, in, out, 256, 1), 0);
	assert_int_equal(bitmix_prep_nop(bm, NULL, 0, 2), 0);
	assert_int_equal(bitmix_submit(bm), 2);
	while (got < 2) { /* until the NOP has completed (the INFER may have, too) */
		int n = bitmix_reap(bm, c, 2, -1), done_nop = 0;

		assert_true(n > 0);
		for (int i = 0; i < n; i++) {
			if (c[i].user_data == 1)
				infer_status = c[i].status;
			else
				done_nop = 1;
		}
		got += n;
		if (done_nop)
			break;
	}
	assert_int_equal(harness_stop(h), 0);
	if (infer_status == 1) { /* still running at SIGTERM: its answer comes before the exit */
		assert_int_equal(bitmix_reap(bm, c, 1, -1), 1);
		assert_int_equal(c[0].user_data, 1);
		infer_status = c[0].status;
	}
	assert_int_equal(infer_status, 0);
	bitmix_close(bm);
	assert_true(harness_log_contains(h, "stopped after", 100));
	assert_int_equal(access(h->socket, F_OK), -1);
}

/* A corrupt model stops the start with a message that names the problem. */
static void test_corrupt_model_refused(void **state)
{
	struct daemon_harness h;
	char bad[160], cmd[512];
	FILE *f;

	(void)state;
	snprintf(bad, sizeof(bad), "/tmp/bitmix-bad-%d.bmx", (int)getpid());
	snprintf(cmd, sizeof(cmd), "head -c 1000 '%s' > '%s'", harness_model, bad);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(harness_start(&h, harness_bitmixd, bad, NULL), -ECHILD);
	f = fopen(h.log, "r");
	assert_non_null(f);
	fclose(f);
	assert_true(harness_log_contains(&h, "is not a valid model", 100));
	harness_cleanup(&h);
	unlink(bad);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_models_and_bits),
		cmocka_unit_test(test_set_bits_needs_permission),
		cmocka_unit_test(test_bitmixctl),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_sigterm_is_clean),
	};
	const struct CMUnitTest alone[] = {
		cmocka_unit_test(test_corrupt_model_refused),
	};
	int failed;

	if (harness_args(argc, argv, true) < 0)
		return 2;
	failed = cmocka_run_group_tests_name("control", tests, harness_group_setup,
					     harness_group_teardown);
	return failed + cmocka_run_group_tests_name("start", alone, NULL, NULL);
}
