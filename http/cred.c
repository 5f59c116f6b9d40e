/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * cred.c: the shim's API credentials: the credentials file, secret hashing, lookups in
 * constant time and the zone/access check.
 */
#include "config.h"

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "kc-err.h"
#include "cred.h"

#define CRED_FILE_MAX	(1024 * 1024)
#define CRED_MAX_FIELDS	7

struct cred_table {
	struct cred	*creds;
	size_t		 n;
};

static void
cred_cause(char **cause, const char *fmt, ...)
    __attribute__((__format__(__printf__, 2, 3)));

static void
cred_cause(char **cause, const char *fmt, ...)
{
	va_list	 ap;

	if (cause == NULL)
		return;
	free(*cause);
	va_start(ap, fmt);
	if (vasprintf(cause, fmt, ap) == -1)
		*cause = NULL;
	va_end(ap);
}

static int
cred_valid_name(const char *s)
{
	size_t	 n = strlen(s), i;

	if (n == 0 || n > CRED_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		if (!isalnum((unsigned char)s[i]) && strchr("._@+-", s[i]) == NULL)
			return 0;
	}
	return 1;
}

static int
cred_valid_email(const char *s)
{
	size_t	 n = strlen(s), i;

	if (n < 3 || n > CRED_EMAIL_MAX || strchr(s, '@') == NULL)
		return 0;
	for (i = 0; i < n; i++) {
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	}
	return 1;
}

int
cred_valid_zone(const char *s)
{
	size_t	 i;

	for (i = 0; i < CRED_ZONE_LEN; i++) {
		if (!isdigit((unsigned char)s[i]) && (s[i] < 'a' || s[i] > 'f'))
			return 0;
	}
	return s[i] == '\0';
}

static int
cred_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
cred_parse_hash(const char *s, uint8_t out[CRED_HASH_LEN])
{
	size_t	 i;
	int	 hi, lo;

	if (strlen(s) != 2 * CRED_HASH_LEN)
		return KC_ERR_INVALID;
	for (i = 0; i < CRED_HASH_LEN; i++) {
		if ((hi = cred_hexval(s[2 * i])) < 0 || (lo = cred_hexval(s[2 * i + 1])) < 0)
			return KC_ERR_INVALID;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* Parse "*" or "zone,zone,..." into c. */
static int
cred_parse_zones(char *s, struct cred *c)
{
	char	*z, *last;
	size_t	 n = 1;

	if (strcmp(s, "*") == 0) {
		c->all_zones = 1;
		return 0;
	}
	for (z = s; *z != '\0'; z++)
		n += *z == ',';
	if ((c->zones = calloc(n, sizeof(*c->zones))) == NULL)
		return KC_ERR_NOMEM;
	for (z = strtok_r(s, ",", &last); z != NULL; z = strtok_r(NULL, ",", &last)) {
		if (!cred_valid_zone(z))
			return KC_ERR_INVALID;
		memcpy(c->zones[c->nzones++], z, CRED_ZONE_LEN + 1);
	}
	if (c->nzones == 0 || c->nzones != n)
		return KC_ERR_INVALID;
	return 0;
}

/* Parse one non-empty line (modified in place) into c. */
static int
cred_parse_line(char *line, struct cred *c, const char **why)
{
	char	*f[CRED_MAX_FIELDS], *p, *last;
	size_t	 nf = 0;
	int	 r;

	for (p = strtok_r(line, " \t\r", &last); p != NULL;
	    p = strtok_r(NULL, " \t\r", &last)) {
		if (nf == CRED_MAX_FIELDS) {
			*why = "too many fields";
			return KC_ERR_INVALID;
		}
		f[nf++] = p;
	}
	if (nf < 5) {
		*why = "too few fields";
		return KC_ERR_INVALID;
	}
	if (!cred_valid_name(f[0])) {
		*why = "invalid name";
		return KC_ERR_INVALID;
	}
	snprintf(c->name, sizeof(c->name), "%s", f[0]);
	if (strcmp(f[1], "token") == 0 && nf == 5)
		c->type = CRED_TOKEN;
	else if (strcmp(f[1], "key") == 0 && nf == 6) {
		c->type = CRED_KEY;
		if (!cred_valid_email(f[5])) {
			*why = "invalid email";
			return KC_ERR_INVALID;
		}
		snprintf(c->email, sizeof(c->email), "%s", f[5]);
	} else {
		*why = "type must be 'token' (5 fields) or 'key' (6 fields)";
		return KC_ERR_INVALID;
	}
	if (cred_parse_hash(f[2], c->hash) != 0) {
		*why = "hash must be 64 hex characters";
		return KC_ERR_INVALID;
	}
	if ((r = cred_parse_zones(f[3], c)) != 0) {
		*why = "zones must be '*' or a comma list of 32-hex zone ids";
		return r;
	}
	if (strcmp(f[4], "read") == 0)
		c->access = CRED_READ;
	else if (strcmp(f[4], "write") == 0)
		c->access = CRED_WRITE;
	else {
		*why = "access must be 'read' or 'write'";
		return KC_ERR_INVALID;
	}
	return 0;
}

void
cred_table_free(struct cred_table *t)
{
	size_t	 i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++)
		free(t->creds[i].zones);
	free(t->creds);
	free(t);
}

const struct cred *
cred_lookup(const struct cred_table *t, const char *name)
{
	size_t	 i;

	for (i = 0; t != NULL && i < t->n; i++) {
		if (strcmp(t->creds[i].name, name) == 0)
			return &t->creds[i];
	}
	return NULL;
}

size_t
cred_count(const struct cred_table *t)
{
	return t != NULL ? t->n : 0;
}

int
cred_parse(const char *text, size_t len, struct cred_table **tp, char **cause)
{
	struct cred_table	*t = NULL;
	struct cred		*c, *nc;
	const char		*why = NULL;
	char			*copy = NULL, *line, *next, *hash;
	size_t			 lineno = 0, i;
	int			 r;

	*tp = NULL;
	if (memchr(text, '\0', len) != NULL) {
		cred_cause(cause, "NUL byte in credentials");
		return KC_ERR_INVALID;
	}
	if ((copy = strndup(text, len)) == NULL ||
	    (t = calloc(1, sizeof(*t))) == NULL) {
		r = KC_ERR_NOMEM;
		goto out;
	}
	for (line = copy; line != NULL; line = next) {
		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if ((hash = strchr(line, '#')) != NULL)
			*hash = '\0';
		if (line[strspn(line, " \t\r")] == '\0')
			continue;
		if ((nc = reallocarray(t->creds, t->n + 1, sizeof(*nc))) == NULL) {
			r = KC_ERR_NOMEM;
			goto out;
		}
		t->creds = nc;
		c = &t->creds[t->n++];
		memset(c, 0, sizeof(*c));
		if ((r = cred_parse_line(line, c, &why)) != 0) {
			if (r == KC_ERR_INVALID)
				cred_cause(cause, "line %zu: %s", lineno, why);
			goto out;
		}
		for (i = 0; i + 1 < t->n; i++) {
			if (strcmp(t->creds[i].name, c->name) == 0) {
				cred_cause(cause, "line %zu: duplicate name %s", lineno,
				    c->name);
				r = KC_ERR_INVALID;
				goto out;
			}
		}
	}
	*tp = t;
	t = NULL;
	r = 0;
 out:
	cred_table_free(t);
	free(copy);
	return r;
}

int
cred_load(const char *path, struct cred_table **tp, char **cause)
{
	int	 fd, r;

	*tp = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		cred_cause(cause, "%s: %s", path, strerror(errno));
		return KC_ERR_IO;
	}
	r = cred_load_fd(fd, path, tp, cause);
	close(fd);
	return r;
}

int
cred_load_fd(int fd, const char *path, struct cred_table **tp, char **cause)
{
	struct stat	 st;
	char		*buf = NULL;
	ssize_t		 n;
	size_t		 off = 0;
	int		 r;

	*tp = NULL;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		cred_cause(cause, "%s: not a regular file", path);
		return KC_ERR_IO;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		cred_cause(cause, "%s: writable by group or others", path);
		return KC_ERR_IO;
	}
	if (st.st_size > CRED_FILE_MAX) {
		cred_cause(cause, "%s: too large", path);
		return KC_ERR_IO;
	}
	if (lseek(fd, 0, SEEK_SET) == -1) {
		cred_cause(cause, "%s: %s", path, strerror(errno));
		return KC_ERR_IO;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
		return KC_ERR_NOMEM;
	while (off < (size_t)st.st_size) {
		n = read(fd, buf + off, (size_t)st.st_size - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	r = cred_parse(buf, off, tp, cause);
	free(buf);
	return r;
}

int
cred_hash(const char *secret, size_t len, uint8_t out[CRED_HASH_LEN])
{
	unsigned int	 n = 0;

	if (EVP_Digest(secret, len, out, &n, EVP_sha256(), NULL) != 1 ||
	    n != CRED_HASH_LEN)
		return KC_ERR_CRYPTO;
	return 0;
}

const struct cred *
cred_find_token(const struct cred_table *t, const char *token)
{
	const struct cred	*found = NULL;
	uint8_t			 h[CRED_HASH_LEN];
	size_t			 i;

	if (t == NULL || cred_hash(token, strlen(token), h) != 0)
		return NULL;
	/* Compare with every entry so that timing says nothing about which one matched. */
	for (i = 0; i < t->n; i++) {
		if (CRYPTO_memcmp(h, t->creds[i].hash, CRED_HASH_LEN) == 0 &&
		    t->creds[i].type == CRED_TOKEN && found == NULL)
			found = &t->creds[i];
	}
	OPENSSL_cleanse(h, sizeof(h));
	return found;
}

const struct cred *
cred_find_key(const struct cred_table *t, const char *email, const char *key)
{
	const struct cred	*found = NULL;
	uint8_t			 h[CRED_HASH_LEN];
	size_t			 i;
	int			 same_hash;

	if (t == NULL || cred_hash(key, strlen(key), h) != 0)
		return NULL;
	for (i = 0; i < t->n; i++) {
		same_hash = CRYPTO_memcmp(h, t->creds[i].hash, CRED_HASH_LEN) == 0;
		if (same_hash && t->creds[i].type == CRED_KEY &&
		    strcasecmp(t->creds[i].email, email) == 0 && found == NULL)
			found = &t->creds[i];
	}
	OPENSSL_cleanse(h, sizeof(h));
	return found;
}

int
cred_allows(const struct cred *c, const char *zone, int write)
{
	size_t	 i;

	if (c == NULL || zone == NULL)
		return 0;
	if (write && c->access != CRED_WRITE)
		return 0;
	if (c->all_zones)
		return 1;
	for (i = 0; i < c->nzones; i++) {
		if (strcmp(c->zones[i], zone) == 0)
			return 1;
	}
	return 0;
}

/* base64url without padding; 30 bytes make exactly 40 characters. */
static void
cred_b64url(const uint8_t *in, size_t len, char *out)
{
	static const char	 a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t			 i;
	uint32_t		 v;

	for (i = 0; i + 3 <= len; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*out++ = a[v >> 18 & 63];
		*out++ = a[v >> 12 & 63];
		*out++ = a[v >> 6 & 63];
		*out++ = a[v & 63];
	}
	*out = '\0';
}

int
cred_new_line(const char *name, int type, const char *zones, int access,
    const char *email, char secret[CRED_SECRET_LEN + 1], char **line, char **cause)
{
	struct cred	 c;
	uint8_t		 raw[CRED_SECRET_BYTES], h[CRED_HASH_LEN];
	char		 hex[2 * CRED_HASH_LEN + 1], *zcopy = NULL;
	size_t		 i;
	int		 r, n;

	*line = NULL;
	memset(&c, 0, sizeof(c));
	if (name == NULL || !cred_valid_name(name)) {
		cred_cause(cause, "invalid name (1 to %d of A-Za-z0-9._@+-)", CRED_NAME_MAX);
		return KC_ERR_INVALID;
	}
	if (type == CRED_KEY && (email == NULL || !cred_valid_email(email))) {
		cred_cause(cause, "invalid or missing email");
		return KC_ERR_INVALID;
	}
	if (type != CRED_KEY && type != CRED_TOKEN) {
		cred_cause(cause, "invalid type");
		return KC_ERR_INVALID;
	}
	if (access != CRED_READ && access != CRED_WRITE) {
		cred_cause(cause, "access must be read or write");
		return KC_ERR_INVALID;
	}
	if (zones == NULL || (zcopy = strdup(zones)) == NULL)
		return zones == NULL ? KC_ERR_INVALID : KC_ERR_NOMEM;
	r = cred_parse_zones(zcopy, &c);
	free(c.zones);
	free(zcopy);
	if (r != 0) {
		if (r == KC_ERR_INVALID)
			cred_cause(cause, "zones must be '*' or a comma list of 32-hex ids");
		return r;
	}
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return KC_ERR_CRYPTO;
	cred_b64url(raw, sizeof(raw), secret);
	OPENSSL_cleanse(raw, sizeof(raw));
	if ((r = cred_hash(secret, CRED_SECRET_LEN, h)) != 0)
		return r;
	for (i = 0; i < CRED_HASH_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", h[i]);
	if (type == CRED_KEY)
		n = asprintf(line, "%s key %s %s %s %s\n", name, hex, zones,
		    access == CRED_WRITE ? "write" : "read", email);
	else
		n = asprintf(line, "%s token %s %s %s\n", name, hex, zones,
		    access == CRED_WRITE ? "write" : "read");
	if (n == -1) {
		*line = NULL;
		return KC_ERR_NOMEM;
	}
	return 0;
}
