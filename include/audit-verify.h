/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * audit-verify.h: the audit log's line format and its verifier. Pure (jansson + libcrypto,
 * no daemon state), so keycustodyctl links it without the daemon.
 */
#ifndef KC_AUDIT_VERIFY_H
#define KC_AUDIT_VERIFY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define AUDIT_HASH_LEN		64	/* hex SHA-256, without the terminator */
#define AUDIT_MAX_LINE		65536	/* bytes per line, newline excluded */
#define AUDIT_GENESIS_PREV						\
	"0000000000000000000000000000000000000000000000000000000000000000"

/*
 * The chain state carried from one file of a rotated set to the next. audit_chain_init()
 * before the first file; audit_verify_file() reads it (the previous file's head) and
 * updates it (this file's head).
 */
struct audit_chain {
	char		 hash[AUDIT_HASH_LEN + 1];	/* last line's hash, or "" */
	uint64_t	 seq;		/* last line's seq; 0 before any line */
	uint64_t	 lines;		/* lines verified in the last file */
	uint64_t	 total;		/* lines verified over every file */
	uint64_t	 bad_line;	/* first bad line of the last file, 0 if none */
};

/** Reset a chain: no file verified yet. */
void	audit_chain_init(struct audit_chain *chain);

/**
 * Hex SHA-256 of one line (its bytes without the newline).
 * @param out	AUDIT_HASH_LEN + 1 bytes, NUL-terminated on success
 * @retval 0 or KC_ERR_CRYPTO
 */
int	audit_line_hash(const void *line, size_t len, char *out);

/**
 * Parse one line's chain fields: it must be a JSON object with an integer seq >= 1 and a
 * prev of 64 lowercase hex digits.
 * @param seq	out: the line's seq
 * @param prev	out: AUDIT_HASH_LEN + 1 bytes, the line's prev
 * @param why	out: borrowed static text saying what is wrong; may be NULL
 * @retval 0 or KC_ERR_BAD_MESSAGE
 */
int	audit_line_parse(const char *line, size_t len, uint64_t *seq, char *prev,
	    const char **why);

/**
 * Verify one file of the chain: every line is a JSON object, its prev is the SHA-256 of
 * the line before it (for the first line: of the previous file's last line, given through
 * chain), and seq goes up by one. A file starts either with a genesis record (a chain's
 * beginning; refused when chain already holds a previous file) or with a rotate record
 * that names the previous file's last hash. The first problem is written to report as
 * "path:line: what" and its line number is kept in chain->bad_line.
 * @param chain	in: the previous file's head (or fresh); out: this file's head
 * @param report where problems and notes go; may be NULL
 * @retval 0 when the file is intact, KC_ERR_BAD_MESSAGE at the first broken or missing
 *	line, KC_ERR_IO when the file cannot be read, KC_ERR_NOMEM
 */
int	audit_verify_file(const char *path, struct audit_chain *chain, FILE *report);

/**
 * Verify a rotated set, oldest file first: audit_verify_file() on each with one chain.
 * @param chain	out: the head of the last file verified
 * @retval as audit_verify_file(), for the first file that fails
 */
int	audit_verify_files(char *const *paths, int npaths, struct audit_chain *chain,
	    FILE *report);

#endif /* KC_AUDIT_VERIFY_H */
