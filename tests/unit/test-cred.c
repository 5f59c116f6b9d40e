/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * test-cred.c: http/cred.c, the shim's credentials file, hashing and checks (issue 3).
 */
#include "config.h"

#include <sys/stat.h>

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
#include "cred.h"

#define Z1	"023e105f4ecef8ad9ca31a8372d0c353"
#define Z2	"9a7806061c88ada191ed06f989cc3dac"

#define H1	"9e2d3ca5a7c24bd4bdd6aba1b3d1d2e3ee0b6d0b84cc2c8bd8b8ab2bc15a2d2a"	/* any 64 hex */

static void
hex(const uint8_t *h, char *out)
{
	size_t	 i;

	for (i = 0; i < CRED_HASH_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* A credentials text with the hashes of "tok-w", "tok-r" and key "key-1". */
static char *
sample(void)
{
	uint8_t	 h[CRED_HASH_LEN];
	char	 hw[65], hr[65], hk[65], *s;

	assert_int_equal(cred_hash("tok-w", 5, h), 0);
	hex(h, hw);
	assert_int_equal(cred_hash("tok-r", 5, h), 0);
	hex(h, hr);
	assert_int_equal(cred_hash("key-1", 5, h), 0);
	hex(h, hk);
	assert_true(asprintf(&s, "# comment\n\n"
	    "writer token %s * write\n"
	    "  reader\ttoken %s " Z1 "," Z2 " read   # trailing comment\r\n"
	    "ops key %s " Z1 " write ops@acme-corp.co.uk\n", hw, hr, hk) > 0);
	return s;
}

static void
test_hash(void **state)
{
	uint8_t	 h[CRED_HASH_LEN];
	char	 out[65];

	assert_int_equal(cred_hash("abc", 3, h), 0);
	hex(h, out);
	assert_string_equal(out,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void
test_parse_and_find(void **state)
{
	struct cred_table	*t;
	const struct cred	*c;
	char			*s = sample(), *cause = NULL;

	assert_int_equal(cred_parse(s, strlen(s), &t, &cause), 0);
	assert_null(cause);
	assert_int_equal(cred_count(t), 3);

	c = cred_find_token(t, "tok-w");
	assert_non_null(c);
	assert_string_equal(c->name, "writer");
	assert_int_equal(c->type, CRED_TOKEN);
	assert_int_equal(c->access, CRED_WRITE);
	assert_true(c->all_zones);
	assert_true(cred_allows(c, Z1, 1));
	assert_true(cred_allows(c, Z2, 0));

	c = cred_find_token(t, "tok-r");
	assert_non_null(c);
	assert_string_equal(c->name, "reader");
	assert_int_equal(c->nzones, 2);
	assert_true(cred_allows(c, Z1, 0));
	assert_true(cred_allows(c, Z2, 0));
	assert_false(cred_allows(c, Z1, 1));		/* read-only */
	assert_false(cred_allows(c, "00000000000000000000000000000000", 0));
	assert_false(cred_allows(NULL, Z1, 0));

	assert_null(cred_find_token(t, "tok-x"));
	assert_null(cred_find_token(t, ""));
	assert_null(cred_find_token(t, "key-1"));	/* a key is not a token */

	c = cred_find_key(t, "ops@acme-corp.co.uk", "key-1");
	assert_non_null(c);
	assert_string_equal(c->name, "ops");
	assert_true(cred_allows(c, Z1, 1));
	assert_false(cred_allows(c, Z2, 0));
	assert_non_null(cred_find_key(t, "OPS@Acme-Corp.co.uk", "key-1"));
	assert_null(cred_find_key(t, "other@acme-corp.co.uk", "key-1"));
	assert_null(cred_find_key(t, "ops@acme-corp.co.uk", "key-2"));
	assert_null(cred_find_key(t, "ops@acme-corp.co.uk", "tok-w"));
	assert_non_null(cred_lookup(t, "reader"));
	assert_null(cred_lookup(t, "nobody"));
	cred_table_free(t);
	cred_table_free(NULL);
	free(s);
}

static void
test_parse_errors(void **state)
{
	static const char *const bad[] = {
		"a token " H1 " *\n",					/* too few */
		"a token " H1 " * write extra\n",			/* token + email */
		"a key " H1 " * write\n",				/* key without email */
		"a key " H1 " * write noatsign\n",
		"a other " H1 " * write\n",
		"a token abcd * write\n",				/* short hash */
		"a token " H1 "0 * write\n",
		"a token " H1 " " Z1 "x write\n",			/* bad zone */
		"a token " H1 " " Z1 ", write\n",			/* empty zone */
		"a token " H1 " ," Z1 " write\n",
		"a token " H1 " 023E105F4ECEF8AD9CA31A8372D0C353 write\n", /* upper case */
		"a token " H1 " * admin\n",
		"a/b token " H1 " * write\n",				/* bad name */
		"a token " H1 " * write\na token " H1 " * read\n",	/* duplicate name */
		"a token " H1 " * write 1 2 3\n",
	};
	struct cred_table	*t = NULL;
	char			*cause = NULL;
	size_t			 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(cred_parse(bad[i], strlen(bad[i]), &t, &cause),
		    KC_ERR_INVALID);
		assert_null(t);
		assert_non_null(cause);
		assert_non_null(strstr(cause, "line "));
		free(cause);
		cause = NULL;
	}
	assert_int_equal(cred_parse("a token x\0", 10, &t, NULL), KC_ERR_INVALID);
	assert_int_equal(cred_parse("", 0, &t, NULL), 0);
	assert_int_equal(cred_count(t), 0);
	assert_null(cred_find_token(t, "x"));
	cred_table_free(t);
}

static void
test_new_line(void **state)
{
	struct cred_table	*t;
	const struct cred	*c;
	char			 secret[CRED_SECRET_LEN + 1], secret2[CRED_SECRET_LEN + 1];
	char			*line, *line2, *all, *cause = NULL;
	size_t			 i;

	assert_int_equal(cred_new_line("ci", CRED_TOKEN, Z1 "," Z2, CRED_READ, NULL,
	    secret, &line, &cause), 0);
	assert_int_equal(strlen(secret), CRED_SECRET_LEN);
	for (i = 0; i < CRED_SECRET_LEN; i++)
		assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789-_", secret[i]));
	assert_null(strstr(line, secret));		/* only the hash is stored */
	assert_int_equal(cred_new_line("ops", CRED_KEY, "*", CRED_WRITE,
	    "ops@acme-corp.co.uk", secret2, &line2, &cause), 0);
	assert_string_not_equal(secret, secret2);
	assert_true(asprintf(&all, "%s%s", line, line2) > 0);
	assert_int_equal(cred_parse(all, strlen(all), &t, &cause), 0);
	c = cred_find_token(t, secret);
	assert_non_null(c);
	assert_string_equal(c->name, "ci");
	assert_false(cred_allows(c, Z1, 1));
	assert_true(cred_allows(c, Z2, 0));
	c = cred_find_key(t, "ops@acme-corp.co.uk", secret2);
	assert_non_null(c);
	assert_true(cred_allows(c, Z2, 1));
	cred_table_free(t);
	free(all);
	free(line);
	free(line2);

	assert_int_equal(cred_new_line("bad name", CRED_TOKEN, "*", CRED_READ, NULL,
	    secret, &line, &cause), KC_ERR_INVALID);
	free(cause);
	cause = NULL;
	assert_int_equal(cred_new_line("x", CRED_KEY, "*", CRED_READ, NULL, secret, &line,
	    &cause), KC_ERR_INVALID);
	free(cause);
	cause = NULL;
	assert_int_equal(cred_new_line("x", CRED_TOKEN, "zone", CRED_READ, NULL, secret,
	    &line, &cause), KC_ERR_INVALID);
	free(cause);
	cause = NULL;
	assert_int_equal(cred_new_line("x", CRED_TOKEN, "*", 0, NULL, secret, &line,
	    &cause), KC_ERR_INVALID);
	free(cause);
}

static void
test_load(void **state)
{
	struct cred_table	*t = NULL;
	char			 path[] = "/tmp/test-cred.XXXXXX", *s = sample(), *cause = NULL;
	int			 fd;

	assert_true((fd = mkstemp(path)) >= 0);
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
	close(fd);
	assert_int_equal(cred_load(path, &t, &cause), 0);
	assert_int_equal(cred_count(t), 3);
	cred_table_free(t);
	t = NULL;
	assert_int_equal(chmod(path, 0620), 0);	/* group-writable: refused */
	assert_int_equal(cred_load(path, &t, &cause), KC_ERR_IO);
	assert_null(t);
	free(cause);
	cause = NULL;
	unlink(path);
	assert_int_equal(cred_load(path, &t, &cause), KC_ERR_IO);
	free(cause);
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash),
		cmocka_unit_test(test_parse_and_find),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_new_line),
		cmocka_unit_test(test_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
