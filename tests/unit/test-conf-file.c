/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * test-conf-file.c: table-driven tests of the shared configuration file reader
 * (lib/kc-conf-file.c) and of keycustodyd's settings read through it (daemon/conf.c).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "kc-conf-file.h"
#include "kc-err.h"
#include "kc-util.h"

/* Input bytes with their length, so that a NUL byte can be part of the input. */
#define IN(s)		(s), sizeof(s) - 1

#define LONG_LEN	100000

/* Built by test_setup(): one setting with a LONG_LEN value, and what the callback sees. */
static char	long_in[LONG_LEN + 16], long_calls[LONG_LEN + 16];

/* The scratch directory of the file-based tests. */
static char	tmp_dir[] = "/tmp/test-conf-file.XXXXXX";

/*
 * Write len bytes of in to the file path (NULL: an anonymous one); return it open for
 * reading from its start.
 */
static FILE *
test_stream(const char *path, const char *in, size_t len)
{
	FILE	*f;

	assert_non_null(f = path != NULL ? fopen(path, "w+") : tmpfile());
	assert_int_equal(fwrite(in, 1, len, f), len);
	assert_int_equal(fflush(f), 0);
	rewind(f);
	return f;
}

/* The same for a file that is read by its path: written, then closed. */
static void
test_file(const char *path, const char *in, size_t len)
{
	assert_int_equal(fclose(test_stream(path, in, len)), 0);
}

/*
 * The reader's callback of the tests: note "key=value@line\n" in the memstream arg. Key
 * "fail" is refused with a cause, "silent" without one, and "" as a program would.
 */
static int
test_cb(void *arg, const char *key, const char *value, int line, char **cause)
{
	FILE	*m = arg;

	fprintf(m, "%s=%s@%d\n", key, value, line);
	if (strcmp(key, "fail") == 0) {
		*cause = strdup("fail: refused");
		return KC_ERR_INVALID;
	}
	if (strcmp(key, "silent") == 0)
		return KC_ERR_CONFLICT;
	if (*key == '\0') {
		*cause = strdup("empty key");
		return KC_ERR_INVALID;
	}
	return 0;
}

static const struct {
	const char	*what;
	const char	*in;
	size_t		 len;
	int		 r;
	const char	*cause;		/* NULL: none */
	const char	*calls;		/* what test_cb saw */
} parse_cases[] = {
	{ "empty file", IN(""), 0, NULL, "" },
	{ "only a newline", IN("\n"), 0, NULL, "" },
	{ "one setting", IN("a = b\n"), 0, NULL, "a=b@1\n" },
	{ "no newline at the end", IN("a = b"), 0, NULL, "a=b@1\n" },
	{ "no spaces", IN("a=b\n"), 0, NULL, "a=b@1\n" },
	{ "comments and blanks",
	  IN("# a comment\n\n   \n\t# indented\nkey = value # trailing\n#k = v\n"),
	  0, NULL, "key=value@5\n" },
	{ "leading and trailing white space", IN(" \t a\t=\t b c \t\v\f\n"), 0, NULL,
	  "a=b c@1\n" },
	{ "white space inside a key is kept", IN("a b = c\n"), 0, NULL, "a b=c@1\n" },
	{ "CRLF", IN("a = 1\r\nb = 2\r\n"), 0, NULL, "a=1@1\nb=2@2\n" },
	{ "CR alone is white space", IN("\r\na = 1\r\n\r\n"), 0, NULL, "a=1@2\n" },
	{ "'#' in a value starts a comment", IN("a = b#c\n"), 0, NULL, "a=b@1\n" },
	{ "the first '=' splits", IN("a = b = c\n"), 0, NULL, "a=b = c@1\n" },
	{ "empty value", IN("a =\n"), 0, NULL, "a=@1\n" },
	{ "empty value before a comment", IN("a = # none\n"), 0, NULL, "a=@1\n" },
	{ "duplicate keys are all passed on", IN("a = 1\nb = 2\na = 3\n"), 0, NULL,
	  "a=1@1\nb=2@2\na=3@3\n" },
	{ "missing '='", IN("a = 1\nnoequals\nb = 2\n"), KC_ERR_INVALID,
	  "t.conf:2: expected \"key = value\"", "a=1@1\n" },
	{ "'=' only in a comment", IN("a # = b\n"), KC_ERR_INVALID,
	  "t.conf:1: expected \"key = value\"", "" },
	{ "line numbers count blanks and comments", IN("#\n\n  \n# x = y\nbad\n"),
	  KC_ERR_INVALID, "t.conf:5: expected \"key = value\"", "" },
	{ "empty key", IN(" = v\n"), KC_ERR_INVALID, "t.conf:1: empty key", "=v@1\n" },
	{ "a lone '='", IN("=\n"), KC_ERR_INVALID, "t.conf:1: empty key", "=@1\n" },
	{ "refusal stops the reading", IN("a = 1\nfail = x\nb = 2\n"), KC_ERR_INVALID,
	  "t.conf:2: fail: refused", "a=1@1\nfail=x@2\n" },
	{ "refusal without a cause", IN("silent = 1\n"), KC_ERR_CONFLICT,
	  "t.conf:1: conflict", "silent=1@1\n" },
	{ "a NUL ends the line's text", IN("a = 1\0junk = 2\nb = 2\n"), 0, NULL,
	  "a=1@1\nb=2@2\n" },
	{ "a NUL first blanks the line", IN("\0a = 1\nb = 2\n"), 0, NULL, "b=2@2\n" },
	{ "a NUL before the '='", IN("a\0= 1\n"), KC_ERR_INVALID,
	  "t.conf:1: expected \"key = value\"", "" },
	{ "bytes above 127", IN("\xc3\xa9 = \xff\xfe\n"), 0, NULL, "\xc3\xa9=\xff\xfe@1\n" },
	{ "over-long line (no cap)", NULL, 0, 0, NULL, NULL },
};

/* Build the long-line input: "k = xxx...x\n". */
static int
test_setup(void **state)
{
	memcpy(long_in, "k = ", 4);
	memset(long_in + 4, 'x', LONG_LEN);
	memcpy(long_in + 4 + LONG_LEN, "\n", 2);
	memcpy(long_calls, "k=", 2);
	memset(long_calls + 2, 'x', LONG_LEN);
	memcpy(long_calls + 2 + LONG_LEN, "@1\n", 4);
	if (mkdtemp(tmp_dir) == NULL)
		return -1;
	return 0;
}

/* Remove the scratch directory (the tests remove their files). */
static int
test_teardown(void **state)
{
	return rmdir(tmp_dir);
}

/* kc_conf_file_parse() over parse_cases. */
static void
test_parse(void **state)
{
	const char	*in, *calls;
	char		*cause, *buf;
	size_t		 i, len, blen;
	FILE		*f, *m;
	int		 r;

	for (i = 0; i < nitems(parse_cases); i++) {
		in = parse_cases[i].in;
		len = parse_cases[i].len;
		calls = parse_cases[i].calls;
		if (in == NULL) {
			in = long_in;
			len = strlen(long_in);
			calls = long_calls;
		}
		print_message("%s\n", parse_cases[i].what);
		f = test_stream(NULL, in, len);
		buf = NULL;
		assert_non_null(m = open_memstream(&buf, &blen));
		cause = NULL;
		r = kc_conf_file_parse(f, "t.conf", test_cb, m, &cause);
		assert_int_equal(fclose(m), 0);
		fclose(f);
		assert_int_equal(r, parse_cases[i].r);
		if (parse_cases[i].cause == NULL)
			assert_null(cause);
		else {
			assert_non_null(cause);
			assert_string_equal(cause, parse_cases[i].cause);
		}
		assert_int_equal(blen, strlen(calls));
		assert_memory_equal(buf, calls, blen);
		free(cause);
		free(buf);
	}
}

/* kc_conf_file_read(): the path names the file in messages; a missing file is KC_ERR_IO. */
static void
test_read(void **state)
{
	char	 path[sizeof(tmp_dir) + 16], want[sizeof(path) + 64], *cause = NULL, *buf;
	size_t	 blen;
	FILE	*m;

	snprintf(path, sizeof(path), "%s/t.conf", tmp_dir);
	assert_int_equal(kc_conf_file_read(path, test_cb, NULL, &cause), KC_ERR_IO);
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	assert_string_equal(cause, want);
	free(cause);
	cause = NULL;

	test_file(path, IN("# x\na = 1\nfail = 2\n"));
	assert_non_null(m = open_memstream(&buf, &blen));
	assert_int_equal(kc_conf_file_read(path, test_cb, m, &cause), KC_ERR_INVALID);
	assert_int_equal(fclose(m), 0);
	snprintf(want, sizeof(want), "%s:3: fail: refused", path);
	assert_string_equal(cause, want);
	assert_string_equal(buf, "a=1@2\nfail=2@3\n");
	free(cause);
	free(buf);
	assert_int_equal(unlink(path), 0);
}

/* A stream that cannot be read is a read error, not an empty file. */
static void
test_read_error(void **state)
{
	char	*cause = NULL;
	FILE	*f;

	assert_non_null(f = fopen("/dev/null", "w"));
	assert_int_equal(kc_conf_file_parse(f, "t.conf", test_cb, NULL, &cause), KC_ERR_IO);
	assert_string_equal(cause, "t.conf: read error");
	free(cause);
	fclose(f);
}

/* kc_conf_file_key(), kc_conf_file_str() and kc_conf_file_number(). */
static void
test_helpers(void **state)
{
	static const struct kc_conf_file_key keys[] = {
		{ "one", 1, 0, 0, 0, 0 },
		{ "two", 2, 8, 5, 10, 0 },
	};
	static const struct {
		const char	*value;
		long		 min, max;
		int		 r;
		long		 out;
	} numbers[] = {
		{ "5", 5, 10, 0, 5 },
		{ "10", 5, 10, 0, 10 },
		{ "007", 5, 10, 0, 7 },
		{ "4", 5, 10, KC_ERR_INVALID, 0 },
		{ "11", 5, 10, KC_ERR_INVALID, 0 },
		{ "", 0, 10, KC_ERR_INVALID, 0 },
		{ "+5", 0, 10, KC_ERR_INVALID, 0 },
		{ "-0", 0, 10, KC_ERR_INVALID, 0 },
		{ " 5", 0, 10, KC_ERR_INVALID, 0 },
		{ "5 ", 0, 10, KC_ERR_INVALID, 0 },
		{ "5x", 0, 10, KC_ERR_INVALID, 0 },
		{ "0x5", 0, 10, KC_ERR_INVALID, 0 },
		{ "3600000", 100, 3600000, 0, 3600000 },
		{ "99999999999999999999999", 0, 3600000, KC_ERR_INVALID, 0 },
	};
	const struct kc_conf_file_key	*k;
	char				*cause = NULL, *s = NULL;
	size_t				 i;
	long				 v;

	assert_non_null(k = kc_conf_file_key(keys, nitems(keys), "two", &cause));
	assert_ptr_equal(k, &keys[1]);
	assert_null(cause);
	assert_null(kc_conf_file_key(keys, nitems(keys), "three", &cause));
	assert_string_equal(cause, "unknown setting \"three\"");
	free(cause);
	cause = NULL;
	assert_null(kc_conf_file_key(keys, nitems(keys), "", &cause));
	assert_string_equal(cause, "unknown setting \"\"");
	free(cause);
	cause = NULL;

	assert_int_equal(kc_conf_file_str(&s, "k", "a", &cause), 0);
	assert_string_equal(s, "a");
	assert_int_equal(kc_conf_file_str(&s, "k", "b", &cause), 0);
	assert_string_equal(s, "b");
	assert_int_equal(kc_conf_file_str(&s, "k", "", &cause), KC_ERR_INVALID);
	assert_string_equal(cause, "k: empty value");
	assert_string_equal(s, "b");
	free(cause);
	free(s);

	for (i = 0; i < nitems(numbers); i++) {
		v = -1;
		print_message("number \"%s\"\n", numbers[i].value);
		assert_int_equal(kc_conf_file_number(numbers[i].value, numbers[i].min,
		    numbers[i].max, &v), numbers[i].r);
		assert_int_equal(v, numbers[i].r == 0 ? numbers[i].out : -1);
	}
}

static const struct {
	const char	*in;
	int		 r;
	const char	*cause;		/* after "path:"; NULL: none */
} daemon_cases[] = {
	{ "workers = 4\nqueue_limit=10\nrequest_timeout = 3600\n", 0, NULL },
	{ "workers = 0\n", KC_ERR_INVALID,
	  "1: workers: \"0\" is not a number between 1 and 64" },
	{ "\nworkers = 65\n", KC_ERR_INVALID,
	  "2: workers: \"65\" is not a number between 1 and 64" },
	{ "max_connections = +4\n", KC_ERR_INVALID,
	  "1: max_connections: \"+4\" is not a number between 1 and 100000" },
	{ "request_timeout = 4s\n", KC_ERR_INVALID,
	  "1: request_timeout: \"4s\" is not a number between 1 and 3600" },
	{ "trust_system = false\ntrust_system = yes\n", 0, NULL },
	{ "trust_system = maybe\n", KC_ERR_INVALID,
	  "1: trust_system: \"maybe\" is neither yes nor no" },
	{ "signer = engine\n", 0, NULL },
	{ "csr_signer = hsm\n", KC_ERR_INVALID,
	  "1: csr_signer: \"hsm\" is neither direct nor engine" },
	{ "signer = www-data\n", KC_ERR_INVALID, "1: signer: no scope: name the zones (zone "
	  "ids, zone/hostname, or * for every zone)" },
	{ "signer = www-data 023e105f4ecef8ad9ca31a8372d0c35\n", KC_ERR_INVALID, "1: signer: "
	  "\"023e105f4ecef8ad9ca31a8372d0c35\" is not a zone id (32 lowercase hex digits), "
	  "zone/hostname or *" },
	{ "signer = www-data 023e105f4ecef8ad9ca31a8372d0c353/bad!name\n", KC_ERR_INVALID,
	  "1: signer: \"bad!name\" is not a hostname" },
	{ "signer = www-data 023e105f4ecef8ad9ca31a8372d0c353/Shop.Acme-Corp.co.uk *\n"
	  "signer = direct\n", 0, NULL },
	{ "module =\n", KC_ERR_INVALID, "1: module: empty value" },
	{ "admin = # nobody\n", KC_ERR_INVALID, "1: admin: empty value" },
	{ "bogus = 1\n", KC_ERR_INVALID, "1: unknown setting \"bogus\"" },
	{ " = 1\n", KC_ERR_INVALID, "1: unknown setting \"\"" },
	{ "store\n", KC_ERR_INVALID, "1: expected \"key = value\"" },
};

/* keycustodyd's conf_load(): its messages and its policy for repeated keys. */
static void
test_daemon(void **state)
{
	struct kc_conf	 c;
	char		 path[sizeof(tmp_dir) + 32], want[sizeof(path) + 128], *cause;
	size_t		 i;

	snprintf(path, sizeof(path), "%s/keycustodyd.conf", tmp_dir);
	for (i = 0; i < nitems(daemon_cases); i++) {
		print_message("%s", daemon_cases[i].in);
		test_file(path, daemon_cases[i].in, strlen(daemon_cases[i].in));
		conf_init(&c);
		cause = NULL;
		assert_int_equal(conf_load(&c, path, &cause), daemon_cases[i].r);
		if (daemon_cases[i].cause == NULL)
			assert_null(cause);
		else {
			assert_true((size_t)snprintf(want, sizeof(want), "%s:%s", path,
			    daemon_cases[i].cause) < sizeof(want));
			assert_string_equal(cause, want);
		}
		free(cause);
		conf_free(&c);
	}

	/* A repeated setting overrides; a repeated list entry adds. */
	test_file(path, IN("store = /a\nstore = /b\nadmin = root\nadmin = @wheel\n"
	    "workers = 3\nworkers = 5\n"));
	conf_init(&c);
	cause = NULL;
	assert_int_equal(conf_load(&c, path, &cause), 0);
	assert_string_equal(c.store_path, "/b");
	assert_int_equal(c.nroles[0], 2);
	assert_string_equal(c.roles[0][0], "root");
	assert_string_equal(c.roles[0][1], "@wheel");
	assert_int_equal(c.workers, 5);
	conf_free(&c);

	/* The defaults stand where the file says nothing. */
	test_file(path, IN("# nothing\n"));
	conf_init(&c);
	assert_int_equal(conf_load(&c, path, &cause), 0);
	assert_string_equal(c.token_label, CONF_DEFAULT_TOKEN);
	assert_string_equal(c.store_path, CONF_DEFAULT_STORE);
	assert_string_equal(c.sandbox, "enforce");
	assert_int_equal(c.workers, 2);
	assert_int_equal(c.queue_limit, 256);
	assert_int_equal(c.request_timeout, 30);
	assert_int_equal(c.trust_system, 1);
	conf_free(&c);
	assert_int_equal(unlink(path), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_read_error),
		cmocka_unit_test(test_helpers),
		cmocka_unit_test(test_daemon),
	};

	return cmocka_run_group_tests(tests, test_setup, test_teardown);
}
