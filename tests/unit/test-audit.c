/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * test-audit.c: unit tests of daemon/audit.c and daemon/audit-verify.c: concurrent appends
 * keep one chain; edited, deleted and torn lines are found and named; reopening and rotation
 * continue the chain; write failures fail closed and show in the health.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "audit-verify.h"
#include "audit.h"
#include "kc-err.h"
#include "log.h"

#define TEST_THREADS		4
#define TEST_PER_THREAD		100

struct test_ctx {
	char	 dir[64];
	char	 path[128];
	char	*report;	/* what the last test_verify() reported */
};

/* A fresh directory per test, so that rotated files do not leak between tests. */
static int
test_setup(void **state)
{
	struct test_ctx	*t;
	const char	*tmp;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return -1;
	if ((tmp = getenv("TMPDIR")) == NULL || strlen(tmp) > 40)
		tmp = "/tmp";
	snprintf(t->dir, sizeof(t->dir), "%s/test-audit.XXXXXX", tmp);
	if (mkdtemp(t->dir) == NULL) {
		free(t);
		return -1;
	}
	snprintf(t->path, sizeof(t->path), "%s/audit.log", t->dir);
	*state = t;
	return 0;
}

static int
test_teardown(void **state)
{
	struct test_ctx	*t = *state;
	struct dirent	*de;
	DIR		*d;
	char		 p[512];

	if ((d = opendir(t->dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(p, sizeof(p), "%s/%s", t->dir, de->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(t->dir);
	free(t->report);
	free(t);
	return 0;
}

/* Verify files (oldest first) into chain; the report is kept in t->report. */
static int
test_verify(struct test_ctx *t, struct audit_chain *chain, int n, ...)
{
	va_list	 ap;
	char	*paths[4];
	FILE	*f;
	size_t	 len;
	int	 i, r;

	va_start(ap, n);
	for (i = 0; i < n && i < 4; i++)
		paths[i] = va_arg(ap, char *);
	va_end(ap);
	free(t->report);
	t->report = NULL;
	assert_non_null(f = open_memstream(&t->report, &len));
	r = audit_verify_files(paths, n, chain, f);
	fclose(f);
	return r;
}

static struct audit *
test_open(struct test_ctx *t)
{
	struct audit	*a = NULL;
	char		*cause = NULL;
	int		 r;

	r = audit_open(t->path, NULL, &a, &cause);
	if (r != 0)
		print_error("audit_open: %s\n", cause != NULL ? cause : kc_strerror(r));
	assert_int_equal(r, 0);
	assert_null(cause);
	return a;
}

/* Record a successful create_csr for zone/id. */
static int
test_record(struct audit *a, const char *zone, const char *id)
{
	static const uint8_t	 key_id[16] = { 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6,
	    7, 8, 9, 10, 11, 0xff };
	struct audit_event	 ev;

	memset(&ev, 0, sizeof(ev));
	ev.op = "create_csr";
	ev.uid = 1000;
	ev.pid = 4242;
	ev.credential = "gateway-1";
	ev.zone = zone;
	ev.id = id;
	ev.key_id = key_id;
	ev.key_id_len = sizeof(key_id);
	return audit_record(a, &ev);
}

/* Write n records to a new log at t->path and close it: n + 1 lines with the genesis. */
static void
test_fill(struct test_ctx *t, int n)
{
	struct audit	*a = test_open(t);
	char		 id[32];
	int		 i;

	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "id-%d", i);
		assert_int_equal(test_record(a, "0123456789abcdef0123456789abcdef", id), 0);
	}
	audit_close(a);
}

/* Read a whole file; caller frees. */
static char *
test_slurp(const char *path, size_t *lenp)
{
	FILE	*f;
	char	*buf;
	long	 len;

	assert_non_null(f = fopen(path, "r"));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	assert_true((len = ftell(f)) >= 0);
	rewind(f);
	assert_non_null(buf = malloc((size_t)len + 1));
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	buf[len] = '\0';
	fclose(f);
	*lenp = (size_t)len;
	return buf;
}

static void
test_spew(const char *path, const char *buf, size_t len)
{
	FILE	*f;

	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Offset of the start of line n (1-based) in buf. */
static size_t
test_line_off(const char *buf, int n)
{
	const char	*p = buf;

	while (--n > 0) {
		assert_non_null(p = strchr(p, '\n'));
		p++;
	}
	return (size_t)(p - buf);
}

/* Parse line n of a file. */
static json_t *
test_line_json(const char *path, int n)
{
	json_t	*o;
	char	*buf, *nl;
	size_t	 len, off;

	buf = test_slurp(path, &len);
	off = test_line_off(buf, n);
	assert_non_null(nl = strchr(buf + off, '\n'));
	o = json_loadb(buf + off, (size_t)(nl - buf - off), 0, NULL);
	assert_non_null(o);
	free(buf);
	return o;
}

struct test_worker {
	struct audit	*a;
	int		 index;
	int		 failures;
};

static void *
test_worker_main(void *arg)
{
	struct test_worker	*w = arg;
	char			 zone[33], id[32];
	int			 i;

	snprintf(zone, sizeof(zone), "zone%028d", w->index);
	for (i = 0; i < TEST_PER_THREAD; i++) {
		snprintf(id, sizeof(id), "t%d-%d", w->index, i);
		if (test_record(w->a, zone, id) != 0)
			w->failures++;
	}
	return NULL;
}

/* Four threads append at once; the chain is one line and every seq appears once. */
static void
test_concurrent(void **state)
{
	struct test_ctx		*t = *state;
	struct test_worker	 w[TEST_THREADS];
	pthread_t		 th[TEST_THREADS];
	struct audit_chain	 chain;
	struct audit		*a = test_open(t);
	char			 head[AUDIT_HASH_LEN + 1];
	uint64_t		 seq;
	int			 i;

	for (i = 0; i < TEST_THREADS; i++) {
		w[i].a = a;
		w[i].index = i;
		w[i].failures = 0;
		assert_int_equal(pthread_create(&th[i], NULL, test_worker_main, &w[i]), 0);
	}
	for (i = 0; i < TEST_THREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(w[i].failures, 0);
	}
	assert_true(audit_ok(a));
	audit_head(a, head, &seq);
	assert_int_equal(seq, 1 + TEST_THREADS * TEST_PER_THREAD);
	audit_close(a);

	assert_int_equal(test_verify(t, &chain, 1, t->path), 0);
	assert_int_equal(chain.total, 1 + TEST_THREADS * TEST_PER_THREAD);
	assert_int_equal(chain.seq, 1 + TEST_THREADS * TEST_PER_THREAD);
	assert_string_equal(chain.hash, head);
}

/* The fields of a genesis line and of an event line. */
static void
test_fields(void **state)
{
	struct test_ctx		*t = *state;
	struct audit		*a = test_open(t);
	struct audit_event	 ev;
	struct kc_error		 err;
	json_t			*o, *g, *actor, *res;
	const char		*tm;
	char			 h1[AUDIT_HASH_LEN + 1];
	char			*buf;
	size_t			 len;

	memset(&ev, 0, sizeof(ev));
	memset(&err, 0, sizeof(err));
	err.status = KC_STATUS_NOT_FOUND;
	err.code = 1419;
	ev.op = "delete_csr";
	ev.uid = 0;
	ev.pid = 77;
	ev.zone = "zone\xff\"x";	/* not UTF-8: escaped, not dropped */
	ev.id = "abc";
	ev.error = &err;
	assert_int_equal(audit_record(a, &ev), 0);
	ev.op = NULL;
	assert_int_equal(audit_record(a, &ev), KC_ERR_INVALID);
	audit_close(a);

	g = test_line_json(t->path, 1);
	assert_true(json_is_true(json_object_get(g, "genesis")));
	assert_string_equal(json_string_value(json_object_get(g, "prev")), AUDIT_GENESIS_PREV);
	assert_int_equal(json_integer_value(json_object_get(g, "seq")), 1);
	assert_string_equal(json_string_value(json_object_get(g, "op")), "genesis");
	json_decref(g);

	o = test_line_json(t->path, 2);
	assert_int_equal(json_integer_value(json_object_get(o, "seq")), 2);
	tm = json_string_value(json_object_get(o, "time"));
	assert_non_null(tm);
	/* 2026-01-02T03:04:05.123456Z */
	assert_int_equal(strlen(tm), 27);
	assert_true(tm[4] == '-' && tm[10] == 'T' && tm[19] == '.' && tm[26] == 'Z');
	actor = json_object_get(o, "actor");
	assert_int_equal(json_integer_value(json_object_get(actor, "uid")), 0);
	assert_int_equal(json_integer_value(json_object_get(actor, "pid")), 77);
	assert_null(json_object_get(actor, "credential"));
	assert_string_equal(json_string_value(json_object_get(o, "op")), "delete_csr");
	assert_string_equal(json_string_value(json_object_get(o, "zone")), "zone\\xff\"x");
	assert_string_equal(json_string_value(json_object_get(o, "id")), "abc");
	assert_null(json_object_get(o, "key_id"));
	res = json_object_get(o, "result");
	assert_string_equal(json_string_value(json_object_get(res, "status")), "not_found");
	assert_int_equal(json_integer_value(json_object_get(res, "code")), 1419);
	assert_null(json_object_get(o, "genesis"));

	/* prev of line 2 is the SHA-256 of line 1's bytes. */
	buf = test_slurp(t->path, &len);
	assert_int_equal(audit_line_hash(buf, strcspn(buf, "\n"), h1), 0);
	assert_string_equal(json_string_value(json_object_get(o, "prev")), h1);
	json_decref(o);
	free(buf);

	/* A successful event: result "ok", key id in hex, credential kept. */
	a = test_open(t);
	assert_int_equal(test_record(a, "z", "i"), 0);
	audit_close(a);
	o = test_line_json(t->path, 3);
	assert_string_equal(json_string_value(json_object_get(o, "result")), "ok");
	assert_string_equal(json_string_value(json_object_get(o, "key_id")),
	    "deadbeef0102030405060708090a0bff");
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "actor"),
	    "credential")), "gateway-1");
	json_decref(o);
}

/* Editing a byte of a middle line: the next line's prev names it. */
static void
test_edit_middle(void **state)
{
	struct test_ctx		*t = *state;
	struct audit_chain	 chain;
	char			*buf, *p;
	size_t			 len, off;

	test_fill(t, 9);		/* 10 lines */
	buf = test_slurp(t->path, &len);
	off = test_line_off(buf, 5);
	assert_non_null(p = strstr(buf + off, "\"id\":\"id-"));
	p[strlen("\"id\":\"id-")] = 'X';	/* id-3 -> id-X: still valid JSON */
	test_spew(t->path, buf, len);
	free(buf);

	assert_int_equal(test_verify(t, &chain, 1, t->path), KC_ERR_BAD_MESSAGE);
	assert_int_equal(chain.bad_line, 5);
	assert_non_null(strstr(t->report, "audit.log:5: line 5 was modified"));
}

/* Editing a line so that it is no longer JSON: that line is named. */
static void
test_edit_syntax(void **state)
{
	struct test_ctx		*t = *state;
	struct audit_chain	 chain;
	char			*buf;
	size_t			 len, off;

	test_fill(t, 9);
	buf = test_slurp(t->path, &len);
	off = test_line_off(buf, 4);
	buf[off] = '[';
	test_spew(t->path, buf, len);
	free(buf);

	assert_int_equal(test_verify(t, &chain, 1, t->path), KC_ERR_BAD_MESSAGE);
	assert_int_equal(chain.bad_line, 4);
	assert_non_null(strstr(t->report, ":4: not an audit record"));
}

/* Changing only a seq: the hash links hold, the seq is named. */
static void
test_edit_seq(void **state)
{
	struct test_ctx		*t = *state;
	struct audit		*a;
	struct audit_chain	 chain;
	char			*buf, *p;
	size_t			 len, off;

	test_fill(t, 9);
	buf = test_slurp(t->path, &len);
	off = test_line_off(buf, 10);
	assert_non_null(p = strstr(buf + off, "\"seq\":10,"));
	p[strlen("\"seq\":1")] = '1';	/* 10 -> 11 */
	test_spew(t->path, buf, len);
	free(buf);

	assert_int_equal(test_verify(t, &chain, 1, t->path), KC_ERR_BAD_MESSAGE);
	assert_int_equal(chain.bad_line, 10);
	assert_non_null(strstr(t->report, "seq 11 where 10 was expected"));

	/* The daemon only reads the last line: it starts, and verify still finds it. */
	a = test_open(t);
	audit_close(a);
}

/* Deleting a middle line: a gap before the line that followed it. */
static void
test_delete_line(void **state)
{
	struct test_ctx		*t = *state;
	struct audit_chain	 chain;
	char			*buf;
	size_t			 len, off5, off6;

	test_fill(t, 9);
	buf = test_slurp(t->path, &len);
	off5 = test_line_off(buf, 5);
	off6 = test_line_off(buf, 6);
	memmove(buf + off5, buf + off6, len - off6);
	len -= off6 - off5;
	test_spew(t->path, buf, len);
	free(buf);

	assert_int_equal(test_verify(t, &chain, 1, t->path), KC_ERR_BAD_MESSAGE);
	assert_int_equal(chain.bad_line, 5);
	assert_non_null(strstr(t->report, ":5: 1 line(s) missing before this line"));
}

/* Deleting the first line: the start of the log is missing. */
static void
test_delete_first(void **state)
{
	struct test_ctx		*t = *state;
	struct audit_chain	 chain;
	char			*buf;
	size_t			 len, off2;

	test_fill(t, 3);
	buf = test_slurp(t->path, &len);
	off2 = test_line_off(buf, 2);
	test_spew(t->path, buf + off2, len - off2);
	free(buf);

	assert_int_equal(test_verify(t, &chain, 1, t->path), KC_ERR_BAD_MESSAGE);
	assert_int_equal(chain.bad_line, 1);
	assert_non_null(strstr(t->report, "the start of the log is missing"));
}

/* Truncating mid-line: verify reports a torn line and the daemon refuses to start. */
static void
test_torn(void **state)
{
	struct test_ctx		*t = *state;
	struct audit_chain	 chain;
	struct audit		*a = NULL;
	char			*buf, *cause = NULL;
	size_t			 len, off;

	test_fill(t, 5);		/* 6 lines */
	buf = test_slurp(t->path, &len);
	off = test_line_off(buf, 6);
	assert_int_equal(truncate(t->path, (off_t)(off + 20)), 0);
	free(buf);

	assert_int_equal(test_verify(t, &chain, 1, t->path), KC_ERR_BAD_MESSAGE);
	assert_int_equal(chain.bad_line, 6);
	assert_non_null(strstr(t->report, ":6: torn line"));

	assert_int_equal(audit_open(t->path, NULL, &a, &cause), KC_ERR_BAD_MESSAGE);
	assert_null(a);
	assert_non_null(cause);
	assert_non_null(strstr(cause, "torn"));
	free(cause);
}

/* A last line that ends with a newline but is garbage: the daemon refuses to start. */
static void
test_corrupt_last(void **state)
{
	struct test_ctx		*t = *state;
	struct audit		*a = NULL;
	char			*cause = NULL;
	int			 fd;

	test_fill(t, 2);
	assert_true((fd = open(t->path, O_WRONLY | O_APPEND)) != -1);
	assert_int_equal(write(fd, "{\"seq\":4}\n", 10), 10);
	close(fd);
	assert_int_equal(audit_open(t->path, NULL, &a, &cause), KC_ERR_BAD_MESSAGE);
	assert_null(a);
	assert_non_null(strstr(cause, "not an audit record"));
	free(cause);
}

/* Reopening continues the chain and the seq. */
static void
test_reopen(void **state)
{
	struct test_ctx		*t = *state;
	struct audit_chain	 chain;
	struct audit		*a;
	struct stat		 st;
	char			 head[AUDIT_HASH_LEN + 1];
	uint64_t		 seq;

	test_fill(t, 3);
	assert_int_equal(stat(t->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(test_verify(t, &chain, 1, t->path), 0);

	a = test_open(t);
	audit_head(a, head, &seq);
	assert_int_equal(seq, 4);
	assert_string_equal(head, chain.hash);
	assert_int_equal(test_record(a, "z", "after-reopen"), 0);
	audit_close(a);

	assert_int_equal(test_verify(t, &chain, 1, t->path), 0);
	assert_int_equal(chain.total, 5);
	assert_int_equal(chain.seq, 5);
}

/* Rotation: the set verifies in order; out of order, alone, or altered it does not. */
static void
test_rotate(void **state)
{
	struct test_ctx		*t = *state;
	struct audit_chain	 chain, first;
	struct audit		*a;
	json_t			*o;
	char			*rotated = NULL, *buf, *p;
	size_t			 len;

	a = test_open(t);
	assert_int_equal(test_record(a, "z", "one"), 0);
	assert_int_equal(test_record(a, "z", "two"), 0);
	assert_int_equal(audit_rotate(a, &rotated), 0);
	assert_non_null(rotated);
	assert_int_equal(strncmp(rotated, t->path, strlen(t->path)), 0);
	assert_int_equal(test_record(a, "z", "three"), 0);
	audit_close(a);

	assert_int_equal(test_verify(t, &first, 1, rotated), 0);
	assert_int_equal(first.total, 3);

	assert_int_equal(test_verify(t, &chain, 2, rotated, t->path), 0);
	assert_int_equal(chain.total, 5);
	assert_int_equal(chain.seq, 5);

	o = test_line_json(t->path, 1);
	assert_string_equal(json_string_value(json_object_get(o, "op")), "rotate");
	assert_string_equal(json_string_value(json_object_get(o, "prev")), first.hash);
	assert_string_equal(json_string_value(json_object_get(o, "prev_file")),
	    strrchr(rotated, '/') + 1);
	json_decref(o);

	/* The newer file alone: a gap, refused (issue 12)... */
	assert_int_equal(test_verify(t, &chain, 1, t->path), KC_ERR_BAD_MESSAGE);
	assert_non_null(strstr(t->report, "earlier files are missing"));
	/* ...unless the previous file's last hash is given, and it is the right one. */
	{
		struct audit_verify_opts	 opts;
		char				 bad[AUDIT_HASH_LEN + 1];

		memset(&opts, 0, sizeof(opts));
		opts.after = first.hash;
		assert_int_equal(audit_verify_files_opts((char *[]){ t->path }, 1, &chain, &opts, NULL), 0);
		assert_int_equal(chain.seq, 5);
		memcpy(bad, first.hash, sizeof(bad));
		bad[0] = bad[0] == '0' ? '1' : '0';
		opts.after = bad;
		assert_int_equal(audit_verify_files_opts((char *[]){ t->path }, 1, &chain, &opts, NULL),
		    KC_ERR_BAD_MESSAGE);
		/* The daemon's start-up mode takes any start (its anchor vouches). */
		memset(&opts, 0, sizeof(opts));
		opts.any_start = true;
		assert_int_equal(audit_verify_files_opts((char *[]){ t->path }, 1, &chain, &opts, NULL), 0);
	}

	/* Wrong order: the newer file comes first, without what it continues. */
	assert_int_equal(test_verify(t, &chain, 2, t->path, rotated), KC_ERR_BAD_MESSAGE);
	assert_non_null(strstr(t->report, "earlier files are missing"));

	/* Alter the rotate record's prev: the link is broken at line 1 of the new file. */
	buf = test_slurp(t->path, &len);
	assert_non_null(p = strstr(buf, "\"prev\":\""));
	p += strlen("\"prev\":\"");
	*p = *p == '0' ? '1' : '0';
	test_spew(t->path, buf, len);
	free(buf);
	assert_int_equal(test_verify(t, &chain, 2, rotated, t->path), KC_ERR_BAD_MESSAGE);
	assert_int_equal(chain.bad_line, 1);
	assert_non_null(strstr(t->report, "audit.log:1: broken link"));
	free(rotated);
}

/*
 * Issue 12: the keyed, anchored chain, with a software HMAC standing in for the HSM and an
 * in-memory anchor standing in for the store.
 */
struct test_seal {
	unsigned char	 key[32];
	bool		 anchored;
	uint64_t	 seq;
	char		 hash[AUDIT_HASH_LEN + 1];
	int		 puts;
	bool		 fail_put;
};

static int
test_seal_mac(void *arg, const void *data, size_t len, uint8_t mac[AUDIT_MAC_LEN])
{
	struct test_seal	*ts = arg;
	unsigned int		 n = 0;

	if (HMAC(EVP_sha256(), ts->key, sizeof(ts->key), data, len, mac, &n) == NULL ||
	    n != AUDIT_MAC_LEN)
		return KC_ERR_CRYPTO;
	return 0;
}

static int
test_seal_get(void *arg, uint64_t *seq, char *hash)
{
	struct test_seal	*ts = arg;

	if (!ts->anchored)
		return KC_ERR_NOT_FOUND;
	*seq = ts->seq;
	memcpy(hash, ts->hash, sizeof(ts->hash));
	return 0;
}

static int
test_seal_put(void *arg, uint64_t seq, const char *hash)
{
	struct test_seal	*ts = arg;

	if (ts->fail_put)
		return KC_ERR_STORE;
	ts->anchored = true;
	ts->seq = seq;
	memcpy(ts->hash, hash, sizeof(ts->hash));
	ts->puts++;
	return 0;
}

static struct test_seal	 tseal;
static struct audit_seal tas = {
	test_seal_mac, test_seal_get, test_seal_put, &tseal, false
};

static void
test_seal_reset(void)
{
	memset(&tseal, 0, sizeof(tseal));
	memset(tseal.key, 0x5a, sizeof(tseal.key));
	tas.accept = false;
}

/* audit_open() with the test seal; *cause kept for the caller (freed by it). */
static int
test_open_sealed(struct test_ctx *t, struct audit **ap, char **cause)
{
	*cause = NULL;
	return audit_open(t->path, &tas, ap, cause);
}

/* Write n records to a new keyed log at t->path and close it. */
static void
test_fill_sealed(struct test_ctx *t, int n)
{
	struct audit	*a = NULL;
	char		*cause = NULL, id[32];
	int		 i;

	assert_int_equal(test_open_sealed(t, &a, &cause), 0);
	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "id-%d", i);
		assert_int_equal(test_record(a, "0123456789abcdef0123456789abcdef", id), 0);
	}
	audit_close(a);
}

/* Online verification of t->path alone, with the test key (or another one). */
static int
test_verify_online(struct test_ctx *t, struct audit_chain *chain, bool wrong_key)
{
	struct audit_verify_opts	 opts;
	struct test_seal		 other;
	FILE				*f;
	size_t				 len;
	int				 r;

	memset(&opts, 0, sizeof(opts));
	other = tseal;
	memset(other.key, 0x33, sizeof(other.key));
	opts.mac = test_seal_mac;
	opts.mac_arg = wrong_key ? &other : &tseal;
	free(t->report);
	t->report = NULL;
	assert_non_null(f = open_memstream(&t->report, &len));
	r = audit_verify_files_opts((char *[]){ t->path }, 1, chain, &opts, f);
	fclose(f);
	return r;
}

/*
 * What an attacker with write access to the file (and no key) can do: remove line k and
 * recompute the unkeyed chain (seq and prev) after it, keeping the old MAC fields.
 */
static void
test_rechain_without(const char *path, int k)
{
	char	*buf, *out, *line, *save = NULL, *dump;
	char	 prev[AUDIT_HASH_LEN + 1];
	json_t	*o;
	size_t	 len, olen = 0;
	int	 n = 0;

	buf = test_slurp(path, &len);
	assert_non_null(out = calloc(1, len + 1));
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		n++;
		if (n == k)
			continue;
		if (n > k) {
			assert_non_null(o = json_loads(line, 0, NULL));
			assert_int_equal(json_object_set_new(o, "seq", json_integer(n - 1)), 0);
			assert_int_equal(json_object_set_new(o, "prev", json_string(prev)), 0);
			assert_non_null(dump = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER));
			json_decref(o);
		} else
			assert_non_null(dump = strdup(line));
		assert_int_equal(audit_line_hash(dump, strlen(dump), prev), 0);
		memcpy(out + olen, dump, strlen(dump));
		olen += strlen(dump);
		out[olen++] = '\n';
		free(dump);
	}
	test_spew(path, out, olen);
	free(out);
	free(buf);
}

/* Every keyed line carries a MAC that the key verifies and another key does not. */
static void
test_keyed_lines(void **state)
{
	struct test_ctx		*t = *state;
	struct audit_chain	 chain;
	struct audit_verify_opts opts;
	json_t			*o;
	const char		*mac;

	test_seal_reset();
	test_fill_sealed(t, 5);
	/* Anchored at the head, once per line. */
	assert_true(tseal.anchored);
	assert_int_equal(tseal.seq, 6);
	assert_int_equal(tseal.puts, 6);
	o = test_line_json(t->path, 3);
	assert_non_null(mac = json_string_value(json_object_get(o, "mac")));
	assert_int_equal(strlen(mac), 2 * AUDIT_MAC_LEN);
	json_decref(o);

	assert_int_equal(test_verify_online(t, &chain, false), 0);
	assert_int_equal(chain.macs_checked, 6);
	assert_int_equal(chain.keyed, 6);
	assert_int_equal(chain.seq, 6);
	assert_string_equal(chain.hash, tseal.hash);
	assert_int_equal(test_verify_online(t, &chain, true), KC_ERR_BAD_MESSAGE);
	assert_non_null(strstr(t->report, ":1: wrong MAC"));
	/* Offline: structure only, and it says so through macs_checked. */
	memset(&opts, 0, sizeof(opts));
	assert_int_equal(audit_verify_files_opts((char *[]){ t->path }, 1, &chain, &opts, NULL), 0);
	assert_int_equal(chain.macs_checked, 0);
	assert_int_equal(chain.keyed, 6);
}

/* Cutting the last records is found at the next open, however the chain looks. */
static void
test_keyed_truncated(void **state)
{
	struct test_ctx		*t = *state;
	struct audit_chain	 chain;
	struct audit		*a = NULL;
	char			*buf, *cause = NULL;
	size_t			 len;

	test_seal_reset();
	test_fill_sealed(t, 6);
	buf = test_slurp(t->path, &len);
	/* Keep 5 of the 7 lines: a valid chain, both offline and online. */
	test_spew(t->path, buf, test_line_off(buf, 6));
	free(buf);
	assert_int_equal(test_verify(t, &chain, 1, t->path), 0);
	assert_int_equal(test_verify_online(t, &chain, false), 0);
	assert_int_equal(test_open_sealed(t, &a, &cause), KC_ERR_BAD_MESSAGE);
	assert_null(a);
	assert_non_null(cause);
	assert_non_null(strstr(cause, "ends at seq 5, but the store's anchor is at seq 7"));
	assert_non_null(strstr(cause, "REFUSING TO START"));
	free(cause);

	/* Emptied: refused too. */
	test_spew(t->path, "", 0);
	assert_int_equal(test_open_sealed(t, &a, &cause), KC_ERR_BAD_MESSAGE);
	assert_non_null(strstr(cause, "is empty, but the store's anchor is at seq 7"));
	free(cause);
}

/* Removing one record and recomputing the unkeyed chain: only the MACs tell. */
static void
test_keyed_rechained(void **state)
{
	struct test_ctx		*t = *state;
	struct audit_chain	 chain;
	struct audit		*a = NULL;
	char			*cause = NULL;

	test_seal_reset();
	test_fill_sealed(t, 6);
	test_rechain_without(t->path, 3);
	/* Offline the forgery passes: that is why the MACs exist. */
	assert_int_equal(test_verify(t, &chain, 1, t->path), 0);
	assert_int_equal(test_verify_online(t, &chain, false), KC_ERR_BAD_MESSAGE);
	assert_non_null(strstr(t->report, "audit.log:3: wrong MAC"));
	/* Start-up: shorter than the anchor. */
	assert_int_equal(test_open_sealed(t, &a, &cause), KC_ERR_BAD_MESSAGE);
	assert_non_null(strstr(cause, "cut from its end"));
	free(cause);
	/* And with the anchor moved along by someone who can write the store too. */
	tseal.seq = 6;
	assert_int_equal(audit_line_hash("x", 1, tseal.hash), 0);
	{
		char	*buf, *nl;
		size_t	 len, off;

		buf = test_slurp(t->path, &len);
		off = test_line_off(buf, 6);
		nl = strchr(buf + off, '\n');
		assert_int_equal(audit_line_hash(buf + off, (size_t)(nl - buf - off),
		    tseal.hash), 0);
		free(buf);
	}
	assert_int_equal(test_open_sealed(t, &a, &cause), KC_ERR_BAD_MESSAGE);
	assert_non_null(strstr(cause, "wrong MAC"));
	free(cause);
}

/* No anchor for a non-empty log, a log past its anchor, and what the operator accepts. */
static void
test_keyed_anchor_cases(void **state)
{
	struct test_ctx		*t = *state;
	struct audit_chain	 chain;
	struct audit		*a = NULL;
	json_t			*o, *acc;
	char			*cause = NULL, *buf, aside[256];
	size_t			 len;
	DIR			*d;
	struct dirent		*de;

	test_seal_reset();
	test_fill_sealed(t, 3);
	/* The crash window: synced, not anchored. Opened, anchored now. */
	tseal.seq = 3;
	buf = test_slurp(t->path, &len);
	{
		size_t	 off = test_line_off(buf, 3);
		char	*nl = strchr(buf + off, '\n');

		assert_int_equal(audit_line_hash(buf + off, (size_t)(nl - buf - off),
		    tseal.hash), 0);
	}
	free(buf);
	assert_int_equal(test_open_sealed(t, &a, &cause), 0);
	assert_int_equal(tseal.seq, 4);
	audit_close(a);

	/* A failing anchor update fails the record closed, and the file is cut back. */
	assert_int_equal(test_open_sealed(t, &a, &cause), 0);
	tseal.fail_put = true;
	assert_int_equal(test_record(a, "z", "refused"), KC_ERR_IO);
	assert_false(audit_ok(a));
	tseal.fail_put = false;
	audit_close(a);
	assert_int_equal(test_verify_online(t, &chain, false), 0);
	assert_int_equal(chain.seq, 4);

	/* The store lost its anchor: refused... */
	tseal.anchored = false;
	assert_int_equal(test_open_sealed(t, &a, &cause), KC_ERR_BAD_MESSAGE);
	assert_non_null(strstr(cause, "the store has no audit anchor"));
	free(cause);
	/* ...unless accepted: the log moves aside, a new chain records the acceptance. */
	tas.accept = true;
	assert_int_equal(test_open_sealed(t, &a, &cause), 0);
	assert_null(cause);
	audit_close(a);
	o = test_line_json(t->path, 1);
	assert_true(json_is_true(json_object_get(o, "genesis")));
	assert_non_null(acc = json_object_get(o, "accepted"));
	assert_non_null(strstr(json_string_value(json_object_get(acc, "reason")),
	    "no audit anchor"));
	assert_int_equal(json_integer_value(json_object_get(acc, "found_seq")), 4);
	snprintf(aside, sizeof(aside), "%s", json_string_value(json_object_get(acc, "file")));
	json_decref(o);
	assert_true(tseal.anchored);
	assert_int_equal(tseal.seq, 1);
	assert_int_equal(test_verify_online(t, &chain, false), 0);
	/* The old file is kept under the name the record gives. */
	assert_non_null(d = opendir(t->dir));
	len = 0;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, aside) == 0)
			len++;
	closedir(d);
	assert_int_equal(len, 1);
}

/* Hostname records name the hostname, the CSR and the certificate's fingerprint. */
static void
test_hostname_fields(void **state)
{
	struct test_ctx		*t = *state;
	struct audit		*a = test_open(t);
	struct audit_actor	 actor = { 1000, 42, "gw-cred" };
	struct audit_hostname	 h = { "shop.acme-corp.co.uk",
	    "7b163417-1d2c-4e6f-8a9b-0c1d2e3f4a5b",
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff" };
	json_t			*o;

	assert_int_equal(audit_op_hostname(a, &actor, "create_hostname", "z", "id-1", &h, 0,
	    NULL), 0);
	audit_close(a);
	o = test_line_json(t->path, 2);
	assert_string_equal(json_string_value(json_object_get(o, "hostname")), h.hostname);
	assert_string_equal(json_string_value(json_object_get(o, "csr_id")), h.csr_id);
	assert_string_equal(json_string_value(json_object_get(o, "cert_sha256")),
	    h.cert_sha256);
	json_decref(o);
}

/* Reopen after rotation and rotate twice: three files verify as one chain. */
static void
test_rotate_twice(void **state)
{
	struct test_ctx		*t = *state;
	struct audit_chain	 chain;
	struct audit		*a;
	char			*r1 = NULL, *r2 = NULL;

	a = test_open(t);
	assert_int_equal(test_record(a, "z", "one"), 0);
	assert_int_equal(audit_rotate(a, &r1), 0);
	audit_close(a);
	a = test_open(t);
	assert_int_equal(test_record(a, "z", "two"), 0);
	assert_int_equal(audit_rotate(a, &r2), 0);
	assert_int_equal(test_record(a, "z", "three"), 0);
	audit_close(a);
	assert_string_not_equal(r1, r2);

	assert_int_equal(test_verify(t, &chain, 3, r1, r2, t->path), 0);
	assert_int_equal(chain.total, 6);
	/* A file missing from the middle of the set. */
	assert_int_equal(test_verify(t, &chain, 2, r1, t->path), KC_ERR_BAD_MESSAGE);
	assert_int_equal(chain.bad_line, 1);
	free(r1);
	free(r2);
}

/* A rotation that fails keeps the old file, its name and its head. */
static void
test_rotate_failure(void **state)
{
	struct test_ctx		*t = *state;
	struct audit_chain	 chain;
	struct audit		*a = test_open(t);
	struct rlimit		 saved, rl;
	struct dirent		*de;
	DIR			*d;
	char			 head[AUDIT_HASH_LEN + 1], head2[AUDIT_HASH_LEN + 1];
	char			*rotated = NULL;
	uint64_t		 seq, seq2;
	void			(*oldsig)(int);
	int			 nfiles = 0;

	assert_int_equal(test_record(a, "z", "before"), 0);
	audit_head(a, head, &seq);
	/* The new file cannot take its rotate record. */
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
	oldsig = signal(SIGXFSZ, SIG_IGN);
	rl = saved;
	rl.rlim_cur = 10;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
	assert_int_equal(audit_rotate(a, &rotated), KC_ERR_IO);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
	signal(SIGXFSZ, oldsig);
	assert_null(rotated);
	assert_false(audit_ok(a));
	audit_head(a, head2, &seq2);
	assert_int_equal(seq2, seq);
	assert_string_equal(head2, head);

	assert_int_equal(test_record(a, "z", "after"), 0);
	assert_true(audit_ok(a));
	audit_close(a);
	assert_int_equal(test_verify(t, &chain, 1, t->path), 0);
	assert_int_equal(chain.total, 3);
	assert_non_null(d = opendir(t->dir));
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			nfiles++;
	closedir(d);
	assert_int_equal(nfiles, 1);
}

/* Writing to a full device fails closed, shows in the health, and recovers. */
static void
test_write_failure(void **state)
{
	struct test_ctx		*t = *state;
	struct audit_chain	 chain;
	struct audit		*a = test_open(t);
	char			 head[AUDIT_HASH_LEN + 1], head2[AUDIT_HASH_LEN + 1];
	uint64_t		 seq, seq2;
	int			 full, old;

	assert_int_equal(test_record(a, "z", "before"), 0);
	audit_head(a, head, &seq);
	assert_true((full = open("/dev/full", O_WRONLY | O_APPEND)) != -1);
	old = audit_test_set_fd(a, full);

	assert_true(audit_ok(a));
	assert_int_equal(test_record(a, "z", "lost"), KC_ERR_IO);
	assert_false(audit_ok(a));
	assert_int_equal(test_record(a, "z", "lost-again"), KC_ERR_IO);
	audit_head(a, head2, &seq2);
	assert_int_equal(seq2, seq);
	assert_string_equal(head2, head);

	close(audit_test_set_fd(a, old));
	assert_int_equal(test_record(a, "z", "after"), 0);
	assert_true(audit_ok(a));
	audit_close(a);

	assert_int_equal(test_verify(t, &chain, 1, t->path), 0);
	assert_int_equal(chain.total, 3);
}

/*
 * A short write (the file size limit cuts the line): the torn bytes are cut off again, the
 * record fails, and the file still verifies.
 */
static void
test_short_write(void **state)
{
	struct test_ctx		*t = *state;
	struct audit_chain	 chain;
	struct audit		*a = test_open(t);
	struct rlimit		 saved, rl;
	struct stat		 st;
	void			(*oldsig)(int);

	assert_int_equal(test_record(a, "z", "before"), 0);
	assert_int_equal(stat(t->path, &st), 0);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
	oldsig = signal(SIGXFSZ, SIG_IGN);
	rl = saved;
	rl.rlim_cur = (rlim_t)st.st_size + 10;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
	assert_int_equal(test_record(a, "z", "cut-short"), KC_ERR_IO);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
	signal(SIGXFSZ, oldsig);
	assert_false(audit_ok(a));

	assert_int_equal(test_verify(t, &chain, 1, t->path), 0);
	assert_int_equal(chain.total, 2);

	assert_int_equal(test_record(a, "z", "after"), 0);
	assert_true(audit_ok(a));
	audit_close(a);
	assert_int_equal(test_verify(t, &chain, 1, t->path), 0);
	assert_int_equal(chain.total, 3);
}

/* Files that are not logs. */
static void
test_verify_misc(void **state)
{
	struct test_ctx		*t = *state;
	struct audit_chain	 chain;

	assert_int_equal(test_verify(t, &chain, 1, t->path), KC_ERR_IO);
	test_spew(t->path, "", 0);
	assert_int_equal(test_verify(t, &chain, 1, t->path), KC_ERR_BAD_MESSAGE);
	assert_non_null(strstr(t->report, "empty file"));
	test_spew(t->path, "\n", 1);
	assert_int_equal(test_verify(t, &chain, 1, t->path), KC_ERR_BAD_MESSAGE);
	assert_int_equal(chain.bad_line, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_concurrent, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_fields, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_edit_middle, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_edit_syntax, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_edit_seq, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_delete_line, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_delete_first, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_torn, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_last, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_reopen, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_rotate, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_rotate_twice, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_rotate_failure, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_write_failure, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_short_write, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_verify_misc, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_keyed_lines, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_keyed_truncated, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_keyed_rechained, test_setup, test_teardown),
		cmocka_unit_test_setup_teardown(test_keyed_anchor_cases, test_setup,
		    test_teardown),
		cmocka_unit_test_setup_teardown(test_hostname_fields, test_setup, test_teardown),
	};

	log_init(1, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
