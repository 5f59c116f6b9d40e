/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * audit.c: owns the audit log file: appending hash-chained JSON lines, recovering the chain
 * head at startup, rotation that keeps the chain, and the log's health.
 *
 * Every record is built in memory, hashed, and written with one write(2) on an O_APPEND
 * descriptor, then fdatasync()ed, all under one mutex so that the chain stays linear. A write
 * or sync that fails is cut off again with ftruncate() so the file never keeps a torn or
 * unsynced line that the chain does not account for; if even that fails, every later record
 * first retries the cut and fails closed until it works.
 *
 * With a seal (the daemon), each line ends with an HMAC-SHA256 made in the HSM, and each
 * synced line moves the anchor (seq and hash of the head) kept in the store before the
 * record counts as written; audit_open() checks the file against that anchor (issue 12).
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "audit-verify.h"
#include "audit.h"
#include "kc-err.h"
#include "kc-util.h"
#include "log.h"
#include "metrics.h"

static char	*audit_rotated_name(const char *);

struct audit {
	pthread_mutex_t	 mtx;
	char		*path;
	int		 fd;
	off_t		 size;		/* bytes of whole, synced records */
	bool		 dirty;		/* a failed write may have left bytes */
	bool		 ok;		/* the last write succeeded */
	uint64_t	 seq;		/* seq of the last line */
	char		 head[AUDIT_HASH_LEN + 1];	/* last line's hash */
	const struct audit_seal *seal;	/* NULL: unkeyed, unanchored */
	struct metrics_hist writes;	/* audit_write_inlock(), its sync and anchor */
	_Atomic uint64_t write_failures;
};

/* Current time as RFC 3339 UTC with microseconds: 2026-01-02T03:04:05.123456Z. */
static void
audit_time(char *buf, size_t len)
{
	struct timespec	 ts;
	struct tm	 tm;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || gmtime_r(&ts.tv_sec, &tm) == NULL) {
		memset(&tm, 0, sizeof(tm));
		ts.tv_nsec = 0;
	}
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
}

/*
 * A JSON string for s. Request fields should be UTF-8; if one is not, it is written with
 * every byte outside printable ASCII (and the backslash) as \xHH rather than dropped.
 */
static json_t *
audit_str(const char *s)
{
	static const char	 hex[] = "0123456789abcdef";
	json_t			*j;
	char			*e;
	size_t			 i, n = 0;
	unsigned char		 c;

	if ((j = json_string(s)) != NULL)
		return j;
	if ((e = malloc(strlen(s) * 4 + 1)) == NULL)
		return NULL;
	for (i = 0; s[i] != '\0'; i++) {
		c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			e[n++] = (char)c;
		else {
			e[n++] = '\\';
			e[n++] = 'x';
			e[n++] = hex[c >> 4];
			e[n++] = hex[c & 0xf];
		}
	}
	e[n] = '\0';
	j = json_string(e);
	free(e);
	return j;
}

/* Set key to value (stolen) unless value is NULL; returns -1 on failure. */
static int
audit_set(json_t *o, const char *key, json_t *value)
{
	if (value == NULL)
		return -1;
	return json_object_set_new(o, key, value);
}

/* The result field: "ok" or {"status": ..., "code": ...}. */
static json_t *
audit_result(const struct kc_error *err)
{
	json_t	*o;

	if (err == NULL || err->status == KC_STATUS_OK)
		return json_string("ok");
	if ((o = json_object()) == NULL)
		return NULL;
	if (audit_set(o, "status", json_string(kc_status_name(err->status))) != 0 ||
	    (err->code != 0 && audit_set(o, "code", json_integer(err->code)) != 0)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Hex of a byte string, for key ids. */
static json_t *
audit_hex(const uint8_t *p, size_t len)
{
	json_t			*j;
	char			*s;

	if (len > AUDIT_MAX_LINE || (s = malloc(len * 2 + 1)) == NULL)
		return NULL;
	kc_hex(p, len, s);
	j = json_string(s);
	free(s);
	return j;
}

/*
 * Build the line for ev as the next record of the chain: seq and prev come from a. genesis
 * marks a chain's first record; prev_file (or NULL) names the file a rotate record follows.
 * On success *linep (caller frees) holds the line and its newline, *lenp its length with it.
 */
static int
audit_line_new_inlock(struct audit *a, const struct audit_event *ev, bool genesis,
    const char *prev_file, json_t *extra, char **linep, size_t *lenp)
{
	json_t	*o = NULL, *actor = NULL;
	uint8_t	 mac[AUDIT_MAC_LEN];
	char	 now[64], machex[2 * AUDIT_MAC_LEN + 1];
	char	*s = NULL, *line;
	size_t	 len, total;
	int	 r = KC_ERR_NOMEM;

	*linep = NULL;
	if (ev->op == NULL || *ev->op == '\0')
		return KC_ERR_INVALID;
	audit_time(now, sizeof(now));
	/* Insertion order is the order in the line; o owns actor once it is set. */
	if ((o = json_object()) == NULL ||
	    audit_set(o, "time", json_string(now)) != 0 ||
	    audit_set(o, "seq", json_integer((json_int_t)(a->seq + 1))) != 0)
		goto out;
	actor = json_object();
	if (audit_set(o, "actor", actor) != 0 ||
	    audit_set(actor, "uid", json_integer((json_int_t)ev->uid)) != 0 ||
	    audit_set(actor, "pid", json_integer((json_int_t)ev->pid)) != 0 ||
	    (ev->credential != NULL &&
	    audit_set(actor, "credential", audit_str(ev->credential)) != 0) ||
	    audit_set(o, "op", audit_str(ev->op)) != 0 ||
	    (ev->zone != NULL && audit_set(o, "zone", audit_str(ev->zone)) != 0) ||
	    (ev->id != NULL && audit_set(o, "id", audit_str(ev->id)) != 0) ||
	    (ev->key_id != NULL && ev->key_id_len > 0 &&
	    audit_set(o, "key_id", audit_hex(ev->key_id, ev->key_id_len)) != 0) ||
	    (ev->hostname != NULL && audit_set(o, "hostname", audit_str(ev->hostname)) != 0) ||
	    (ev->csr_id != NULL && audit_set(o, "csr_id", audit_str(ev->csr_id)) != 0) ||
	    (ev->cert_sha256 != NULL &&
	    audit_set(o, "cert_sha256", audit_str(ev->cert_sha256)) != 0) ||
	    (ev->sign_counts != NULL && (
	    audit_set(o, "signed", json_integer((json_int_t)ev->sign_counts[0])) != 0 ||
	    audit_set(o, "refused", json_integer((json_int_t)ev->sign_counts[1])) != 0 ||
	    audit_set(o, "failed", json_integer((json_int_t)ev->sign_counts[2])) != 0 ||
	    audit_set(o, "period_s", json_integer((json_int_t)ev->period_s)) != 0)) ||
	    audit_set(o, "result", audit_result(ev->error)) != 0 ||
	    (genesis && audit_set(o, "genesis", json_true()) != 0) ||
	    (extra != NULL && json_object_update(o, extra) != 0) ||
	    (prev_file != NULL && audit_set(o, "prev_file", audit_str(prev_file)) != 0) ||
	    audit_set(o, "prev", json_string(a->head)) != 0)
		goto out;
	if ((s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
		goto out;
	len = strlen(s);
	total = len + (a->seal != NULL ? AUDIT_MAC_SUFFIX_LEN - 1 : 0);
	if (total > AUDIT_MAX_LINE) {
		r = KC_ERR_INVALID;
		goto out;
	}
	/* The MAC is over the line as dumped; ,"mac":"..." then takes the final '}'s place. */
	if (a->seal != NULL) {
		if ((r = a->seal->mac(a->seal->arg, s, len, mac)) != 0) {
			log_warnx("audit: cannot make the record's MAC: %s", kc_strerror(r));
			goto out;
		}
		kc_hex(mac, sizeof(mac), machex);
		r = KC_ERR_NOMEM;
	}
	if ((line = malloc(total + 1)) == NULL)
		goto out;
	if (a->seal != NULL)
		snprintf(line, total + 1, "%.*s,\"mac\":\"%s\"}", (int)(len - 1), s, machex);
	else
		memcpy(line, s, len);
	line[total] = '\n';
	*linep = line;
	*lenp = total + 1;
	r = 0;
out:
	free(s);
	json_decref(o);
	return r;
}

/* Mark the log unhealthy after a failed write; errno is logged. */
static void
audit_fail_inlock(struct audit *a, const char *what)
{
	log_warn("audit: %s %s", what, a->path);
	a->ok = false;
}

/* Cut the file back to its last whole record; false if that failed. */
static bool
audit_cut_inlock(struct audit *a)
{
	if (ftruncate(a->fd, a->size) != 0) {
		log_warn("audit: cannot cut %s back to %lld bytes after a failed write; "
		    "refusing records until it can", a->path, (long long)a->size);
		a->dirty = true;
		return false;
	}
	a->dirty = false;
	return true;
}

/*
 * Append one finished line (with its newline) and sync it; on success the chain head moves
 * to it. Any failure leaves the file as it was (or marks it dirty) and the head unmoved.
 */
static int audit_write_timed_inlock(struct audit *, const char *, size_t);

/* audit_write_timed_inlock(), its time and its failure counted for metrics. */
static int
audit_write_inlock(struct audit *a, const char *line, size_t len)
{
	struct timespec	 t0;
	int		 r;

	metrics_now(&t0);
	if ((r = audit_write_timed_inlock(a, line, len)) != 0)
		atomic_fetch_add(&a->write_failures, 1);
	metrics_hist_since(&a->writes, &t0);
	return r;
}

static int
audit_write_timed_inlock(struct audit *a, const char *line, size_t len)
{
	char	 hash[AUDIT_HASH_LEN + 1];
	ssize_t	 n;
	int	 r;

	if ((r = audit_line_hash(line, len - 1, hash)) != 0)
		return r;
	if (a->dirty && !audit_cut_inlock(a)) {
		a->ok = false;
		return KC_ERR_IO;
	}
	do {
		n = write(a->fd, line, len);
	} while (n == -1 && errno == EINTR);
	if (n == -1) {
		audit_fail_inlock(a, "cannot write to");
		return KC_ERR_IO;
	}
	if ((size_t)n != len) {
		/* A torn line: remove it, or the next record would be glued to it. */
		log_warnx("audit: short write to %s (%zd of %zu bytes)", a->path, n, len);
		a->ok = false;
		audit_cut_inlock(a);
		return KC_ERR_IO;
	}
	if (fdatasync(a->fd) != 0) {
		/* The line may never reach the disk: drop it, the caller refuses. */
		audit_fail_inlock(a, "cannot sync");
		audit_cut_inlock(a);
		return KC_ERR_IO;
	}
	/* Anchored before it counts: a record the store does not vouch for is cut again. */
	if (a->seal != NULL && (r = a->seal->anchor_put(a->seal->arg, a->seq + 1, hash)) != 0) {
		log_warnx("audit: cannot move the anchor to seq %llu: %s; record dropped",
		    (unsigned long long)(a->seq + 1), kc_strerror(r));
		a->ok = false;
		audit_cut_inlock(a);
		return KC_ERR_IO;
	}
	a->size += (off_t)len;
	a->seq++;
	memcpy(a->head, hash, sizeof(a->head));
	if (!a->ok)
		log_info("audit: writing to %s again", a->path);
	a->ok = true;
	return 0;
}

/* Write a record of the daemon itself (genesis, rotate); extra (borrowed) adds fields. */
static int
audit_self_inlock(struct audit *a, const char *op, bool genesis, const char *prev_file,
    json_t *extra)
{
	struct audit_event	 ev;
	char			*line;
	size_t			 len;
	int			 r;

	memset(&ev, 0, sizeof(ev));
	ev.op = op;
	ev.uid = getuid();
	ev.pid = getpid();
	if ((r = audit_line_new_inlock(a, &ev, genesis, prev_file, extra, &line, &len)) != 0)
		return r;
	r = audit_write_inlock(a, line, len);
	free(line);
	return r;
}

/* fsync the directory holding path, so that a created or renamed entry is durable. */
static int
audit_sync_dir(const char *path)
{
	const char	*slash;
	char		*dir;
	int		 fd, r = 0;

	if ((slash = strrchr(path, '/')) == NULL)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (dir == NULL)
		return KC_ERR_NOMEM;
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 || fsync(fd) != 0) {
		log_warn("audit: cannot sync directory %s", dir);
		r = KC_ERR_IO;
	}
	if (fd != -1)
		close(fd);
	free(dir);
	return r;
}

/*
 * Recover the chain head from the last line of a non-empty file: it must end with a newline
 * and be an audit record.
 */
static int
audit_recover(struct audit *a, char **cause)
{
	char		*buf, *start;
	char		 prev[AUDIT_HASH_LEN + 1];
	const char	*why;
	size_t		 want, len;
	ssize_t		 n;
	int		 r = KC_ERR_BAD_MESSAGE;

	want = a->size > AUDIT_MAX_LINE + 1 ? AUDIT_MAX_LINE + 2 : (size_t)a->size;
	if ((buf = malloc(want + 1)) == NULL)
		return KC_ERR_NOMEM;
	n = pread(a->fd, buf, want, a->size - (off_t)want);
	if (n != (ssize_t)want) {
		if (asprintf(cause, "%s: cannot read the last line: %s", a->path,
		    n == -1 ? strerror(errno) : "short read") == -1)
			*cause = NULL;
		r = KC_ERR_IO;
		goto out;
	}
	buf[want] = '\0';
	if (buf[want - 1] != '\n') {
		if (asprintf(cause, "%s: the last line is torn (no newline at the end): the "
		    "daemon stopped mid-write or the file was truncated; check it with "
		    "'keycustodyctl audit verify' and repair or move it aside", a->path) == -1)
			*cause = NULL;
		goto out;
	}
	buf[want - 1] = '\0';
	if ((start = memrchr(buf, '\n', want - 1)) != NULL)
		start++;
	else if ((size_t)a->size == want)
		start = buf;
	else {
		if (asprintf(cause, "%s: the last line is longer than %d bytes: not an audit "
		    "record", a->path, AUDIT_MAX_LINE) == -1)
			*cause = NULL;
		goto out;
	}
	len = (size_t)(buf + want - 1 - start);
	if (audit_line_parse(start, len, &a->seq, prev, &why) != 0) {
		if (asprintf(cause, "%s: the last line is not an audit record (%s): it was "
		    "edited or torn; check it with 'keycustodyctl audit verify'", a->path,
		    why) == -1)
			*cause = NULL;
		goto out;
	}
	r = audit_line_hash(start, len, a->head);
out:
	free(buf);
	return r;
}

/* Create the log file at a->path (it must not exist) as a->fd; false with *cause set. */
static bool
audit_create_file(struct audit *a, char **cause)
{
	a->fd = open(a->path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (a->fd == -1) {
		if (asprintf(cause, "%s: cannot create: %s", a->path, strerror(errno)) == -1)
			*cause = NULL;
		return false;
	}
	a->size = 0;
	return true;
}

/*
 * The start-up check of a keyed log against its anchor. 0: the file is the anchored chain
 * (a->seq and a->head are its head; a head past the anchor, whose MACs are right, is the
 * crash window between a record's sync and the anchor's move and is anchored now).
 * KC_ERR_BAD_MESSAGE: the check failed, *problem (caller frees) says how, and *found_seq
 * and found_hash what the file ends with (0 and "" when unknown). Anything else: the check
 * could not be made (the store, the HSM, the file), *cause set.
 */
static int
audit_check(struct audit *a, bool anchored, uint64_t aseq, const char *ahash,
    char **problem, uint64_t *found_seq, char *found_hash, char **cause)
{
	struct audit_verify_opts opts;
	struct audit_chain	 chain;
	FILE			*f;
	char			*report = NULL;
	size_t			 rlen = 0;
	int			 r, pr = 0;

	*problem = NULL;
	*found_seq = 0;
	found_hash[0] = '\0';
	if (a->size == 0) {
		if (!anchored)
			return 0;
		pr = asprintf(problem, "%s is empty, but the store's anchor is at seq %llu "
		    "(hash %s): the log was deleted, emptied or replaced", a->path,
		    (unsigned long long)aseq, ahash);
		goto bad;
	}
	/* Without an anchor the check fails anyway; its MACs would say nothing more. */
	memset(&opts, 0, sizeof(opts));
	opts.mac = anchored ? a->seal->mac : NULL;
	opts.mac_arg = a->seal->arg;
	opts.mac_from = aseq;
	opts.any_start = true;
	opts.find_seq = aseq;
	audit_chain_init(&chain);
	if ((f = open_memstream(&report, &rlen)) == NULL)
		return KC_ERR_NOMEM;
	r = audit_verify_file_opts(a->path, &chain, &opts, f);
	fclose(f);
	if (rlen > 0 && report[rlen - 1] == '\n')
		report[rlen - 1] = '\0';
	if (chain.lines > 0) {
		*found_seq = chain.seq;
		memcpy(found_hash, chain.hash, AUDIT_HASH_LEN + 1);
	}
	if (r != 0 && r != KC_ERR_BAD_MESSAGE) {
		if (asprintf(cause, "%s: cannot check the log: %s", a->path,
		    report != NULL && *report != '\0' ? report : kc_strerror(r)) == -1)
			*cause = NULL;
		free(report);
		return r;
	}
	if (r == KC_ERR_BAD_MESSAGE)
		pr = asprintf(problem, "%s", report != NULL ? report : "broken");
	else if (!anchored)
		pr = asprintf(problem, "%s holds %llu record(s), but the store has no audit "
		    "anchor: the store was replaced or reset, or the log predates the keyed, "
		    "anchored chain", a->path, (unsigned long long)chain.lines);
	else if (chain.seq < aseq)
		pr = asprintf(problem, "%s ends at seq %llu, but the store's anchor is at seq "
		    "%llu: %llu record(s) were cut from its end", a->path,
		    (unsigned long long)chain.seq, (unsigned long long)aseq,
		    (unsigned long long)(aseq - chain.seq));
	else if (strcmp(opts.found, ahash) != 0)
		pr = asprintf(problem, "%s: the record at seq %llu is not the anchored one "
		    "(hash %s, anchored %s): the log was rewritten", a->path,
		    (unsigned long long)aseq, opts.found[0] != '\0' ? opts.found : "none",
		    ahash);
	free(report);
	if (*problem != NULL || pr == -1)
		goto bad;
	a->seq = chain.seq;
	memcpy(a->head, chain.hash, sizeof(a->head));
	if (chain.seq > aseq) {
		log_warnx("audit: %s has %llu record(s) past the store's anchor (seq %llu), "
		    "with right MACs: written before a crash could move the anchor; anchoring "
		    "seq %llu", a->path, (unsigned long long)(chain.seq - aseq),
		    (unsigned long long)aseq, (unsigned long long)chain.seq);
		if ((r = a->seal->anchor_put(a->seal->arg, a->seq, a->head)) != 0) {
			if (asprintf(cause, "cannot move the audit anchor: %s",
			    kc_strerror(r)) == -1)
				*cause = NULL;
			return r;
		}
	}
	return 0;
 bad:
	if (pr == -1) {
		*problem = NULL;
		return KC_ERR_NOMEM;
	}
	return KC_ERR_BAD_MESSAGE;
}

/*
 * The operator accepted a log that failed the check (seal->accept): move it aside and
 * begin a new chain whose genesis record says what was found and what was anchored, so
 * that the acceptance is itself in the (keyed, anchored) trail.
 */
static int
audit_accept(struct audit *a, const char *problem, bool anchored, uint64_t aseq,
    const char *ahash, uint64_t fseq, const char *fhash, char **cause)
{
	json_t		*acc = NULL, *extra = NULL;
	char		*aside = NULL;
	const char	*base;
	int		 r = KC_ERR_NOMEM;

	log_warnx("audit: ACCEPTED by the operator (--accept-audit-log): %s", problem);
	if (a->size > 0) {
		if ((aside = audit_rotated_name(a->path)) == NULL ||
		    rename(a->path, aside) != 0) {
			if (asprintf(cause, "%s: cannot move the log aside: %s", a->path,
			    strerror(errno)) == -1)
				*cause = NULL;
			r = KC_ERR_IO;
			goto out;
		}
		log_warnx("audit: the log that failed the check is kept as %s; a new chain "
		    "begins in %s", aside, a->path);
		close(a->fd);
		a->fd = -1;
		if (!audit_create_file(a, cause)) {
			r = KC_ERR_IO;
			goto out;
		}
	}
	a->seq = 0;
	memcpy(a->head, AUDIT_GENESIS_PREV, sizeof(a->head));
	base = aside == NULL ? NULL : strrchr(aside, '/') != NULL ? strrchr(aside, '/') + 1 :
	    aside;
	if ((acc = json_object()) == NULL || (extra = json_object()) == NULL ||
	    audit_set(acc, "reason", audit_str(problem)) != 0 ||
	    (base != NULL && audit_set(acc, "file", audit_str(base)) != 0) ||
	    (anchored && (audit_set(acc, "anchor_seq", json_integer((json_int_t)aseq)) != 0 ||
	    audit_set(acc, "anchor_hash", json_string(ahash)) != 0)) ||
	    (fhash[0] != '\0' && (audit_set(acc, "found_seq",
	    json_integer((json_int_t)fseq)) != 0 ||
	    audit_set(acc, "found_hash", json_string(fhash)) != 0)) ||
	    json_object_set(extra, "accepted", acc) != 0)
		goto out;
	if ((r = audit_self_inlock(a, "genesis", true, NULL, extra)) != 0 ||
	    (r = audit_sync_dir(a->path)) != 0) {
		if (asprintf(cause, "%s: cannot write the acceptance record: %s", a->path,
		    kc_strerror(r)) == -1)
			*cause = NULL;
		goto out;
	}
	r = 0;
 out:
	json_decref(acc);
	json_decref(extra);
	free(aside);
	return r;
}

/* audit_open() with a seal: the anchor, the check, and what the operator accepted. */
static int
audit_open_sealed(struct audit *a, char **cause)
{
	char		 ahash[AUDIT_HASH_LEN + 1], fhash[AUDIT_HASH_LEN + 1];
	char		*problem = NULL;
	uint64_t	 aseq = 0, fseq = 0;
	bool		 anchored;
	int		 r;

	ahash[0] = '\0';
	r = a->seal->anchor_get(a->seal->arg, &aseq, ahash);
	if (r != 0 && r != KC_ERR_NOT_FOUND) {
		if (asprintf(cause, "cannot read the audit anchor from the store: %s",
		    kc_strerror(r)) == -1)
			*cause = NULL;
		return r;
	}
	anchored = r == 0;
	r = audit_check(a, anchored, aseq, ahash, &problem, &fseq, fhash, cause);
	if (r == KC_ERR_BAD_MESSAGE && a->seal->accept)
		r = audit_accept(a, problem, anchored, aseq, ahash, fseq, fhash, cause);
	else if (r == KC_ERR_BAD_MESSAGE) {
		if (asprintf(cause, "%s. REFUSING TO START: the audit trail may have been "
		    "tampered with. Keep the file as evidence, check it with 'keycustodyd "
		    "--verify-audit', and only then start once with --accept-audit-log to "
		    "move it aside and begin a new chain (that acceptance is recorded)",
		    problem) == -1)
			*cause = NULL;
	} else if (r == 0 && a->size == 0) {
		log_info("audit: starting a new chain in %s", a->path);
		if ((r = audit_self_inlock(a, "genesis", true, NULL, NULL)) != 0 ||
		    (r = audit_sync_dir(a->path)) != 0) {
			if (asprintf(cause, "%s: cannot write the genesis record: %s", a->path,
			    kc_strerror(r)) == -1)
				*cause = NULL;
		}
	}
	free(problem);
	return r;
}

int
audit_open(const char *path, const struct audit_seal *seal, struct audit **ap,
    char **cause)
{
	struct audit	*a;
	struct stat	 st;
	int		 r;

	*ap = NULL;
	*cause = NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL || (a->path = strdup(path)) == NULL) {
		free(a);
		return KC_ERR_NOMEM;
	}
	a->fd = -1;
	a->ok = true;
	a->seal = seal;
	memcpy(a->head, AUDIT_GENESIS_PREV, sizeof(a->head));
	if ((r = pthread_mutex_init(&a->mtx, NULL)) != 0) {
		free(a->path);
		free(a);
		return KC_ERR_NOMEM;
	}
	a->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (a->fd == -1 || fstat(a->fd, &st) != 0) {
		r = KC_ERR_IO;
		if (asprintf(cause, "%s: %s", path, strerror(errno)) == -1)
			*cause = NULL;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		r = KC_ERR_IO;
		if (asprintf(cause, "%s: not a regular file", path) == -1)
			*cause = NULL;
		goto fail;
	}
	if ((st.st_mode & 077) != 0)
		log_warnx("audit: %s is accessible to group or others (mode %04o)", path,
		    (unsigned int)(st.st_mode & 07777));
	a->size = st.st_size;
	if (seal != NULL) {
		if ((r = audit_open_sealed(a, cause)) != 0)
			goto fail;
	} else if (a->size == 0) {
		log_info("audit: starting a new chain in %s", path);
		if ((r = audit_self_inlock(a, "genesis", true, NULL, NULL)) != 0 ||
		    (r = audit_sync_dir(path)) != 0) {
			if (asprintf(cause, "%s: cannot write the genesis record: %s", path,
			    kc_strerror(r)) == -1)
				*cause = NULL;
			goto fail;
		}
	} else if ((r = audit_recover(a, cause)) != 0)
		goto fail;
	log_info("audit: %s open at seq %llu, head %s%s", path, (unsigned long long)a->seq,
	    a->head, seal != NULL ? " (keyed, anchored)" : "");
	*ap = a;
	return 0;
fail:
	audit_close(a);
	return r;
}

int
audit_record(struct audit *a, const struct audit_event *ev)
{
	char	*line;
	size_t	 len;
	int	 r;

	return_val_if_fail(a != NULL && ev != NULL, KC_ERR_INVALID);
	pthread_mutex_lock(&a->mtx);
	if ((r = audit_line_new_inlock(a, ev, false, NULL, NULL, &line, &len)) == 0) {
		r = audit_write_inlock(a, line, len);
		free(line);
	}
	pthread_mutex_unlock(&a->mtx);
	return r;
}

/* The name the current file gets: "<path>.<UTC time>", made unique with "-N". */
static char *
audit_rotated_name(const char *path)
{
	struct timespec	 ts;
	struct tm	 tm;
	struct stat	 st;
	char		*name;
	char		 stamp[64];
	int		 i, rc;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || gmtime_r(&ts.tv_sec, &tm) == NULL)
		return NULL;
	snprintf(stamp, sizeof(stamp), "%04d%02d%02dT%02d%02d%02d.%06ldZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
	for (i = 0; i < 1000; i++) {
		if (i == 0)
			rc = asprintf(&name, "%s.%s", path, stamp);
		else
			rc = asprintf(&name, "%s.%s-%d", path, stamp, i);
		if (rc == -1)
			return NULL;
		if (lstat(name, &st) == -1 && errno == ENOENT)
			return name;
		free(name);
	}
	errno = EEXIST;
	return NULL;
}

/* Record one operation: the actor, the result r and err, h's fields when given. */
static int
audit_op_event(struct audit *a, const struct audit_actor *actor, const char *op,
    const char *zone, const char *id, const uint8_t *key_id, size_t key_id_len,
    const struct audit_hostname *h, int r, const struct kc_error *err)
{
	struct audit_event	 ev;
	struct kc_error		 e;
	int			 ar;

	memset(&ev, 0, sizeof(ev));
	ev.op = op;
	if (actor != NULL) {
		ev.uid = actor->uid;
		ev.pid = actor->pid;
		if (actor->credential != NULL && *actor->credential != '\0')
			ev.credential = actor->credential;
	}
	ev.zone = zone;
	ev.id = id;
	ev.key_id = key_id;
	ev.key_id_len = key_id != NULL ? key_id_len : 0;
	if (h != NULL) {
		ev.hostname = h->hostname;
		ev.csr_id = h->csr_id != NULL && *h->csr_id != '\0' ? h->csr_id : NULL;
		ev.cert_sha256 = h->cert_sha256 != NULL && *h->cert_sha256 != '\0' ?
		    h->cert_sha256 : NULL;
	}
	if (r != 0) {
		if (err == NULL || err->status == KC_STATUS_OK) {
			kc_error_from(&e, r);
			err = &e;
		}
		ev.error = err;
	}
	if ((ar = audit_record(a, &ev)) != 0) {
		log_warnx("audit log: %s not recorded (%s); refusing", op, kc_strerror(ar));
		return KC_ERR_UNAVAILABLE;
	}
	return 0;
}

int
audit_op(struct audit *a, const struct audit_actor *actor, const char *op, const char *zone,
    const char *id, const uint8_t *key_id, size_t key_id_len, int r,
    const struct kc_error *err)
{
	return audit_op_event(a, actor, op, zone, id, key_id, key_id_len, NULL, r, err);
}

int
audit_op_hostname(struct audit *a, const struct audit_actor *actor, const char *op,
    const char *zone, const char *id, const struct audit_hostname *h, int r,
    const struct kc_error *err)
{
	return audit_op_event(a, actor, op, zone, id, NULL, 0, h, r, err);
}

int
audit_rotate(struct audit *a, char **rotated_out)
{
	char		*rotated = NULL;
	char		 oldhead[AUDIT_HASH_LEN + 1];
	const char	*base;
	off_t		 oldsize;
	uint64_t	 oldseq;
	int		 oldfd, newfd, r = KC_ERR_IO;

	return_val_if_fail(a != NULL, KC_ERR_INVALID);
	if (rotated_out != NULL)
		*rotated_out = NULL;
	pthread_mutex_lock(&a->mtx);
	if (a->dirty && !audit_cut_inlock(a))
		goto out;
	if ((rotated = audit_rotated_name(a->path)) == NULL) {
		log_warn("audit: cannot name the rotated file for %s", a->path);
		goto out;
	}
	if (rename(a->path, rotated) != 0) {
		log_warn("audit: cannot rename %s to %s", a->path, rotated);
		goto out;
	}
	newfd = open(a->path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (newfd == -1) {
		log_warn("audit: cannot create %s", a->path);
		if (rename(rotated, a->path) != 0)
			log_warn("audit: cannot rename %s back to %s", rotated, a->path);
		goto out;
	}
	oldfd = a->fd;
	oldsize = a->size;
	oldseq = a->seq;
	memcpy(oldhead, a->head, sizeof(oldhead));
	a->fd = newfd;
	a->size = 0;
	base = strrchr(rotated, '/') != NULL ? strrchr(rotated, '/') + 1 : rotated;
	if ((r = audit_self_inlock(a, "rotate", false, base, NULL)) != 0 ||
	    (r = audit_sync_dir(a->path)) != 0) {
		/* Keep writing to the old file, under its old name, from its head. */
		close(newfd);
		a->fd = oldfd;
		a->size = oldsize;
		a->seq = oldseq;
		memcpy(a->head, oldhead, sizeof(a->head));
		a->dirty = false;
		if (unlink(a->path) != 0 || rename(rotated, a->path) != 0)
			log_warn("audit: cannot move %s back to %s", rotated, a->path);
		/* The rotate record may have moved the anchor: back to the old head. */
		if (a->seal != NULL && a->seq > 0 &&
		    a->seal->anchor_put(a->seal->arg, a->seq, a->head) != 0)
			log_warnx("audit: cannot move the anchor back to seq %llu",
			    (unsigned long long)a->seq);
		a->ok = false;
		goto out;
	}
	close(oldfd);
	log_info("audit: rotated %s to %s at seq %llu, head %s", a->path, rotated,
	    (unsigned long long)a->seq, a->head);
	if (rotated_out != NULL) {
		*rotated_out = rotated;
		rotated = NULL;
	}
out:
	pthread_mutex_unlock(&a->mtx);
	free(rotated);
	return r;
}

bool
audit_ok(struct audit *a)
{
	bool	 ok;

	return_val_if_fail(a != NULL, false);
	pthread_mutex_lock(&a->mtx);
	ok = a->ok;
	pthread_mutex_unlock(&a->mtx);
	return ok;
}

void
audit_head(struct audit *a, char *hash, uint64_t *seq)
{
	pthread_mutex_lock(&a->mtx);
	memcpy(hash, a->head, AUDIT_HASH_LEN + 1);
	*seq = a->seq;
	pthread_mutex_unlock(&a->mtx);
}

void
audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	if (a->fd != -1) {
		if (a->seq > 0)
			log_info("audit: closing %s at seq %llu, head %s", a->path,
			    (unsigned long long)a->seq, a->head);
		close(a->fd);
	}
	pthread_mutex_destroy(&a->mtx);
	free(a->path);
	free(a);
}

int
audit_test_set_fd(struct audit *a, int fd)
{
	int	 old;

	pthread_mutex_lock(&a->mtx);
	old = a->fd;
	a->fd = fd;
	pthread_mutex_unlock(&a->mtx);
	return old;
}

const struct metrics_hist *
audit_write_latency(const struct audit *a)
{
	static struct metrics_hist	 none;	/* no log: no writes */

	return a != NULL ? &a->writes : &none;
}

uint64_t
audit_write_failures(const struct audit *a)
{
	return a != NULL ? atomic_load(&a->write_failures) : 0;
}
