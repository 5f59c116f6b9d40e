/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * answer.h: the answer_<op>() handlers (answer-*.c), their worker context and the helpers
 * they share (answer.c). A handler maps one request to the modules that do the work and
 * their result to one Response. Private to dispatch.c and the answer*.c files.
 */
#ifndef KC_ANSWER_H
#define KC_ANSWER_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "kc-proto.h"
#include "store.h"

struct audit_actor;
struct custody;
struct hsm_session;
struct kc_error;
struct kcd;
struct peer;

/* One worker thread's context: its own PKCS#11 session, store handle and reply arena. */
struct worker {
	struct kcd		*kcd;
	struct hsm_session	*hs;
	struct store		*st;
	const struct peer	*peer;		/* of the request being answered */
	struct kc_arena		 arena;		/* a reply's body, until it is packed */
	int			 arena_body;	/* the reply being built uses the arena */
};

/* A handler on a worker: fills resp, or returns a KC_ERR_* with err set (or not). */
typedef int (*answer_fn)(struct worker *, const Keycustody__Request *,
    Keycustody__Response *, struct kc_error *);
/*
 * Undo what a handler's successful reply says it made, the requester having been told it
 * failed (its deadline passed). @retval 0 or a KC_ERR_*
 */
typedef int (*answer_undo_fn)(struct worker *, const Keycustody__Request *,
    const Keycustody__Response *);

/* answer-sign.c (the signer role, issue 16) */
int	answer_signer_keys(struct worker *, const Keycustody__Request *,
	    Keycustody__Response *, struct kc_error *);
int	answer_sign(struct worker *, const Keycustody__Request *, Keycustody__Response *,
	    struct kc_error *);
/* Audit each (key, peer uid)'s signatures since the last call, one record each (loop). */
void	answer_sign_totals(struct kcd *kcd);

/* answer-csr.c */
int	answer_create_csr(struct worker *, const Keycustody__Request *,
	    Keycustody__Response *, struct kc_error *);
int	answer_undo_create_csr(struct worker *, const Keycustody__Request *,
	    const Keycustody__Response *);
int	answer_list_csrs(struct worker *, const Keycustody__Request *,
	    Keycustody__Response *, struct kc_error *);
int	answer_get_csr(struct worker *, const Keycustody__Request *,
	    Keycustody__Response *, struct kc_error *);
int	answer_delete_csr(struct worker *, const Keycustody__Request *,
	    Keycustody__Response *, struct kc_error *);

/* answer-hostname.c */
int	answer_create_hostname(struct worker *, const Keycustody__Request *,
	    Keycustody__Response *, struct kc_error *);
int	answer_undo_create_hostname(struct worker *, const Keycustody__Request *,
	    const Keycustody__Response *);
int	answer_list_hostnames(struct worker *, const Keycustody__Request *,
	    Keycustody__Response *, struct kc_error *);
int	answer_get_hostname(struct worker *, const Keycustody__Request *,
	    Keycustody__Response *, struct kc_error *);
int	answer_update_hostname(struct worker *, const Keycustody__Request *,
	    Keycustody__Response *, struct kc_error *);
int	answer_delete_hostname(struct worker *, const Keycustody__Request *,
	    Keycustody__Response *, struct kc_error *);
/* The zone's fallback origin (API.md "fallback_origin"). */
int	answer_get_fallback_origin(struct worker *, const Keycustody__Request *,
	    Keycustody__Response *, struct kc_error *);
int	answer_update_fallback_origin(struct worker *, const Keycustody__Request *,
	    Keycustody__Response *, struct kc_error *);
int	answer_delete_fallback_origin(struct worker *, const Keycustody__Request *,
	    Keycustody__Response *, struct kc_error *);

/* answer-health.c: on the event loop, no I/O. */
void	answer_health(struct kcd *kcd, Keycustody__Response *resp);
/** The metrics request (issue 18): health and the daemon's counters; on the loop. */
void	answer_metrics(struct kcd *kcd, Keycustody__Response *resp);

/* answer.c */

/** The custody context (custody.h) of worker w. */
void	ans_custody(const struct worker *w, struct custody *c);
/** 0, or KC_ERR_INVALID with err set (7003) when zone is not a zone id. */
int	ans_check_zone(const char *zone, struct kc_error *err);
/**
 * Page and per_page of a list request (has_* flags as in the protocol): defaults, bounds.
 * @retval 0 or KC_ERR_INVALID with err set (6008)
 */
int	ans_pagination(int has_page, uint32_t page, int has_per_page, uint32_t per_page,
	    unsigned int *pagep, unsigned int *per_pagep, struct kc_error *err);
/** Whether the key of this CSR record was missing from the token at start-up. */
int	ans_key_missing(const struct worker *w, const uint8_t *key_id);

/*
 * How a record's fields get into its reply message: copied (the record stays whole), moved
 * (the record's malloc'd strings and arrays go to the message, their fields left NULL for
 * the record's free function), or, for a record read into the worker's arena, moved with
 * the message itself built in the arena (answer_list_csrs(); dispatch.c detaches it).
 */
enum ans_how { ANS_COPY, ANS_MOVE, ANS_ARENA };

/** A string field of a record for its message: a malloc'd copy, or the string moved out. */
char	*ans_str(char **sp, enum ans_how how);
/** Zeroed memory from w's arena; out of memory is fatal, as for xmalloc(). */
void	*ans_amem(struct worker *w, size_t n);
/** The Csr message of a record; the caller still frees c (unless it is in the arena). */
Keycustody__Csr *ans_csr_msg(struct worker *w, struct store_csr *c, enum ans_how how);
/** Who made req: the worker's peer and the credential req names. */
void	ans_actor(const struct worker *w, const Keycustody__Request *req,
	    struct audit_actor *actor);
/** Record an operation of req's peer in the audit trail. @retval 0, or KC_ERR_UNAVAILABLE */
int	ans_audit(struct worker *w, const Keycustody__Request *req, const char *op,
	    const char *zone, const char *id, const uint8_t *key_id, int r,
	    const struct kc_error *err);

#endif /* KC_ANSWER_H */
