/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * audit-verify.c: owns the audit log's chain rules (line hash, chain fields) and the verifier
 * that walks a file or a rotated set of files. No daemon dependencies: keycustodyctl links it.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <jansson.h>

#include "audit-verify.h"
#include "kc-err.h"
#include "kc-util.h"

void
audit_chain_init(struct audit_chain *chain)
{
	memset(chain, 0, sizeof(*chain));
}

int
audit_line_hash(const void *line, size_t len, char *out)
{
	unsigned char		 md[EVP_MAX_MD_SIZE];
	unsigned int		 mdlen = 0;

	if (EVP_Digest(line, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen * 2 != AUDIT_HASH_LEN)
		return KC_ERR_CRYPTO;
	kc_hex(md, mdlen, out);
	return 0;
}

/* True if s is exactly AUDIT_HASH_LEN lowercase hex digits. */
static bool
audit_verify_is_hash(const char *s)
{
	size_t	 i;

	for (i = 0; i < AUDIT_HASH_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[AUDIT_HASH_LEN] == '\0';
}

/*
 * Parse a line into a JSON object and check the fields every record has (time, seq, op,
 * prev). Returns the object (caller json_decref()s) or NULL with *why set.
 */
static json_t *
audit_verify_load(const char *line, size_t len, uint64_t *seq, char *prev, const char **why)
{
	json_t		*o, *v;
	json_error_t	 jerr;
	json_int_t	 n;

	if ((o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		*why = "not valid JSON";
		return NULL;
	}
	if (!json_is_object(o)) {
		*why = "not a JSON object";
		goto bad;
	}
	v = json_object_get(o, "seq");
	if (!json_is_integer(v) || (n = json_integer_value(v)) < 1) {
		*why = "seq missing or not a positive integer";
		goto bad;
	}
	*seq = (uint64_t)n;
	v = json_object_get(o, "prev");
	if (!json_is_string(v) || !audit_verify_is_hash(json_string_value(v))) {
		*why = "prev missing or not a hex SHA-256";
		goto bad;
	}
	memcpy(prev, json_string_value(v), AUDIT_HASH_LEN + 1);
	if (!json_is_string(json_object_get(o, "time")) ||
	    !json_is_string(json_object_get(o, "op"))) {
		*why = "time or op missing";
		goto bad;
	}
	return o;
bad:
	json_decref(o);
	return NULL;
}

int
audit_line_parse(const char *line, size_t len, uint64_t *seq, char *prev, const char **why)
{
	json_t		*o;
	const char	*dummy;

	if (why == NULL)
		why = &dummy;
	if ((o = audit_verify_load(line, len, seq, prev, why)) == NULL)
		return KC_ERR_BAD_MESSAGE;
	json_decref(o);
	return 0;
}

/*
 * Read one line into buf (AUDIT_MAX_LINE + 1 bytes). Returns 1 with a line, 0 at the end of
 * the file, -1 on a read error. *len excludes the newline; *torn is set when the file ends
 * without one, *toolong when the line does not fit (the rest of it is skipped).
 */
static int
audit_verify_getline(FILE *f, char *buf, size_t *len, bool *torn, bool *toolong)
{
	int	 c;
	size_t	 n = 0;

	*torn = *toolong = false;
	while ((c = getc_unlocked(f)) != EOF && c != '\n') {
		if (n < AUDIT_MAX_LINE)
			buf[n++] = (char)c;
		else
			*toolong = true;
	}
	if (ferror(f))
		return -1;
	if (c == EOF) {
		if (n == 0 && !*toolong)
			return 0;
		*torn = true;
	}
	buf[n] = '\0';
	*len = n;
	return 1;
}

/* Report the first problem of a file; always returns KC_ERR_BAD_MESSAGE. */
static int
audit_verify_fail(struct audit_chain *chain, FILE *report, const char *path, uint64_t line,
    const char *fmt, ...) __attribute__((__format__(__printf__, 5, 6)));

static int
audit_verify_fail(struct audit_chain *chain, FILE *report, const char *path, uint64_t line,
    const char *fmt, ...)
{
	va_list	 ap;

	chain->bad_line = line;
	if (report != NULL) {
		fprintf(report, "%s:%" PRIu64 ": ", path, line);
		va_start(ap, fmt);
		vfprintf(report, fmt, ap);
		va_end(ap);
		fputc('\n', report);
	}
	return KC_ERR_BAD_MESSAGE;
}

/*
 * Check how the first line of a file starts or continues the chain: a genesis record starts
 * one, a rotate record continues the previous file's.
 */
static int
audit_verify_first(struct audit_chain *chain, const struct audit_verify_opts *opts,
    FILE *report, const char *path, json_t *o, uint64_t seq, const char *prev)
{
	const char	*op, *from;

	op = json_string_value(json_object_get(o, "op"));
	if (json_is_true(json_object_get(o, "genesis"))) {
		if (chain->hash[0] != '\0')
			return audit_verify_fail(chain, report, path, 1, "genesis record: this "
			    "file starts a new chain instead of continuing the previous file's");
		if (strcmp(prev, AUDIT_GENESIS_PREV) != 0 || seq != 1)
			return audit_verify_fail(chain, report, path, 1, "genesis record with "
			    "prev not zero or seq not 1");
		return 0;
	}
	if (strcmp(op, "rotate") != 0)
		return audit_verify_fail(chain, report, path, 1, "first line is neither a "
		    "genesis nor a rotate record: the start of the log is missing");
	from = json_string_value(json_object_get(o, "prev_file"));
	if (chain->hash[0] == '\0' && opts != NULL && opts->after != NULL) {
		/* The previous file's last hash, given by the operator (an anchor). */
		if (strcasecmp(prev, opts->after) != 0)
			return audit_verify_fail(chain, report, path, 1, "the rotate record "
			    "links to %s, not to the given --after hash %s: the earlier file "
			    "was altered or truncated, or this record was edited", prev,
			    opts->after);
		return 0;
	}
	if (chain->hash[0] == '\0') {
		if (opts != NULL && opts->any_start)
			return 0;
		/* A gap: without the earlier files the whole start is unchecked. */
		return audit_verify_fail(chain, report, path, 1, "this file continues %s (seq "
		    "%" PRIu64 ", prev %s), which was not given: the earlier files are "
		    "missing; give them first (oldest first), or the hash of the previous "
		    "file's last line with --after", from != NULL ? from : "an unnamed file",
		    seq - 1, prev);
	}
	if (strcmp(prev, chain->hash) != 0)
		return audit_verify_fail(chain, report, path, 1, "broken link: rotate record's "
		    "prev %s is not the hash %s of the previous file's last line (files out of "
		    "order, the previous file altered or truncated, or this record edited)",
		    prev, chain->hash);
	if (seq != chain->seq + 1)
		return audit_verify_fail(chain, report, path, 1, "rotate record's seq %" PRIu64
		    " does not follow the previous file's last seq %" PRIu64, seq, chain->seq);
	return 0;
}

/* Check that line n (not a file's first) follows the line before it. */
static int
audit_verify_next(struct audit_chain *chain, FILE *report, const char *path, uint64_t n,
    uint64_t seq, const char *prev)
{
	bool	 linked = strcmp(prev, chain->hash) == 0;

	if (seq == chain->seq + 1 && linked)
		return 0;
	if (seq == chain->seq + 1)
		return audit_verify_fail(chain, report, path, n - 1, "line %" PRIu64
		    " was modified: line %" PRIu64 "'s prev does not match its SHA-256 "
		    "(or line %" PRIu64 "'s prev was edited)", n - 1, n, n);
	if (linked)
		return audit_verify_fail(chain, report, path, n, "seq %" PRIu64
		    " where %" PRIu64 " was expected: the seq of this line was edited", seq,
		    chain->seq + 1);
	if (seq > chain->seq + 1)
		return audit_verify_fail(chain, report, path, n, "%" PRIu64 " line(s) missing "
		    "before this line (seq %" PRIu64 " follows %" PRIu64 ", and prev does not "
		    "match line %" PRIu64 ")", seq - chain->seq - 1, seq, chain->seq, n - 1);
	return audit_verify_fail(chain, report, path, n, "seq %" PRIu64 " does not follow %"
	    PRIu64 " and prev does not match line %" PRIu64 ": lines reordered, duplicated "
	    "or edited", seq, chain->seq, n - 1);
}

/* The value of a lowercase hex digit, -1 for anything else. */
static int
audit_verify_hexdigit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * The MAC field of a line: absent (0), or well-formed and last (1, *bodylen the length of
 * the bytes before it, mac decoded); -1 when "mac" is there in any other form.
 */
static int
audit_verify_mac_field(json_t *o, const char *line, size_t len, size_t *bodylen,
    uint8_t *mac)
{
	static const char	 pre[] = ",\"mac\":\"";
	const char		*hex;
	size_t			 i, at;
	int			 hi, lo;

	if (json_object_get(o, "mac") == NULL)
		return 0;
	if (len < AUDIT_MAC_SUFFIX_LEN + 1)
		return -1;
	at = len - AUDIT_MAC_SUFFIX_LEN;
	hex = line + at + sizeof(pre) - 1;
	if (memcmp(line + at, pre, sizeof(pre) - 1) != 0 ||
	    memcmp(hex + 2 * AUDIT_MAC_LEN, "\"}", 2) != 0)
		return -1;
	for (i = 0; i < AUDIT_MAC_LEN; i++) {
		hi = audit_verify_hexdigit(hex[2 * i]);
		lo = audit_verify_hexdigit(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	*bodylen = at;
	return 1;
}

/*
 * Check the MAC rules of line n (buf holds AUDIT_MAX_LINE + 1 bytes, the line len of
 * them). The MAC input is the line without its mac field: the body, then '}'.
 */
static int
audit_verify_mac(struct audit_chain *chain, struct audit_verify_opts *opts, FILE *report,
    const char *path, uint64_t n, json_t *o, char *buf, size_t len, uint64_t seq)
{
	uint8_t		 mac[AUDIT_MAC_LEN], want[AUDIT_MAC_LEN];
	size_t		 bodylen = 0;
	char		 saved;
	int		 has, r;

	if ((has = audit_verify_mac_field(o, buf, len, &bodylen, mac)) < 0)
		return audit_verify_fail(chain, report, path, n, "malformed mac field (it "
		    "must be the line's last, 64 lowercase hex digits): the line was edited");
	if (has)
		chain->keyed++;
	if (opts == NULL || opts->mac == NULL || seq < opts->mac_from)
		return 0;
	if (!has)
		return audit_verify_fail(chain, report, path, n, "no MAC: this line was not "
		    "written by the daemon with its key, or its MAC was removed");
	saved = buf[bodylen];
	buf[bodylen] = '}';
	r = opts->mac(opts->mac_arg, buf, bodylen + 1, want);
	buf[bodylen] = saved;
	if (r != 0) {
		if (report != NULL)
			fprintf(report, "%s:%" PRIu64 ": cannot compute the MAC: %s\n", path, n,
			    kc_strerror(r));
		chain->bad_line = n;
		return r == KC_ERR_BAD_MESSAGE ? KC_ERR_IO : r;
	}
	if (CRYPTO_memcmp(mac, want, sizeof(mac)) != 0)
		return audit_verify_fail(chain, report, path, n, "wrong MAC: the line was "
		    "written or rewritten without the daemon's key (an edited, inserted or "
		    "re-chained record)");
	chain->macs_checked++;
	return 0;
}

int
audit_verify_file(const char *path, struct audit_chain *chain, FILE *report)
{
	return audit_verify_file_opts(path, chain, NULL, report);
}

int
audit_verify_file_opts(const char *path, struct audit_chain *chain,
    struct audit_verify_opts *opts, FILE *report)
{
	FILE		*f;
	json_t		*o = NULL;
	char		*buf;
	char		 prev[AUDIT_HASH_LEN + 1];
	const char	*why;
	size_t		 len = 0;
	uint64_t	 n = 0, seq = 0;
	bool		 torn, toolong;
	int		 r = 0, got;

	chain->lines = 0;
	chain->bad_line = 0;
	if ((buf = malloc(AUDIT_MAX_LINE + 1)) == NULL)
		return KC_ERR_NOMEM;
	if ((f = fopen(path, "re")) == NULL) {
		if (report != NULL)
			fprintf(report, "%s: %s\n", path, strerror(errno));
		free(buf);
		return KC_ERR_IO;
	}
	while ((got = audit_verify_getline(f, buf, &len, &torn, &toolong)) == 1) {
		n++;
		if (torn) {
			r = audit_verify_fail(chain, report, path, n, "torn line: the file ends "
			    "without a newline (truncated, or an interrupted write)");
			goto out;
		}
		if (toolong) {
			r = audit_verify_fail(chain, report, path, n, "line longer than %d bytes",
			    AUDIT_MAX_LINE);
			goto out;
		}
		if ((o = audit_verify_load(buf, len, &seq, prev, &why)) == NULL) {
			r = audit_verify_fail(chain, report, path, n, "not an audit record (%s): "
			    "the line was edited or torn", why);
			goto out;
		}
		if (n == 1)
			r = audit_verify_first(chain, opts, report, path, o, seq, prev);
		else
			r = audit_verify_next(chain, report, path, n, seq, prev);
		if (r == 0)
			r = audit_verify_mac(chain, opts, report, path, n, o, buf, len, seq);
		json_decref(o);
		o = NULL;
		if (r != 0)
			goto out;
		if ((r = audit_line_hash(buf, len, chain->hash)) != 0)
			goto out;
		if (opts != NULL && opts->find_seq != 0 && seq == opts->find_seq)
			memcpy(opts->found, chain->hash, sizeof(opts->found));
		chain->seq = seq;
		chain->lines++;
		chain->total++;
	}
	if (got < 0) {
		if (report != NULL)
			fprintf(report, "%s:%" PRIu64 ": read error: %s\n", path, n + 1,
			    strerror(errno));
		chain->bad_line = n + 1;
		r = KC_ERR_IO;
		goto out;
	}
	if (n == 0)
		r = audit_verify_fail(chain, report, path, 1, "empty file: the genesis or "
		    "rotate record is missing");
out:
	fclose(f);
	free(buf);
	return r;
}

int
audit_verify_files(char *const *paths, int npaths, struct audit_chain *chain, FILE *report)
{
	return audit_verify_files_opts(paths, npaths, chain, NULL, report);
}

int
audit_verify_files_opts(char *const *paths, int npaths, struct audit_chain *chain,
    struct audit_verify_opts *opts, FILE *report)
{
	int	 i, r;

	audit_chain_init(chain);
	if (opts != NULL)
		opts->found[0] = '\0';
	for (i = 0; i < npaths; i++)
		if ((r = audit_verify_file_opts(paths[i], chain, opts, report)) != 0)
			return r;
	return 0;
}
