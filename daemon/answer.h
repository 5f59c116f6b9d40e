/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * answer.h: what the answer_<op>() handlers share: their signature and small helpers.
 * Private to dispatch.c and the answer-*.c files.
 */
#ifndef KC_ANSWER_H
#define KC_ANSWER_H

#include <stddef.h>
#include <stdint.h>

#include "kc-proto.h"
#include "store.h"

struct kc_error;
struct worker;

typedef int (*disp_fn)(struct worker *, const Keycustody__Request *,
    Keycustody__Response *, struct kc_error *);

int	answer_create_hostname(struct worker *, const Keycustody__Request *,
	    Keycustody__Response *, struct kc_error *);
int	answer_list_hostnames(struct worker *, const Keycustody__Request *,
	    Keycustody__Response *, struct kc_error *);
int	answer_get_hostname(struct worker *, const Keycustody__Request *,
	    Keycustody__Response *, struct kc_error *);
int	answer_update_hostname(struct worker *, const Keycustody__Request *,
	    Keycustody__Response *, struct kc_error *);
int	answer_delete_hostname(struct worker *, const Keycustody__Request *,
	    Keycustody__Response *, struct kc_error *);

/** A random (version 4) lowercase UUID. @retval 0 or KC_ERR_CRYPTO */
int	disp_uuid(char out[STORE_ID_LEN + 1]);
/** Now, in microseconds since the epoch. */
int64_t	disp_now_us(void);
/** Lowercase hex of n bytes into out (2n + 1 bytes). */
void	disp_hex(const uint8_t *b, size_t n, char *out);
/** 0, or KC_ERR_INVALID with err set (7003) when zone is not a zone id. */
int	disp_check_zone(const char *zone, struct kc_error *err);
/**
 * Page and per_page of a list request (has_* flags as in the protocol): defaults, bounds.
 * @retval 0 or KC_ERR_INVALID with err set (6008)
 */
int	disp_pagination(int has_page, uint32_t page, int has_per_page, uint32_t per_page,
	    unsigned int *pagep, unsigned int *per_pagep, struct kc_error *err);
/** Whether the key of this CSR record was missing from the token at start-up. */
int	disp_key_missing(const struct worker *w, const uint8_t *key_id);

/*
 * How a record's fields get into its reply message: copied (the record stays whole), moved
 * (the record's malloc'd strings and arrays go to the message, their fields left NULL for
 * the record's free function), or, for a record read into the worker's arena, moved with
 * the message itself built in the arena (answer_list_csrs(); disp_finish() detaches it).
 */
enum disp_how { DISP_COPY, DISP_MOVE, DISP_ARENA };

/** A string field of a record for its message: a malloc'd copy, or the string moved out. */
char	*disp_str(char **sp, enum disp_how how);
/** Record an operation in the audit trail. @retval 0, or KC_ERR_IO (fail closed) */
int	disp_audit(struct worker *w, const Keycustody__Request *req, const char *op,
	    const char *zone, const char *id, const uint8_t *key_id, int r,
	    const struct kc_error *err);

#endif /* KC_ANSWER_H */
