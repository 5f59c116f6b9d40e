/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * audit-verify.h: the audit log's line format and its verifier. Pure (jansson + libcrypto,
 * no daemon state), so keycustodyctl links it without the daemon.
 */
#ifndef KC_AUDIT_VERIFY_H
#define KC_AUDIT_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define AUDIT_HASH_LEN		64	/* hex SHA-256, without the terminator */
#define AUDIT_MAX_LINE		65536	/* bytes per line, newline excluded */
#define AUDIT_GENESIS_PREV						\
	"0000000000000000000000000000000000000000000000000000000000000000"
#define AUDIT_MAC_LEN		32	/* HMAC-SHA256 */
/*
 * A keyed line ends with ,"mac":"<64 hex>"} and its MAC is over the line without that
 * field: the bytes before ,"mac" followed by "}". prev is the SHA-256 of the whole previous
 * line, MAC included, so the MAC of one line vouches for every line before it.
 */
#define AUDIT_MAC_SUFFIX_LEN	(sizeof(",\"mac\":\"") - 1 + 2 * AUDIT_MAC_LEN + 2)

/**
 * The keyed MAC of a record (the daemon: HMAC-SHA256 with a key held in the HSM).
 * @retval 0 or a KC_ERR_*
 */
typedef int (*audit_mac_fn)(void *arg, const void *data, size_t len,
    uint8_t mac[AUDIT_MAC_LEN]);

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
	uint64_t	 keyed;		/* lines carrying a MAC, over every file */
	uint64_t	 macs_checked;	/* of those, MACs checked (opts->mac given) */
};

/* How to verify; a NULL opts is offline and strict (the first file must be a genesis). */
struct audit_verify_opts {
	audit_mac_fn	 mac;		/* NULL: offline, MACs not checked */
	void		*mac_arg;
	uint64_t	 mac_from;	/* with mac: check the MAC of every line of seq >= this,
					   and refuse such a line without one */
	const char	*after;		/* NULL, or the hash of the line before the first
					   file: that file may then continue a chain */
	bool		 any_start;	/* the first file may continue any chain unchecked
					   (the daemon's start-up: its anchor vouches) */
	uint64_t	 find_seq;	/* 0, or a seq whose line's hash goes to found */
	char		 found[AUDIT_HASH_LEN + 1];	/* out: "" when not met */
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
 * that names the previous file's last hash. A rotate record at the start of the first file
 * is refused (earlier files missing) unless opts->after gives the hash it must link to, or
 * opts->any_start. A "mac" field must be the line's last and well-formed; with opts->mac
 * it must be present and right from opts->mac_from on. The first problem is written to
 * report as "path:line: what" and its line number is kept in chain->bad_line.
 * @param chain	in: the previous file's head (or fresh); out: this file's head
 * @param report where problems and notes go; may be NULL
 * @retval 0 when the file is intact, KC_ERR_BAD_MESSAGE at the first broken or missing
 *	line, KC_ERR_IO when the file cannot be read, KC_ERR_NOMEM
 */
int	audit_verify_file(const char *path, struct audit_chain *chain, FILE *report);
/** audit_verify_file() with options (NULL: as audit_verify_file()). */
int	audit_verify_file_opts(const char *path, struct audit_chain *chain,
	    struct audit_verify_opts *opts, FILE *report);

/**
 * Verify a rotated set, oldest file first: audit_verify_file() on each with one chain.
 * @param chain	out: the head of the last file verified
 * @retval as audit_verify_file(), for the first file that fails
 */
int	audit_verify_files(char *const *paths, int npaths, struct audit_chain *chain,
	    FILE *report);
/** audit_verify_files() with options (NULL: as audit_verify_files()). */
int	audit_verify_files_opts(char *const *paths, int npaths, struct audit_chain *chain,
	    struct audit_verify_opts *opts, FILE *report);

#endif /* KC_AUDIT_VERIFY_H */
