/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * kcd.h: the daemon's shared state, handed to every module by pointer.
 */
#ifndef KC_KCD_H
#define KC_KCD_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "metrics.h"
#include "sign.h"

struct event_base;
struct audit;
struct cert_store;
struct hsm;
struct kc_conf;
struct control;
struct custody_pending;
struct custody_yield;
struct dispatch;
struct pool;

/* The token operations that custody.c times, by key type (KCD_KEYTYPE_NONE: not known). */
enum kcd_hsm_op {
	KCD_HSM_KEYGEN = 0,
	KCD_HSM_SIGN,
	KCD_HSM_DESTROY,
	KCD_HSM_NOPS
};
#define KCD_KEYTYPE_NONE	5	/* HSM_KEY_NTYPES (checked in custody.c) */
#define KCD_NKEYTYPES		(KCD_KEYTYPE_NONE + 1)

struct kcd {
	const struct kc_conf	*conf;
	const char		*store_path;
	const char		*instance;	/* conf->instance: owner of our records */
	struct hsm		*hsm;
	struct audit		*audit;		/* the tamper-evident audit log */
	struct cert_store	*certs;		/* trust store for uploads */
	struct event_base	*base;
	struct dispatch		*disp;		/* the request table and its workers */
	struct pool		*pool;		/* dispatch's worker pool */
	struct control		*control;
	time_t			 started;
	int			 store_ok;		/* last store probe succeeded */
	_Atomic uint64_t	 keys_in_custody;	/* READY records */
	_Atomic uint64_t	 records_missing_key;	/* found at start-up */
	_Atomic uint64_t	 orphan_keys;		/* found at start-up */
	_Atomic uint64_t	 creates_over_quota;	/* refused by zone_key_quota */
	uint8_t			*missing_ids;		/* sorted key ids of those records */
	size_t			 nmissing;		/* read-only after start-up */
	struct custody_pending	*pending;		/* creates waiting for the token */
	struct metrics_hist	 hsm_ops[KCD_HSM_NOPS][KCD_NKEYTYPES];
	_Atomic uint64_t	 reconciled_records;	/* removed by start-up reconciliation */
	_Atomic uint64_t	 resolved_creates;	/* pending creates removed later */
	struct custody_yield	*yield;			/* deletes wait for creates */
	/* The signer role (issue 16): its rate limit (loop) and its counts (workers). */
	struct sign_limiter	 sign_limiter;
	struct sign_stats	 sign_stats;
	struct event		*sign_audit_ev;		/* the periodic audited totals */
};

#endif /* KC_KCD_H */
