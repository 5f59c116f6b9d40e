/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * cred.h: the shim's API credentials. A credentials file holds one credential a line,
 * fields separated by blanks, '#' starts a comment:
 *
 *	<name> token <sha256-hex> <zones> <read|write>
 *	<name> key   <sha256-hex> <zones> <read|write> <email>
 *
 * <zones> is '*' (all zones) or a comma list of 32-hex zone ids. Only the SHA-256 of a
 * secret is stored: secrets are 30 random bytes (40 base64url characters), so a plain hash
 * is enough. Parsing is pure (no I/O but cred_load()), for tests and fuzzers.
 */
#ifndef KC_CRED_H
#define KC_CRED_H

#include <stddef.h>
#include <stdint.h>

#define CRED_TOKEN		1	/* Authorization: Bearer */
#define CRED_KEY		2	/* X-Auth-Email + X-Auth-Key */

#define CRED_READ		1
#define CRED_WRITE		2

#define CRED_HASH_LEN		32
#define CRED_NAME_MAX		64
#define CRED_EMAIL_MAX		254
#define CRED_SECRET_BYTES	30	/* 40 base64url characters */
#define CRED_SECRET_LEN		40
#define CRED_ZONE_LEN		32

struct cred {
	char		 name[CRED_NAME_MAX + 1];
	int		 type;			/* CRED_TOKEN, CRED_KEY */
	uint8_t		 hash[CRED_HASH_LEN];	/* SHA-256 of the secret */
	int		 access;		/* CRED_READ, CRED_WRITE */
	int		 all_zones;
	char		(*zones)[CRED_ZONE_LEN + 1];
	size_t		 nzones;
	char		 email[CRED_EMAIL_MAX + 1];	/* CRED_KEY only */
};

struct cred_table;

/**
 * Parse the text of a credentials file.
 * @param tp on success, caller frees with cred_table_free()
 * @param cause on KC_ERR_INVALID, "line N: why" (caller frees); may be NULL
 * @retval 0, KC_ERR_INVALID, KC_ERR_NOMEM
 */
int	 cred_parse(const char *text, size_t len, struct cred_table **tp, char **cause);

/**
 * Read and parse a credentials file. Refuses a file that group or others may read or write.
 * @retval 0, KC_ERR_IO (cause says why), KC_ERR_INVALID, KC_ERR_NOMEM
 */
int	 cred_load(const char *path, struct cred_table **tp, char **cause);

/**
 * cred_load() from a descriptor open on the file, read from its start (the offset is
 * moved), so that the sandboxed shim, which may not open(2), can read it again on SIGHUP.
 * @param path for messages only
 */
int	 cred_load_fd(int fd, const char *path, struct cred_table **tp, char **cause);

/** Free a table. NULL is a no-op. */
void	 cred_table_free(struct cred_table *t);

/** The credential named name. @retval borrowed, NULL when none (or t is NULL) */
const struct cred *cred_lookup(const struct cred_table *t, const char *name);

/** Number of credentials in t. */
size_t	 cred_count(const struct cred_table *t);

/**
 * Find the token credential whose hash matches token. Every entry is compared, in constant
 * time, whatever matches first.
 * @retval borrowed (valid until cred_table_free()), NULL when unknown
 */
const struct cred *cred_find_token(const struct cred_table *t, const char *token);

/** Same for an X-Auth-Email / X-Auth-Key pair (email compared case-insensitively). */
const struct cred *cred_find_key(const struct cred_table *t, const char *email,
	    const char *key);

/**
 * May c act on zone? write: the request creates or destroys something.
 * @retval 1 allowed, 0 not
 */
int	 cred_allows(const struct cred *c, const char *zone, int write);

/** SHA-256 of a secret. @retval 0 or KC_ERR_CRYPTO */
int	 cred_hash(const char *secret, size_t len, uint8_t out[CRED_HASH_LEN]);

/** Is s a zone id: 32 lowercase hex characters? */
int	 cred_valid_zone(const char *s);

/**
 * Make a new credential: a random secret and its file line.
 * @param type CRED_TOKEN or CRED_KEY (then email is required)
 * @param zones "*" or a comma list of zone ids
 * @param secret receives the secret, NUL-terminated (shown once, never stored)
 * @param line the line to append, with its '\n' (caller frees)
 * @retval 0, KC_ERR_INVALID (cause says which argument), KC_ERR_CRYPTO, KC_ERR_NOMEM
 */
int	 cred_new_line(const char *name, int type, const char *zones, int access,
	    const char *email, char secret[CRED_SECRET_LEN + 1], char **line, char **cause);

#endif /* KC_CRED_H */
