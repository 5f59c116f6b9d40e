/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * store.h: the daemon's records. store.c owns SQLite: the schema, its migrations and every
 * SQL statement; nothing outside it knows which database this is.
 *
 * Each worker thread opens its own handle (struct store) on the same file; SQLite in WAL
 * mode lets readers run beside the writer. No secret is ever stored.
 */
#ifndef KC_STORE_H
#define KC_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_ID_LEN	36	/* lowercase UUID */
#define STORE_ZONE_LEN	32	/* 32 lowercase hex */
#define STORE_KEY_ID_LEN 16

enum store_csr_state {
	STORE_CSR_CREATING = 0,	/* record written, key maybe generated, no CSR yet */
	STORE_CSR_READY,	/* key in the token, CSR signed and stored */
	STORE_CSR_DELETING	/* key destruction begun */
};

/*
 * The records the store returns (store_csr_get(), store_csr_list(), ...) are all malloc'd,
 * strings and arrays too. A caller may take a string, or the sans/hosts array with its
 * strings, by setting the field to NULL (and the count to 0): the *_free() functions free
 * what is left.
 */
struct store_csr {
	char			 id[STORE_ID_LEN + 1];
	char			 zone_id[STORE_ZONE_LEN + 1];
	int64_t			 created_at_us;	/* microseconds since the epoch, UTC */
	enum store_csr_state	 state;
	char			*key_type;	/* "rsa2048", "p256v1", ... */
	uint8_t			 key_id[STORE_KEY_ID_LEN];
	char			*country;
	char			*state_name;	/* ST */
	char			*locality;
	char			*organization;
	char			*organizational_unit;	/* NULL when absent */
	char			*common_name;
	char		       **sans;
	size_t			 nsans;
	char			*name;		/* NULL when absent */
	char			*description;	/* NULL when absent */
	uint8_t			*pubkey_der;	/* SubjectPublicKeyInfo; NULL while creating */
	size_t			 pubkey_len;
	char			*csr_pem;	/* NULL while creating */
};

/* A custom hostname: a certificate uploaded for a custom CSR's key, for one hostname. */
struct store_hostname {
	char			 id[STORE_ID_LEN + 1];
	char			 zone_id[STORE_ZONE_LEN + 1];
	char			*hostname;
	char			 csr_id[STORE_ID_LEN + 1];
	int64_t			 created_at_us;
	char			 ssl_id[STORE_ID_LEN + 1];
	char			*bundle_method;
	char			*certificate_pem;	/* leaf, then intermediates */
	char			*issuer;
	char			*serial_number;		/* decimal */
	char			*signature_alg;
	int64_t			 uploaded_on_us;
	int64_t			 not_before_us;
	int64_t			 expires_on_us;		/* the leaf's notAfter */
	char		       **hosts;			/* the leaf's DNS SANs */
	size_t			 nhosts;
	/* Migration 6: what the client set; NULL (wildcard -1): never set. */
	char			*custom_metadata;	/* JSON object of strings */
	char			*custom_origin_server;
	char			*custom_origin_sni;
	char			*ssl_method;		/* NULL: "http" */
	char			*ssl_type;		/* NULL: "dv" */
	int			 ssl_wildcard;		/* -1, 0 or 1 */
	char			*ssl_settings;		/* JSON object */
	/* Migration 8. */
	char			*certificate_uploaded;	/* PEM as uploaded (certificate_pem: the chain built) */
	char			*ssl_certificate_authority; /* NULL: never set */
};

/* The largest custom_metadata and ssl.settings stored, as compact JSON text. */
#define STORE_JSON_MAX		4096

/* What store_json_check() checks text for. */
enum store_json_kind {
	STORE_JSON_METADATA,	/* an object of strings */
	STORE_JSON_SETTINGS	/* Cloudflare's ssl.settings object */
};

struct store;

/**
 * Open (creating if needed) the store file and apply pending schema migrations.
 * WAL journal, synchronous=FULL, foreign keys on, busy timeout set.
 * @param cause on failure, a message (caller frees)
 * @retval 0 or KC_ERR_STORE
 */
int	store_open(const char *path, struct store **sp, char **cause);
/** Close the handle. NULL is a no-op. */
void	store_close(struct store *s);

/**
 * Insert a new record in state CREATING. Every field of c except pubkey/csr_pem is set.
 * @retval 0, KC_ERR_CONFLICT (id or key_id taken), KC_ERR_STORE
 */
int	store_csr_insert(struct store *s, const struct store_csr *c);

/**
 * CREATING -> READY, storing the public key and the CSR.
 * @retval 0, KC_ERR_NOT_FOUND (no such record in state CREATING), KC_ERR_STORE
 */
int	store_csr_set_ready(struct store *s, const char *id, const uint8_t *pubkey,
	    size_t publen, const char *csr_pem);

/**
 * READY -> DELETING, unless a custom hostname references the record.
 * @retval 0, KC_ERR_NOT_FOUND (unknown in this zone, or not READY), KC_ERR_CONFLICT (in use)
 */
int	store_csr_set_deleting(struct store *s, const char *zone_id, const char *id);

/** Remove the record whatever its state. @retval 0, KC_ERR_NOT_FOUND, KC_ERR_STORE */
int	store_csr_remove(struct store *s, const char *id);

/**
 * One READY record of a zone.
 * @param cp caller frees with store_csr_free()
 * @retval 0, KC_ERR_NOT_FOUND, KC_ERR_STORE
 */
int	store_csr_get(struct store *s, const char *zone_id, const char *id,
	    struct store_csr **cp);

/**
 * A page of READY records of a zone, ordered by created_at then id (descending if asked).
 * page counts from 1. A page past the end yields n = 0 and still the total.
 * @param vp caller frees with store_csr_free_array()
 */
int	store_csr_list(struct store *s, const char *zone_id, unsigned int page,
	    unsigned int per_page, bool descending, struct store_csr ***vp, size_t *n,
	    uint64_t *total);

struct kc_arena;

/**
 * store_csr_list(), ordered by name (NULL first), then created_at and id when by_name,
 * with the records, their strings and the array allocated from a (see
 * arena.h): nothing to free, everything lives until kc_arena_reset(a). A page then costs
 * no malloc in the steady state.
 */
int	store_csr_list_arena(struct store *s, const char *zone_id, unsigned int page,
	    unsigned int per_page, bool descending, bool by_name, struct kc_arena *a,
	    struct store_csr ***vp, size_t *n, uint64_t *total);

/**
 * Every record in state CREATING or DELETING (start-up reconciliation), any zone.
 * @param vp caller frees with store_csr_free_array()
 */
int	store_csr_unfinished(struct store *s, struct store_csr ***vp, size_t *n);

/**
 * The key ids of every record, any zone, any state (orphan detection).
 * @param ids caller frees with free(): n * STORE_KEY_ID_LEN bytes
 */
int	store_csr_key_ids(struct store *s, uint8_t **ids, size_t *n);

/** Number of records in state READY, all zones (keys in custody). */
int	store_csr_count(struct store *s, uint64_t *n);

/** Quick health probe (a trivial query). @retval 0 or KC_ERR_STORE */
int	store_ping(struct store *s);

/**
 * Insert a custom hostname. The CSR must be READY in the same zone, the hostname in lower
 * case (val_hostname_fold(): unique per zone whatever the case a client sent).
 * @retval 0, KC_ERR_CONFLICT (hostname already in the zone), KC_ERR_NOT_FOUND (no READY CSR
 *	csr_id in the zone), KC_ERR_STORE
 */
/**
 * Check JSON text against kind with SQLite's JSON functions, the daemon's only JSON parser.
 * @param code set to Cloudflare's code for the first fault: 1401 (metadata not an object
 *	of strings, or over STORE_JSON_MAX), 1434 (settings not an object, an unknown member,
 *	over STORE_JSON_MAX), 1422 http2, 1424 tls_1_3, 1425 min_tls_version, 1442 ciphers,
 *	1443 ciphers with min_tls_version 1.3; 0 when text is fine
 * @retval 0 (see code) or KC_ERR_STORE
 */
int	store_json_check(struct store *s, enum store_json_kind kind, const char *text,
	    unsigned int *code);

int	store_hostname_insert(struct store *s, const struct store_hostname *h);

/**
 * Replace the certificate of a hostname (renewal, or another READY CSR of the zone): every
 * field but id, zone_id, hostname and created_at_us is taken from h.
 * @retval 0, KC_ERR_NOT_FOUND (no such hostname, or the CSR is not READY in the zone)
 */
int	store_hostname_update(struct store *s, const struct store_hostname *h);

/** @param hp caller frees with store_hostname_free(). @retval 0, KC_ERR_NOT_FOUND */
int	store_hostname_get(struct store *s, const char *zone_id, const char *id,
	    struct store_hostname **hp);

/**
 * A page of a zone's hostnames, ordered by created_at then id; filters may be NULL.
 * store_hostname_find() with only these two filters.
 * @param vp caller frees with store_hostname_free_array()
 */
int	store_hostname_list(struct store *s, const char *zone_id, const char *hostname,
	    const char *csr_id, unsigned int page, unsigned int per_page, bool descending,
	    struct store_hostname ***vp, size_t *n, uint64_t *total);

/* Whether a hostname is a wildcard ("*." first), for store_hostname_filter.wildcard. */
enum store_match {
	STORE_MATCH_ANY = 0,
	STORE_MATCH_NO,
	STORE_MATCH_YES
};

/* The certificate status selected, as hostname answers compute it at now_us. */
enum store_ssl_status {
	STORE_SSL_ANY = 0,
	STORE_SSL_ACTIVE,	/* now_us < the leaf's notAfter */
	STORE_SSL_EXPIRED,	/* now_us >= notAfter */
	STORE_SSL_NONE		/* a status no hostname here can have: selects nothing */
};

enum store_host_order {
	STORE_ORDER_CREATED = 0,	/* created_at, then id */
	STORE_ORDER_SSL_STATUS		/* "active" before "expired", then created_at, id */
};

/*
 * What store_hostname_find() selects, every set member ANDed. Strings are compared with
 * the stored names, which are lower case (val_hostname_fold()): the caller folds them.
 * contains and prefix are plain text, not patterns: '%', '_' and '\' match themselves.
 */
struct store_hostname_filter {
	const char		*id;		/* NULL: any */
	const char		*hostname;	/* exact; NULL: any */
	const char		*contains;	/* substring of the hostname; NULL: any */
	const char		*prefix;	/* prefix of the hostname; NULL: any */
	const char		*csr_id;	/* NULL: any */
	const char		*origin;	/* custom_origin_server, exact; NULL: any */
	const char		*ca;		/* ssl.certificate_authority; NULL: any */
	enum store_match	 wildcard;
	enum store_ssl_status	 ssl_status;
	bool			 none;		/* select nothing (a filter no row can pass) */
	enum store_host_order	 order;
	bool			 descending;	/* every order key reversed */
	int64_t			 now_us;	/* for ssl_status and STORE_ORDER_SSL_STATUS */
};

/**
 * A page of a zone's hostnames selected and ordered by f, and the number selected, from
 * one read transaction. page counts from 1; past the end, n = 0 and still the total.
 * @param vp caller frees with store_hostname_free_array()
 * @retval 0, KC_ERR_INVALID, KC_ERR_NOMEM, KC_ERR_STORE
 */
int	store_hostname_find(struct store *s, const char *zone_id,
	    const struct store_hostname_filter *f, unsigned int page, unsigned int per_page,
	    struct store_hostname ***vp, size_t *n, uint64_t *total);

/** @retval 0, KC_ERR_NOT_FOUND */
int	store_hostname_delete(struct store *s, const char *zone_id, const char *id);

/*
 * The signer's view (issue 16): one row per custom hostname whose CSR is READY, its key and
 * its certificate (the chain, leaf first). The strings and blobs live until fn returns.
 */
struct store_signer_row {
	uint8_t		 key_id[STORE_KEY_ID_LEN];
	const char	*csr_id;
	const char	*key_type;
	const uint8_t	*pubkey;	/* SubjectPublicKeyInfo, DER */
	size_t		 pubkey_len;
	const char	*zone_id;
	const char	*hostname;
	const char	*hostname_id;
	const char	*certificate_pem;
};
/* A row's callback: a nonzero return stops the walk and is returned. */
typedef int (*store_signer_fn)(void *arg, const struct store_signer_row *row);
typedef int (*store_key_host_fn)(void *arg, const char *zone_id, const char *hostname);

/**
 * Walk the signer's view, of one zone or (zone_id NULL) of every zone, ordered by key id
 * then hostname.
 * @retval 0, fn's nonzero, KC_ERR_STORE, KC_ERR_NOMEM
 */
int	store_signer_rows(struct store *s, const char *zone_id, store_signer_fn fn,
	    void *arg);
/**
 * The hostnames (and their zones) bound to the READY CSR of this key: what may sign with
 * it. None: fn is never called.
 * @retval 0, fn's nonzero, KC_ERR_STORE, KC_ERR_NOMEM
 */
int	store_key_hostnames(struct store *s, const uint8_t key_id[STORE_KEY_ID_LEN],
	    store_key_host_fn fn, void *arg);

void	store_hostname_free(struct store_hostname *h);
void	store_hostname_free_array(struct store_hostname **v, size_t n);

void	store_csr_free(struct store_csr *c);
void	store_csr_free_array(struct store_csr **v, size_t n);

#define STORE_ANCHOR_HASH_LEN	64	/* hex SHA-256 of an audit record */

/**
 * The audit log's anchor: the seq and hex SHA-256 of the last record written (audit.c,
 * through the daemon's callbacks). Outside the log, so that start-up notices a log cut
 * short or rewritten.
 * @param hash	out: STORE_ANCHOR_HASH_LEN + 1 bytes
 * @retval 0, KC_ERR_NOT_FOUND (never anchored), KC_ERR_STORE
 */
int	store_audit_anchor_get(struct store *s, uint64_t *seq, char *hash);
/**
 * Move the anchor (one statement in autocommit, synced with synchronous=FULL before it
 * returns).
 * @retval 0, KC_ERR_INVALID, KC_ERR_STORE, KC_ERR_UNAVAILABLE (busy)
 */
int	store_audit_anchor_put(struct store *s, uint64_t seq, const char *hash);

/* The fallback origin of a zone (API.md "fallback_origin"). */
#define STORE_ORIGIN_MAX	253	/* the longest DNS name */
struct store_fallback {
	char		 origin[STORE_ORIGIN_MAX + 1];	/* lower case, no trailing dot */
	int64_t		 created_at_us;	/* when the zone's first origin was set */
	int64_t		 updated_at_us;	/* when it was last set */
};

/** The zone's fallback origin into f. @retval 0, KC_ERR_NOT_FOUND (none set), KC_ERR_STORE */
int	store_fallback_get(struct store *s, const char *zone_id, struct store_fallback *f);
/**
 * Set the zone's fallback origin: created at now_us when it had none, else replaced, its
 * created_at kept and updated_at now_us. f: the row as stored.
 * @param origin a checked hostname, lower case (KC_ERR_INVALID otherwise)
 * @retval 0, KC_ERR_INVALID, KC_ERR_STORE
 */
int	store_fallback_put(struct store *s, const char *zone_id, const char *origin,
	    int64_t now_us, struct store_fallback *f);
/**
 * Remove the zone's fallback origin; f: the row removed.
 * @retval 0, KC_ERR_NOT_FOUND (none set), KC_ERR_STORE
 */
int	store_fallback_delete(struct store *s, const char *zone_id, struct store_fallback *f);

#endif /* KC_STORE_H */
