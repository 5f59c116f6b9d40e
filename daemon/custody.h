/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * custody.h: the custody lifecycle of a key and its CSR record: create, delete, undo after a
 * deadline, and start-up reconciliation. The HSM and the store are two systems with no
 * common transaction; this module alone orders the steps across them.
 *
 * The invariant: whatever step a crash interrupts, once custody_reconcile() has run every
 * record is READY with both key objects in the token, or gone with its key objects; no key
 * labelled HSM_LABEL_PREFIX is left without a record unless it is counted as an orphan. So:
 *   create:    audit begin -> record CREATING (key id chosen) -> key pair -> CSR signed and
 *              verified -> record READY -> audit outcome
 *   delete:    audit begin -> record DELETING (refused while a hostname uses it) -> key
 *              objects destroyed -> record removed -> audit outcome
 *   undo:      a READY record made for a request whose deadline passed: DELETING -> key
 *              objects destroyed -> record removed
 *   reconcile: every CREATING or DELETING record loses its key objects, then its record;
 *              keys without a record and records without a key are counted.
 *   A create whose key generation failed in a way that may have made the pair (a lost
 *   reply) destroys it by its CKA_ID at once; when the token cannot be asked, the record
 *   stays CREATING and waits in the pending list until the token is back
 *   (custody_finish_pending()), or until start-up.
 * A reply of success is sent only after the outcome is on the audit log. Nothing here knows
 * the protocol: callers map requests to these calls and results to replies.
 */
#ifndef KC_CUSTODY_H
#define KC_CUSTODY_H

#include <stddef.h>
#include <stdint.h>

#include "hsm.h"

struct audit_actor;
struct csr_subject;
struct kc_error;
struct kcd;
struct store;
struct store_csr;

/* What one thread works with, all borrowed. */
struct custody {
	struct kcd		*kcd;		/* the HSM, the audit log, the counters */
	struct hsm_session	*hs;
	struct store		*st;
};

/* A CSR to make: validated already (val_csr_fields()). Borrowed. */
struct custody_csr {
	const char			*zone_id;
	const struct csr_subject	*subject;
	enum hsm_keytype		 key_type;
	const char			*name;		/* NULL or "": none */
	const char			*description;
};

/*
 * Key destruction yields to key generation (issue 14): SoftHSM2's file backend re-reads
 * the whole token on every C_DestroyObject under its token lock, so a delete stream would
 * starve creates. Creates queued or running are counted here; a delete waits for the count
 * to reach 0 before it destroys, bounded by destroy_yield_max and the request's deadline.
 * Thread-safe.
 */
struct custody_yield;

/** A new counter; wait at most max_ms for creates (0: never). Free: custody_yield_free(). */
struct custody_yield *custody_yield_new(unsigned int max_ms);
/** NULL is a no-op. */
void	custody_yield_free(struct custody_yield *y);
/** A create was queued for a worker (call custody_yield_create_end() when it is done). */
void	custody_yield_create_begin(struct custody_yield *y);
/** A create counted by custody_yield_create_begin() finished, one way or the other. */
void	custody_yield_create_end(struct custody_yield *y);
/** Destructions that waited for creates since start-up, and creates counted now. */
uint64_t custody_yield_count(struct custody_yield *y);
unsigned int custody_yield_creates(struct custody_yield *y);

/* What start-up reconciliation found. */
/* Creates waiting for the token to say whether they made a key. Thread-safe. */
struct custody_pending;

/** An empty pending list. */
struct custody_pending *custody_pending_new(void);
/** Free it (the records stay CREATING for start-up). NULL is a no-op. */
void	custody_pending_free(struct custody_pending *p);
/** How many creates wait. */
size_t	custody_pending_count(struct custody_pending *p);
/**
 * Finish what waits in kcd->pending: destroy each one's key objects by CKA_ID, then its
 * record. What still fails stays for the next call.
 * @retval how many are left
 */
size_t	custody_finish_pending(const struct custody *c);

struct custody_report {
	uint64_t		 ready;		/* READY records */
	uint64_t		 orphans;	/* our keys that no record owns */
	uint64_t		 missing;	/* records whose private key is not in the token */
	uint8_t			*missing_ids;	/* their key ids, sorted; caller frees */
	size_t			 token_keys;	/* our private keys in the token */
};

/**
 * Make a key pair and its CSR in the steps above.
 * @param rec	out, zeroed by the caller: the READY record. Its strings are borrowed from
 *		csr but for the country (upper-cased), the CSR and the public key, which
 *		custody_csr_uninit() frees, on failure too
 * @retval 0, or a KC_ERR_*: nothing is left made, or what is left is finished at start-up
 */
int	custody_create(const struct custody *c, const struct audit_actor *actor,
	    const struct custody_csr *csr, struct store_csr *rec);
/** Free what custody_create() allocated in rec (country, CSR, public key). */
void	custody_csr_uninit(struct store_csr *rec);

/**
 * Delete the CSR id of zone and its key objects, in the steps above.
 * @retval 0; KC_ERR_NOT_FOUND (no READY record of that id in zone; err set, 1419);
 *	KC_ERR_CONFLICT (a custom hostname uses it; err set, 1420); another KC_ERR_* (the
 *	record stays DELETING and is finished at start-up)
 */
int	custody_delete(const struct custody *c, const struct audit_actor *actor,
	    const char *zone, const char *id, struct kc_error *err);

/**
 * Undo a create whose requester was told it failed (its deadline passed): the record id of
 * zone and its key objects go. A failure is logged; a record left DELETING is finished at
 * start-up.
 * @retval 0 or a KC_ERR_*
 */
int	custody_undo_create(const struct custody *c, const char *zone, const char *id);

/**
 * Start-up: finish or undo every CREATING and DELETING record, then count orphans and
 * records without a key (logged, and in report). Run before any request is answered.
 * @retval 0 or a KC_ERR_* (start-up must not go on)
 */
int	custody_reconcile(const struct custody *c, struct custody_report *report);

#endif /* KC_CUSTODY_H */
