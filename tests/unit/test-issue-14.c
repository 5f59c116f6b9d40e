/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * test-issue-14.c: the token is learnt once (issue 14). A SoftHSM2 token, reached through
 * tests/p11-fault (which logs every C_FindObjectsInit, as "delay 0" rules do), holds
 * debris (a pair with neither label nor CKA_ID), a duplicate and an incomplete pair of
 * ours: the scan reports each and destroys none; a delete of a pair the map knows
 * searches nothing; a re-login is followed by one scan, not one search per key.
 * Exits 77 (skipped) when SoftHSM2, its tools or the fault module are missing.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kc-err.h"
#include "hsm.h"

#define T_PIN		"1234"
#define T_LABEL		"kc-test"
#define T_SOFTHSM	"/usr/lib/softhsm/libsofthsm2.so"

static char	 t_dir[256];		/* $TMPDIR/kc-issue14.XXXXXX */
static char	 t_log[300];
static char	 t_fault[300];

static int
t_run(const char *fmt, ...) __attribute__((__format__(__printf__, 1, 2)));

static int
t_run(const char *fmt, ...)
{
	va_list	 ap;
	char	*cmd;
	int	 st, r;

	va_start(ap, fmt);
	r = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	if (r == -1)
		return -1;
	st = system(cmd);
	free(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Output lines of a command. */
static int
t_lines(const char *cmd)
{
	FILE	*p;
	char	 line[512];
	int	 n = 0;

	assert_non_null(p = popen(cmd, "r"));
	while (fgets(line, sizeof(line), p) != NULL)
		n++;
	(void)pclose(p);
	return n;
}

/* C_FindObjectsInit calls logged so far. */
static int
t_searches(void)
{
	char	cmd[400];

	snprintf(cmd, sizeof(cmd), "grep '^C_FindObjectsInit ' %s 2>/dev/null", t_log);
	return t_lines(cmd);
}

/* Key objects in the token, counted by pkcs11-tool. */
static int
t_objects(void)
{
	char	cmd[400];

	snprintf(cmd, sizeof(cmd), "pkcs11-tool --module %s --token-label %s --login "
	    "--pin %s --list-objects 2>/dev/null | grep 'Key Object'", T_SOFTHSM, T_LABEL,
	    T_PIN);
	return t_lines(cmd);
}

static int
t_keypair(const char *extra)
{
	return t_run("pkcs11-tool --module %s --token-label %s --login --pin %s "
	    "--keypairgen --key-type EC:prime256v1 %s >/dev/null 2>&1", T_SOFTHSM, T_LABEL,
	    T_PIN, extra);
}

static int
t_setup(void **state)
{
	const char	*top = getenv("top_builddir");
	FILE		*f;
	const char	*tmp;
	char		 path[400];

	if (access(T_SOFTHSM, R_OK) != 0 || top == NULL)
		return -1;
	snprintf(t_fault, sizeof(t_fault), "%s/tests/p11-fault/p11-fault.so", top);
	tmp = getenv("TMPDIR");
	snprintf(t_dir, sizeof(t_dir), "%s/kc-issue14.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (access(t_fault, R_OK) != 0 || mkdtemp(t_dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/tokens", t_dir);
	if (mkdir(path, 0700) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/softhsm2.conf", t_dir);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fprintf(f, "directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
	    "log.level = ERROR\nslots.removable = false\n", t_dir);
	fclose(f);
	setenv("SOFTHSM2_CONF", path, 1);
	snprintf(path, sizeof(path), "%s/control", t_dir);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fprintf(f, "C_FindObjectsInit delay 0\n");
	fclose(f);
	setenv("P11_FAULT_CONTROL", path, 1);
	setenv("P11_FAULT_MODULE", T_SOFTHSM, 1);
	snprintf(t_log, sizeof(t_log), "%s/fault.log", t_dir);
	setenv("P11_FAULT_LOG", t_log, 1);
	if (t_run("softhsm2-util --init-token --free --label %s --pin %s "
	    "--so-pin 12345678 >/dev/null", T_LABEL, T_PIN) != 0)
		return -1;
	/* Debris: neither label nor CKA_ID, as SoftHSM2 leaves after a SIGKILL. */
	if (t_keypair("") != 0 ||
	    /* A duplicate: two pairs of ours with one CKA_ID. */
	    t_keypair("--label keycustody:dup --id a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1") != 0 ||
	    t_keypair("--label keycustody:dup --id a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1") != 0 ||
	    /* An incomplete pair: its public key deleted. */
	    t_keypair("--label keycustody:half --id b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2") != 0 ||
	    t_run("pkcs11-tool --module %s --token-label %s --login --pin %s "
	    "--delete-object --type pubkey --id b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2 "
	    ">/dev/null 2>&1", T_SOFTHSM, T_LABEL, T_PIN) != 0 ||
	    /* Not ours: ignored. */
	    t_keypair("--label other --id 01") != 0)
		return -1;
	return 0;
}

static int
t_teardown(void **state)
{
	t_run("rm -rf %s", t_dir);
	return 0;
}

static struct hsm *
t_open(void)
{
	struct hsm_config	 cfg = { .module = t_fault, .token_label = T_LABEL };
	struct hsm		*h = NULL;
	char			*cause = NULL;

	if (hsm_open(&cfg, T_PIN, strlen(T_PIN), &h, &cause) != 0)
		fail_msg("hsm_open: %s", cause ? cause : "");
	return h;
}

/* The scan reports debris, the duplicate and the incomplete pair, and destroys none. */
static void
test_scan_report(void **state)
{
	struct hsm		*h = t_open();
	struct hsm_session	*s = NULL;
	struct hsm_stats	 st;
	uint8_t			*ids = NULL;
	size_t			 n;
	int			 before = t_objects();

	assert_int_equal(before, 9);	/* 2 debris, 4 dup, 1 half, 2 other */
	assert_int_equal(hsm_session_new(h, &s), 0);
	assert_int_equal(hsm_key_list(s, &ids, &n), 0);
	assert_int_equal(n, 2);		/* dup and half: private keys of ours */
	free(ids);
	hsm_get_stats(h, &st);
	assert_int_equal(st.scans, 1);
	assert_int_equal(st.token_pairs, 1);
	assert_int_equal(st.token_duplicates, 1);
	assert_int_equal(st.token_incomplete, 1);
	assert_int_equal(st.token_debris, 2);
	assert_true(st.map_bytes > 0);
	/* A second list is answered from the map. */
	assert_int_equal(hsm_key_list(s, &ids, &n), 0);
	free(ids);
	hsm_get_stats(h, &st);
	assert_int_equal(st.scans, 1);
	hsm_session_free(s);
	hsm_close(h);
	assert_int_equal(t_objects(), before);
}

/* A delete of a pair the map knows searches nothing; a miss searches. */
static void
test_destroy_no_search(void **state)
{
	struct hsm		*h = t_open();
	struct hsm_session	*s = NULL;
	struct hsm_key		*k = NULL;
	struct hsm_stats	 st;
	uint8_t			 id[HSM_KEY_ID_LEN];
	uint8_t			*ids = NULL;
	size_t			 n;
	int			 made, before, objs;

	memset(id, 0x5c, sizeof(id));
	assert_int_equal(hsm_session_new(h, &s), 0);
	assert_int_equal(hsm_key_list(s, &ids, &n), 0);
	free(ids);
	objs = t_objects();
	assert_int_equal(hsm_keygen(s, HSM_KEY_P256, id, "t14", &k, &made), 0);
	hsm_key_free(k);
	assert_int_equal(t_objects(), objs + 2);
	before = t_searches();
	assert_int_equal(hsm_key_find(s, id, &k), 0);
	hsm_key_free(k);
	assert_int_equal(hsm_key_destroy(s, id), 0);
	assert_int_equal(t_searches(), before);
	assert_int_equal(t_objects(), objs);
	hsm_get_stats(h, &st);
	assert_int_equal(st.searches, 0);
	/* Gone from the map too: a second delete searches (a pair of another daemon). */
	assert_int_equal(hsm_key_destroy(s, id), 0);
	assert_int_equal(t_searches(), before + 2);
	hsm_session_free(s);
	hsm_close(h);
}

/* A pair made behind the map (another daemon) is found by a search on a miss. */
static void
test_miss_searches(void **state)
{
	struct hsm		*h = t_open();
	struct hsm_session	*s = NULL;
	struct hsm_key		*k = NULL;
	uint8_t			 id[HSM_KEY_ID_LEN];
	uint8_t			*ids = NULL;
	size_t			 n;
	int			 objs;

	memset(id, 0xc3, sizeof(id));
	assert_int_equal(hsm_session_new(h, &s), 0);
	assert_int_equal(hsm_key_list(s, &ids, &n), 0);
	free(ids);
	objs = t_objects();
	assert_int_equal(t_keypair("--label keycustody:late "
	    "--id c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3"), 0);
	assert_int_equal(hsm_key_find(s, id, &k), 0);
	assert_non_null(hsm_key_public(k));
	hsm_key_free(k);
	assert_int_equal(hsm_key_destroy(s, id), 0);
	assert_int_equal(t_objects(), objs);
	hsm_session_free(s);
	hsm_close(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scan_report),
		cmocka_unit_test(test_destroy_no_search),
		cmocka_unit_test(test_miss_searches),
	};

	if (access(T_SOFTHSM, R_OK) != 0 || system("pkcs11-tool --help >/dev/null 2>&1") == -1)
		return 77;
	return cmocka_run_group_tests(tests, t_setup, t_teardown);
}
