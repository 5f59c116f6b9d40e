/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * sign.h: the signer role (issue 16): what a signer peer may sign with (its scope), how
 * fast (a token bucket per peer uid), and what it signed (counts per key and peer, for
 * metrics and the audit log's periodic totals).
 */
#ifndef KC_SIGN_H
#define KC_SIGN_H

#include <sys/types.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define SIGN_KEY_ID_LEN		16	/* CKA_ID of a key pair (HSM_KEY_ID_LEN) */

/* One item of a signer's scope: every zone, one zone, or one hostname of one zone. */
struct sign_scope_item {
	bool		 any_zone;	/* "*" */
	char		 zone[33];	/* a zone id, "" with any_zone */
	char		*hostname;	/* NULL: every hostname of the zone; lower case */
};

struct sign_scope {
	struct sign_scope_item	*items;
	size_t			 n;
};

/**
 * Parse the scope items of a "signer = <principal> <item>..." line (text after the
 * principal): each a zone id (32 lowercase hex), "<zone>/<hostname>" or "*". At least one.
 * @retval 0, or KC_ERR_INVALID with *cause set (caller frees)
 */
int	 sign_scope_parse(const char *items, struct sign_scope *sc, char **cause);
/** Append a copy of src's items to dst. */
void	 sign_scope_merge(struct sign_scope *dst, const struct sign_scope *src);
void	 sign_scope_free(struct sign_scope *sc);
/** Whether the scope covers this hostname of this zone (hostname lower case). */
bool	 sign_scope_allows(const struct sign_scope *sc, const char *zone,
	    const char *hostname);
/** Whether the scope names at most some zones (no "*"): their ids, for the store's query. */
bool	 sign_scope_zones_only(const struct sign_scope *sc);

/*
 * The per-uid token buckets of sign_rate (loop thread only): each uid may sign rate
 * times a second on average, bursts of up to rate. rate 0: no limit.
 */
struct sign_bucket;

struct sign_limiter {
	unsigned int		 rate;
	struct sign_bucket	*buckets;	/* a list: signer uids are few */
	uint64_t		 limited;	/* requests refused, in all */
};

void	 sign_limiter_init(struct sign_limiter *l, unsigned int rate);
/** Whether uid may sign once more now (and take that token). */
bool	 sign_limiter_take(struct sign_limiter *l, uid_t uid);
void	 sign_limiter_free(struct sign_limiter *l);

/* What a sign request came to, for the counts. */
enum sign_outcome {
	SIGN_OK = 0,
	SIGN_REFUSED,	/* out of scope, no hostname, unknown key, rate limit, bad input */
	SIGN_FAILED,	/* the token failed */
	SIGN_NOUTCOMES
};

/* One (key, peer uid) pair's counts: since start-up (metrics) and since the last audit. */
struct sign_count {
	uint8_t		 key_id[SIGN_KEY_ID_LEN];
	uid_t		 uid;
	uint64_t	 total[SIGN_NOUTCOMES];
	uint64_t	 period[SIGN_NOUTCOMES];
};

/* The counts, shared by the workers (which add) and the loop (which reads). */
struct sign_stats {
	pthread_mutex_t		 mu;
	struct sign_count	*v;		/* sorted by key id, then uid */
	size_t			 n, cap;
};

void	 sign_stats_init(struct sign_stats *st);
/** Count one request; key_id NULL (not a well-formed id) counts under the zero id. */
void	 sign_stats_add(struct sign_stats *st, const uint8_t *key_id, uid_t uid,
	    enum sign_outcome o);
/**
 * A copy of every pair's counts; with period, the period counts are cleared (the audit
 * log's totals took them). Pairs with nothing in the period are left out then.
 * @param vp caller frees with free()
 */
void	 sign_stats_snapshot(struct sign_stats *st, bool period, struct sign_count **vp,
	    size_t *n);
void	 sign_stats_free(struct sign_stats *st);

#endif /* KC_SIGN_H */
