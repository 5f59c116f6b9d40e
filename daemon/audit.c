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
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

struct audit {
	pthread_mutex_t	 mtx;
	char		*path;
	int		 fd;
	off_t		 size;		/* bytes of whole, synced records */
	bool		 dirty;		/* a failed write may have left bytes */
	bool		 ok;		/* the last write succeeded */
	uint64_t	 seq;		/* seq of the last line */
	char		 head[AUDIT_HASH_LEN + 1];	/* last line's hash */
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
    const char *prev_file, char **linep, size_t *lenp)
{
	json_t	*o = NULL, *actor = NULL;
	char	 now[64];
	char	*s = NULL, *line;
	size_t	 len;
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
	    audit_set(o, "result", audit_result(ev->error)) != 0 ||
	    (genesis && audit_set(o, "genesis", json_true()) != 0) ||
	    (prev_file != NULL && audit_set(o, "prev_file", audit_str(prev_file)) != 0) ||
	    audit_set(o, "prev", json_string(a->head)) != 0)
		goto out;
	if ((s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
		goto out;
	if ((len = strlen(s)) > AUDIT_MAX_LINE) {
		r = KC_ERR_INVALID;
		goto out;
	}
	if ((line = malloc(len + 1)) == NULL)
		goto out;
	memcpy(line, s, len);
	line[len] = '\n';
	*linep = line;
	*lenp = len + 1;
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
static int
audit_write_inlock(struct audit *a, const char *line, size_t len)
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
	a->size += (off_t)len;
	a->seq++;
	memcpy(a->head, hash, sizeof(a->head));
	if (!a->ok)
		log_info("audit: writing to %s again", a->path);
	a->ok = true;
	return 0;
}

/* Write a record of the daemon itself (genesis, rotate). */
static int
audit_self_inlock(struct audit *a, const char *op, bool genesis, const char *prev_file)
{
	struct audit_event	 ev;
	char			*line;
	size_t			 len;
	int			 r;

	memset(&ev, 0, sizeof(ev));
	ev.op = op;
	ev.uid = getuid();
	ev.pid = getpid();
	if ((r = audit_line_new_inlock(a, &ev, genesis, prev_file, &line, &len)) != 0)
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

int
audit_open(const char *path, struct audit **ap, char **cause)
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
	if (a->size == 0) {
		log_info("audit: starting a new chain in %s", path);
		if ((r = audit_self_inlock(a, "genesis", true, NULL)) != 0 ||
		    (r = audit_sync_dir(path)) != 0) {
			if (asprintf(cause, "%s: cannot write the genesis record: %s", path,
			    kc_strerror(r)) == -1)
				*cause = NULL;
			goto fail;
		}
	} else if ((r = audit_recover(a, cause)) != 0)
		goto fail;
	log_info("audit: %s open at seq %llu, head %s", path, (unsigned long long)a->seq,
	    a->head);
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
	if ((r = audit_line_new_inlock(a, ev, false, NULL, &line, &len)) == 0) {
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

int
audit_op(struct audit *a, const struct audit_actor *actor, const char *op, const char *zone,
    const char *id, const uint8_t *key_id, size_t key_id_len, int r,
    const struct kc_error *err)
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
	if ((r = audit_self_inlock(a, "rotate", false, base)) != 0 ||
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
