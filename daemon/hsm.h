/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * hsm.h: the daemon's only door to the PKCS#11 token. hsm.c is the only file that includes
 * the PKCS#11 headers or <libp11.h>; callers see key types, CKA_IDs, URIs and public keys.
 */
#ifndef KC_HSM_H
#define KC_HSM_H

#include <stddef.h>
#include <stdint.h>

struct evp_pkey_st;		/* OpenSSL's EVP_PKEY */

#define HSM_KEY_ID_LEN	16	/* CKA_ID: 16 random bytes */
#define HSM_LABEL_PREFIX "keycustody:"

enum hsm_keytype {
	HSM_KEY_RSA2048 = 0,
	HSM_KEY_P256,
	HSM_KEY_RSA3072,
	HSM_KEY_RSA4096,
	HSM_KEY_P384,
	HSM_KEY_NTYPES
};

enum hsm_signer {
	HSM_SIGNER_DIRECT = 0,	/* C_Sign over the to-be-signed bytes */
	HSM_SIGNER_ENGINE	/* libp11's OpenSSL engine, key loaded by its URI */
};

/*
 * Health of the token as the daemon sees it (DESIGN section 5; docs/RELIABILITY.md).
 * An error is read in its context:
 *   - CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT and CKR_CRYPTOKI_NOT_INITIALIZED say the
 *     token or module is gone: OK turns DOWN.
 *   - CKR_GENERAL_ERROR, CKR_DEVICE_ERROR and CKR_DEVICE_MEMORY are what modules answer
 *     both to an operation they refuse (tpm2-pkcs11) and to an outage (a network HSM's
 *     client): the session is probed at once, and only a token that does not answer the
 *     probe turns DOWN. One that answers refused the operation: KC_ERR_HSM, still OK.
 *   - A token that leaves a probe (hsm_probe()) unanswered for probe_timeout_ms is DOWN
 *     for as long as it stays silent: requests fail fast instead of queueing behind it.
 * While DOWN requests fail with KC_ERR_UNAVAILABLE and hsm_recover() re-initializes the
 * module, retrying with a back-off capped at retry_max_ms, and at once when a probe of
 * the loaded module finds the token answering again.
 * CKR_PIN_INCORRECT and CKR_PIN_LOCKED turn any state into LOGIN_FAILED, which is final:
 * the PIN is never tried again.
 */
enum hsm_state {
	HSM_STATE_OK = 0,
	HSM_STATE_DOWN,		/* module or token unavailable; recovery under way */
	HSM_STATE_LOGIN_FAILED	/* PIN incorrect or locked: never retried */
};

struct hsm_config {
	const char	*module;	/* path of the PKCS#11 module */
	const char	*token_label;	/* token selected by label, never by slot number */
	const char	*engine_path;	/* libp11 engine .so (engine signer only) */
	enum hsm_signer	 signer;
	/* C_Initialize's pReserved, for modules that take arguments (NSS softoken); NULL */
	const char	*init_args;
	unsigned int	 retry_max_ms;		/* 0: HSM_RETRY_MAX_MS */
	unsigned int	 probe_timeout_ms;	/* 0: HSM_PROBE_TIMEOUT_MS */
	/*
	 * Accept keys on a token that cannot report CKA_ALWAYS_SENSITIVE or
	 * CKA_NEVER_EXTRACTABLE (the key's history); 0: such keys are refused.
	 */
	int		 accept_no_history;
};

#define HSM_BACKOFF_MIN_MS	250	/* first re-initialization attempt after an outage */
#define HSM_RETRY_MAX_MS	2000	/* default cap of the back-off between attempts */
#define HSM_PROBE_INTERVAL_MS	1000	/* hsm_probe() while the token is up */
#define HSM_PROBE_TIMEOUT_MS	3000	/* default: a probe unanswered this long is DOWN */

/* Counters since hsm_open(), for health (answer-health.c). */
struct hsm_stats {
	uint64_t	 module_failures;	/* times the token was marked down */
	uint64_t	 recoveries;		/* successful re-initializations */
	uint64_t	 recovery_failures;	/* failed re-initialization attempts */
	uint64_t	 session_repairs;	/* sessions reopened after a per-session error */
	uint64_t	 timeouts;		/* calls failed for passing their deadline */
	uint64_t	 refusals;		/* operations refused by a token that answered */
	uint64_t	 probe_stalls;		/* probes that took longer than the timeout */
	uint64_t	 scans;			/* full token scans (start-up, re-login) */
	uint64_t	 searches;		/* token searches for an id the map missed */
	/*
	 * What the last scan found (duplicates and incomplete pairs less those that
	 * hsm_key_destroy() destroyed since), and how
	 * long the scan took. Objects are "ours" when their CKA_LABEL starts with
	 * HSM_LABEL_PREFIX. The scan itself never destroys any of them.
	 */
	uint64_t	 token_pairs;		/* ids with our private and public key */
	uint64_t	 token_duplicates;	/* ids with two or more of our private (or
						   public) keys */
	uint64_t	 token_incomplete;	/* ids with our private key only, or public */
	uint64_t	 token_debris;		/* key objects with neither label nor CKA_ID */
	uint64_t	 scan_ms;
	uint64_t	 map_bytes;		/* the id -> handle map's table */
};

struct hsm;			/* the module, the token, the login: one per daemon */
struct hsm_session;		/* one PKCS#11 session, owned by one worker thread */
struct hsm_key;			/* a key pair: handles, CKA_ID, public key */

/**
 * Load the module, find the token by label, open a session and log in with pin.
 * The caller wipes pin after the call returns. hsm.c keeps one copy in a locked
 * (mlock, MADV_DONTDUMP) page, only to log in again when the token forgot the login (every
 * session closed under us); hsm_close() wipes it. The engine signer also hands the PIN to
 * libp11's engine, which keeps its own (hsm_close() makes it wipe that one).
 * @param cause on failure, a message for the operator (caller frees); never contains the PIN
 * @retval 0, KC_ERR_PIN_INCORRECT, KC_ERR_PIN_LOCKED, KC_ERR_TOKEN_NOT_PRESENT, KC_ERR_HSM
 */
int	 hsm_open(const struct hsm_config *cfg, const char *pin, size_t pinlen,
	    struct hsm **hp, char **cause);
/** Log out, close every session, finalize the module. NULL is a no-op. */
void	 hsm_close(struct hsm *h);
/** The token's state; any thread, never blocks. NULL is DOWN. */
enum hsm_state hsm_get_state(const struct hsm *h);

/**
 * Bring a DOWN token back if its backoff has elapsed: C_Finalize, C_Initialize, find the
 * token by label again, open the login session and log in with the kept PIN copy, empty the
 * id -> handle map. Worker sessions notice the new module epoch and reopen themselves on
 * their next call. A failed attempt doubles the backoff (HSM_BACKOFF_MIN_MS up to the
 * configured retry_max_ms); a probe that finds the token answering again cuts it short
 * (hsm_probe()). PIN_INCORRECT or PIN_LOCKED makes the state LOGIN_FAILED, never
 * retried.
 * Every call that finds the token DOWN runs this first, so requests alone bring the token
 * back; the daemon should also call it periodically (about every 250 ms) so that health
 * turns OK without traffic. Cheap when the token is up or the backoff has not elapsed. It
 * never waits for requests still inside the module (it tries again 100 ms later); when it
 * does run, it blocks for the module's C_Finalize/C_Initialize/C_Login, so call it from a
 * worker or a thread of its own rather than the event loop if the module can be slow.
 * Any thread.
 * @retval 0 (the token is up), KC_ERR_UNAVAILABLE (still down), KC_ERR_PIN_INCORRECT or
 *     KC_ERR_PIN_LOCKED (login failed: final)
 */
int	 hsm_recover(struct hsm *h);
/**
 * Seconds until the next recovery attempt while DOWN (at least 1), for Retry-After;
 * 0 when the token is up or the login failed (no retry will come).
 */
unsigned int hsm_retry_after(struct hsm *h);
/**
 * Ask the token whether it still answers: C_GetSessionInfo on the login session, at most
 * every HSM_PROBE_INTERVAL_MS while it is up. While the call is in flight for longer than
 * probe_timeout_ms, hsm_get_state() says DOWN (a hung token, or a network HSM whose
 * replies stopped); a failed probe marks the token down. While DOWN, a probe of the
 * loaded module that finds the token answering makes the next hsm_recover() run at once
 * instead of waiting out its back-off. Blocks for as long as the module does: call it from
 * the recovery thread, never from the event loop. Any thread.
 */
void	 hsm_probe(struct hsm *h);
/**
 * After a failure outside hsm.c's own calls (the engine signer's OpenSSL path), ask the
 * token whether it still answers on s.
 * @retval 0 (it answers: the operation was refused), KC_ERR_UNAVAILABLE (it does not; the
 *     token is marked down)
 */
int	 hsm_session_probe(struct hsm_session *s);
/** Copy the counters; any thread. */
void	 hsm_get_stats(const struct hsm *h, struct hsm_stats *st);
/* A PKCS#11 error code and how many operations ended in it since start-up. */
struct hsm_ckr_count {
	const char	*name;		/* "CKR_DEVICE_ERROR", or "other"; static */
	uint64_t	 count;
};
/** The nonzero CKR counters, at most max of them, into v; any thread. @retval how many */
size_t	 hsm_ckr_errors(struct hsm_ckr_count *v, size_t max);
/** Borrowed; valid until hsm_close(). */
const char *hsm_token_label(const struct hsm *h);
enum hsm_signer hsm_get_signer(const struct hsm *h);

/**
 * Whether the token can make keys of type t and sign with them, as negotiated at
 * hsm_open() and at the last re-initialization (C_GetMechanismList/C_GetMechanismInfo:
 * key sizes, CKF_GENERATE_KEY_PAIR, CKF_SIGN), less any type whose generation the token
 * refused since (CKR_MECHANISM_INVALID and the like). Any thread.
 */
int	 hsm_keytype_offered(const struct hsm *h, enum hsm_keytype t);
/**
 * Describe type t on this token into buf (len bytes, always terminated): how it signs
 * ("CKM_SHA256_RSA_PKCS", "CKM_RSA_PKCS over a DigestInfo(SHA-256)", "CKM_ECDSA over
 * SHA-256") when offered, else why not.
 * @retval hsm_keytype_offered(h, t)
 */
int	 hsm_keytype_info(const struct hsm *h, enum hsm_keytype t, char *buf, size_t len);
/**
 * The key-history attributes (CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE) that a key
 * this token made did not report, space-separated; NULL when none is missing (or no key
 * was read back yet). Static text. Any thread.
 */
const char *hsm_history_missing(const struct hsm *h);
/** Whether the token signs with CKM_SHA256_HMAC (the audit MAC). Any thread. */
int	 hsm_mac_offered(const struct hsm *h);

/**
 * Open a session for the calling worker thread (the login is per token, already done).
 * @retval 0 or KC_ERR_*; caller frees with hsm_session_free()
 */
int	 hsm_session_new(struct hsm *h, struct hsm_session **sp);
void	 hsm_session_free(struct hsm_session *s);
/**
 * Give the request now running on s a deadline ms milliseconds from now (0 clears it: no
 * deadline). hsm_keygen() and hsm_sign() fail with
 * KC_ERR_TIMEOUT once it has passed, and a key pair whose generation returned after it is
 * destroyed before hsm_keygen() returns; hsm_key_destroy() ignores it (undo must run).
 * Set it to what is left of the request's reply deadline, so that a request whose client
 * was told "timed out" is never completed behind its back.
 */
void	 hsm_session_set_deadline(struct hsm_session *s, unsigned int ms);

/**
 * Milliseconds left before the deadline of hsm_session_set_deadline() on s.
 * @retval UINT_MAX (no deadline), 0 (passed) or the milliseconds left
 */
unsigned int hsm_session_time_left(const struct hsm_session *s);

/**
 * Generate a key pair in the token: private key token/private/sensitive/sign-only, never
 * extractable; CKA_ID = id, CKA_LABEL = HSM_LABEL_PREFIX + label. The attributes are read
 * back; a pair that could leave the token is destroyed and KC_ERR_KEY_UNSAFE returned.
 * The pair is entered in the id -> handle map.
 * @param kp caller frees with hsm_key_free() (which does not destroy the objects)
 * @param maybe_made on failure, 1 when the token may hold objects with this CKA_ID all
 *     the same: C_GenerateKeyPair was called and its pair is not known to be gone (a
 *     network HSM whose reply was lost, a destruction that failed). The caller must then
 *     look for the pair by its id (hsm_key_destroy()) before it forgets the id. 0 when
 *     nothing was asked of the token. Set on success too (0).
 */
int	 hsm_keygen(struct hsm_session *s, enum hsm_keytype type,
	    const uint8_t id[HSM_KEY_ID_LEN], const char *label, struct hsm_key **kp,
	    int *maybe_made);

/**
 * Find a key pair by CKA_ID: the id -> handle map first, the token only when it misses.
 * @retval 0, KC_ERR_NOT_FOUND, or KC_ERR_*; caller frees *kp with hsm_key_free()
 */
int	 hsm_key_find(struct hsm_session *s, const uint8_t id[HSM_KEY_ID_LEN],
	    struct hsm_key **kp);

/** Public key of the pair. Borrowed; valid until hsm_key_free(). */
struct evp_pkey_st *hsm_key_public(const struct hsm_key *k);
enum hsm_keytype hsm_key_type(const struct hsm_key *k);
void	 hsm_key_free(struct hsm_key *k);

/**
 * The direct signer: sign tbs (the DER to-be-signed bytes of a request) with SHA-256 and
 * C_Sign on the pair's handle: RSA PKCS#1 v1.5, or ECDSA (returned as a DER Ecdsa-Sig-Value).
 * @param sig caller frees with free()
 */
int	 hsm_sign(struct hsm_session *s, const struct hsm_key *k, const uint8_t *tbs,
	    size_t tbslen, uint8_t **sig, size_t *siglen);

/* What hsm_sign_digest() is asked for (issue 16): PKCS#11's own raw mechanisms. */
enum hsm_sign_mech {
	HSM_SIGN_ECDSA = 1,	/* CKM_ECDSA over a digest; the signature r || s */
	HSM_SIGN_RSA_PKCS,	/* CKM_RSA_PKCS over a DER DigestInfo */
	HSM_SIGN_RSA_PSS	/* CKM_RSA_PKCS_PSS over a digest of hash */
};

/* The hashes of a PSS signature (the protocol's SignHash numbers). */
enum hsm_hash {
	HSM_SHA1 = 1, HSM_SHA224, HSM_SHA256, HSM_SHA384, HSM_SHA512
};

/* CK_RSA_PKCS_PSS_PARAMS: the digest's hash, MGF1's hash, the salt length. */
struct hsm_pss {
	enum hsm_hash	 hash;
	enum hsm_hash	 mgf_hash;
	unsigned long	 salt_len;
};

/**
 * Sign data that the caller checked (a digest, or a DigestInfo for HSM_SIGN_RSA_PKCS)
 * with the pair's private key: a TLS terminator's handshake signature through the module
 * (answer-sign.c). The signature is PKCS#11's: r || s for ECDSA.
 * @param sig caller frees with free()
 * @retval 0, KC_ERR_INVALID (a mechanism for the other key type), or KC_ERR_*
 */
int	 hsm_sign_digest(struct hsm_session *s, const struct hsm_key *k,
	    enum hsm_sign_mech m, const struct hsm_pss *pss, const uint8_t *data,
	    size_t len, uint8_t **sig, size_t *siglen);

/**
 * The engine signer: load the private key through libp11's OpenSSL engine by its RFC 7512
 * URI. Calls are serialized inside hsm.c (libp11 scans the token on every load).
 * @param pkey caller frees with EVP_PKEY_free()
 * @retval 0, KC_ERR_INVALID when the engine signer is not configured, or KC_ERR_*
 */
int	 hsm_engine_key(struct hsm_session *s, const struct hsm_key *k,
	    struct evp_pkey_st **pkey);

/**
 * Destroy both objects of the pair with this CKA_ID and forget it in the map. When the map
 * knows the pair (and the scan saw no duplicate of it), its two handles are checked (their
 * CKA_ID) and destroyed without a search; only an id the map misses (a pair made by
 * another daemon, or by a generation whose reply was lost) or a stale handle makes it
 * search the token. This is the
 * undo path of a failed create: it is tried even while the token is DOWN (on the module
 * instance still loaded) and past the session's deadline.
 * @retval 0 (also when no object was there), or KC_ERR_*
 */
int	 hsm_key_destroy(struct hsm_session *s, const uint8_t id[HSM_KEY_ID_LEN]);

/**
 * List the CKA_IDs of every private key whose label starts with HSM_LABEL_PREFIX
 * (start-up reconciliation), from the id -> handle map. The map is filled by one scan of
 * the token, at its first use (this call at start-up) and again at the first use after a
 * re-login or re-initialization emptied it: every private and public key object is read
 * once (CKA_CLASS, CKA_KEY_TYPE, CKA_LABEL, CKA_ID in one C_GetAttributeValue), and
 * duplicates, incomplete pairs and debris (key objects with neither label nor CKA_ID, as
 * SoftHSM2 leaves when killed inside C_GenerateKeyPair) are logged and counted in
 * hsm_stats. The scan destroys nothing.
 * @param ids caller frees with free(): n * HSM_KEY_ID_LEN bytes
 */
int	 hsm_key_list(struct hsm_session *s, uint8_t **ids, size_t *n);

/** RFC 7512 URI of the private key (token and id, never a PIN). Caller frees. */
char	*hsm_key_uri(const struct hsm *h, const uint8_t id[HSM_KEY_ID_LEN]);

/** The same URI written into buf, which holds hsm_key_uri_size(h) bytes (with the NUL). */
size_t	 hsm_key_uri_size(const struct hsm *h);
void	 hsm_key_uri_write(const struct hsm *h, const uint8_t id[HSM_KEY_ID_LEN], char *buf);

/** "rsa2048", "p256v1", ...; NULL for an unknown type. */
const char *hsm_keytype_name(enum hsm_keytype t);
/** Parse a key type name. @retval 0 or KC_ERR_INVALID */
int	 hsm_keytype_parse(const char *name, enum hsm_keytype *t);

/*
 * The audit log's MAC key: an HMAC-SHA256 secret generated in the token, never extractable,
 * sign-only, labelled HSM_AUDIT_MAC_LABEL (a CKO_SECRET_KEY: key listing and destruction of
 * key pairs never touch it).
 */
#define HSM_AUDIT_MAC_LABEL	"keycustody-audit-mac"
#define HSM_MAC_LEN		32	/* HMAC-SHA256 */

/**
 * Find the audit MAC key on s (generate it first when create and the token has none) and
 * check its attributes; later hsm_mac() calls on s use it. Start-up only: it searches.
 * @param cause	out on failure: why, for the operator (caller frees)
 * @retval 0, KC_ERR_NOT_FOUND (none, and not create), KC_ERR_KEY_UNSAFE (its attributes
 *	let it leave the token or serve another purpose, or there are two), KC_ERR_*
 */
int	 hsm_mac_key_open(struct hsm_session *s, int create, char **cause);

/**
 * HMAC-SHA256 of data with the audit MAC key (C_Sign, CKM_SHA256_HMAC), on the session
 * hsm_mac_key_open() prepared. The key is looked up again when the token renumbered its
 * objects.
 * @retval 0, KC_ERR_UNAVAILABLE (token down), KC_ERR_KEY_UNSAFE (key gone), KC_ERR_*
 */
int	 hsm_mac(struct hsm_session *s, const void *data, size_t len,
	    uint8_t out[HSM_MAC_LEN]);

#endif /* KC_HSM_H */
