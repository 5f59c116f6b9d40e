/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * audit.h: the tamper-evident audit log (DESIGN.md section 3): append-only JSON lines, each
 * carrying the SHA-256 of the line before it and, in the daemon, an HMAC-SHA256 made with a
 * key held in the HSM; written, synced and anchored in the store before the reply.
 */
#ifndef KC_AUDIT_H
#define KC_AUDIT_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit-verify.h"

struct kc_error;

struct audit;

/*
 * One event. Every pointer is borrowed for the duration of audit_record(); NULL (or 0 for
 * key_id_len) leaves the field out of the line.
 */
struct audit_event {
	const char		*op;		/* required: "create_csr", ... */
	uid_t			 uid;		/* peer credentials (SO_PEERCRED) */
	pid_t			 pid;
	const char		*credential;	/* the gateway's credential name */
	const char		*zone;
	const char		*id;
	const uint8_t		*key_id;	/* written in hex */
	size_t			 key_id_len;
	const struct kc_error	*error;		/* NULL: the result is "ok" */
	const char		*hostname;	/* custom hostname records */
	const char		*csr_id;	/* the custom CSR a hostname uses */
	const char		*cert_sha256;	/* the certificate's (leaf's) fingerprint */
	/* "sign_totals" (issue 16): one key's signatures for one peer uid in a period. */
	const uint64_t		*sign_counts;	/* signed, refused, failed; NULL: none */
	unsigned int		 period_s;
};

/*
 * How the daemon keys and anchors the chain (issue 12). mac makes each line's MAC (the key
 * never leaves the HSM); anchor_get and anchor_put read and move the chain head kept in the
 * store, outside the file. Called with the log's lock held, one call at a time, so they may
 * share one HSM session and one store handle.
 */
struct audit_seal {
	audit_mac_fn	  mac;
	int		(*anchor_get)(void *arg, uint64_t *seq, char *hash);
					/* 0, KC_ERR_NOT_FOUND (never anchored), KC_ERR_* */
	int		(*anchor_put)(void *arg, uint64_t seq, const char *hash);
	void		 *arg;
	bool		  accept;	/* the operator accepts a log that fails the check */
};

/**
 * Open (or create, mode 0600) the log at path for appending and recover the chain head
 * (hash and seq of the last line). A new or empty file gets a genesis record. Refuses a file
 * whose last line is torn or is not an audit record: the operator must look at it
 * (keycustodyctl audit verify) before the daemon appends to it.
 * With a seal (borrowed; must outlive the log) every line gets a MAC and moves the anchor,
 * and the file is checked against the anchor first: its chain must be intact, the line at
 * the anchor's seq must be the anchored one, and every line from there on (normally just
 * the last) must carry a right MAC. A log that is shorter than the anchor, rewritten,
 * emptied, or present without an anchor is refused, unless seal->accept: then it is renamed
 * aside ("<path>.<UTC time>") and a new chain begins whose genesis record says what was
 * found and what was accepted.
 * @param seal	NULL: unkeyed and unanchored (tests, fuzzing)
 * @param ap	out: the log; caller closes it with audit_close()
 * @param cause	out on failure: what is wrong, caller frees
 * @retval 0, KC_ERR_IO (cannot open, read or write), KC_ERR_BAD_MESSAGE (torn or corrupt
 *	last line; with a seal: the check failed), KC_ERR_NOMEM, or the seal's errors
 */
int	audit_open(const char *path, const struct audit_seal *seal, struct audit **ap,
	    char **cause);

/**
 * Append one record and fdatasync it. Thread-safe; records are serialized so the chain
 * stays linear. On failure nothing is left in the file and the chain head does not move:
 * the caller must refuse the operation (fail closed).
 * @retval 0; KC_ERR_IO when the line could not be written or synced (audit_ok() is then
 *	false until a write succeeds); KC_ERR_INVALID for a missing op or a line over
 *	AUDIT_MAX_LINE bytes; KC_ERR_NOMEM
 */
int	audit_record(struct audit *a, const struct audit_event *ev);

/* Who made a request: the peer's SO_PEERCRED and the credential a gateway named. */
struct audit_actor {
	uid_t			 uid;
	pid_t			 pid;
	const char		*credential;	/* NULL or "": none named */
};

/**
 * Record one operation of actor with its result r (0, or a KC_ERR_* with err, when given,
 * saying what the client was told). A write that fails is logged here.
 * @param key_id	NULL, or the key's id of key_id_len bytes
 * @retval 0, or KC_ERR_UNAVAILABLE: not recorded, and the caller must refuse (fail closed)
 */
int	audit_op(struct audit *a, const struct audit_actor *actor, const char *op,
	    const char *zone, const char *id, const uint8_t *key_id, size_t key_id_len, int r,
	    const struct kc_error *err);

/* What a custom hostname record names; each NULL leaves the field out. */
struct audit_hostname {
	const char		*hostname;
	const char		*csr_id;
	const char		*cert_sha256;
};

/** audit_op() for a custom hostname operation: the record also names h's fields. */
int	audit_op_hostname(struct audit *a, const struct audit_actor *actor, const char *op,
	    const char *zone, const char *id, const struct audit_hostname *h, int r,
	    const struct kc_error *err);

/**
 * Rotate: rename the current file to "<path>.<UTC timestamp>" and start a new file whose
 * first line is a rotate record carrying the previous file's name and, as prev, the hash of
 * its last line, so the chain continues. Thread-safe. On failure the old file is kept.
 * @param rotated_out	out, may be NULL: the new name of the old file, caller frees
 * @retval 0, KC_ERR_IO, KC_ERR_NOMEM
 */
int	audit_rotate(struct audit *a, char **rotated_out);

/** Health: false after a failed write until a write succeeds again. Thread-safe. */
bool	audit_ok(struct audit *a);

struct metrics_hist;
/** The time of each record's write (and sync), for metrics. Borrowed; any thread. */
const struct metrics_hist *audit_write_latency(const struct audit *a);
/** Record writes that failed since start-up; any thread. */
uint64_t audit_write_failures(const struct audit *a);

/**
 * Head of the chain (hash of the last line written) and its seq, for logging and for
 * anchoring outside the file.
 * @param hash	out: AUDIT_HASH_LEN + 1 bytes
 */
void	audit_head(struct audit *a, char *hash, uint64_t *seq);

/** Close the log (logs the chain head). NULL is a no-op. */
void	audit_close(struct audit *a);

/**
 * Test hook only: replace the descriptor records are written to.
 * @retval the previous descriptor; the caller owns it
 */
int	audit_test_set_fd(struct audit *a, int fd);

#endif /* KC_AUDIT_H */
