/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * hsm.c: everything PKCS#11: the module, the token, the login, sessions, key generation and
 * its attribute checks, the id -> handle map, signing (direct and through libp11's engine),
 * destruction, and the translation of CKR_* codes.
 */
#include "config.h"

/*
 * The engine signer needs OpenSSL's ENGINE API, deprecated in 3.0. This file is its only
 * user; nothing else here uses a deprecated call (keys are built with EVP_PKEY_fromdata).
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <sys/types.h>
#include <sys/mman.h>
#include <sys/queue.h>

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <p11-kit/pkcs11.h>

#include "kc-err.h"
#include "kc-util.h"
#include "log.h"
#include "hsm.h"
#include "hsm-map.h"

/*
 * Our own failures, carried through the same CK_RV paths as the module's so that one
 * function (hsm_result) turns every outcome into a KC_ERR_*. The vendor-defined range with
 * "KC" in it keeps them apart from any code a module returns.
 */
#define HSM_CKR_BASE		(CKR_VENDOR_DEFINED | 0x4b430000UL)
#define HSM_CKR_NOMEM		(HSM_CKR_BASE | 1)
#define HSM_CKR_CRYPTO		(HSM_CKR_BASE | 2)
#define HSM_CKR_UNSAFE		(HSM_CKR_BASE | 3)
#define HSM_CKR_NOT_FOUND	(HSM_CKR_BASE | 4)
#define HSM_CKR_BAD_KEY		(HSM_CKR_BASE | 5)
#define HSM_CKR_UNSUPPORTED	(HSM_CKR_BASE | 6)	/* the token lacks a mechanism */

#define HSM_TOKEN_LABEL_LEN	32	/* CK_TOKEN_INFO.label, space-padded */
#define HSM_FIND_BATCH		64

#define HSM_SCAN_LABEL_MAX	128	/* CKA_LABEL read into a fixed buffer by the scan */
#define HSM_SCAN_ID_MAX		64
#define HSM_SCAN_LOG_MAX	20	/* findings logged one by one, per kind */

#define HSM_RELEASE_WAIT_MS	5000	/* for the other operations to leave the module */

struct hsm_session {
	struct hsm			*h;	/* NULL once hsm_close() detached us */
	CK_SESSION_HANDLE		 sh;
	int				 open;
	unsigned int			 modepoch;	/* h->modepoch when sh was opened */
	struct timespec			 op_start;	/* CLOCK_MONOTONIC */
	struct timespec			 deadline;
	int				 has_deadline;
	CK_OBJECT_HANDLE		 mac_key;	/* the audit MAC key, see hsm_mac() */
	unsigned int			 mac_epoch;	/* h->epoch + 1 when mac_key was found */
	TAILQ_ENTRY(hsm_session)	 entry;
};

/*
 * What the token can do, asked of it (C_GetMechanismList, C_GetMechanismInfo) at
 * hsm_open() and again at every re-initialization, and what key generation taught us
 * since: per key type whether it can be made and how it signs. Written with h->modlock
 * held exclusively (or before h is shared) and copied under h->lock; operations read it
 * under modlock shared.
 */
struct hsm_caps_kt {
	int			 offered;	/* can be made, and signed with */
	int			 can_sign;	/* sign is set */
	CK_MECHANISM_TYPE	 sign;		/* CKM_SHA256_RSA_PKCS, CKM_RSA_PKCS, ... */
	int			 prehash;	/* the daemon hashes (RSA: and builds DigestInfo) */
	int			 minimal_pub;	/* the public template the token took: bare */
	int			 full_ok;	/* the full public template worked once */
	int			 refused;	/* listed, but its generation was refused */
	char			 why[160];	/* when !offered: the reason, for the operator */
};

struct hsm_caps {
	struct hsm_caps_kt	 kt[HSM_KEY_NTYPES];
	int			 mac_gen;	/* CKM_GENERIC_SECRET_KEY_GEN */
	int			 mac_sign;	/* CKM_SHA256_HMAC with CKF_SIGN */
};

#define HSM_HISTORY_ALWAYS_SENSITIVE	0x1	/* CKA_ALWAYS_SENSITIVE */
#define HSM_HISTORY_NEVER_EXTRACTABLE	0x2	/* CKA_NEVER_EXTRACTABLE */

struct hsm {
	void			*dl;
	CK_FUNCTION_LIST_PTR	 f;
	int			 initialized;	/* our C_Initialize succeeded */
	CK_SLOT_ID		 slot;
	char			*label;
	char			*module;	/* for the engine, again after recovery */
	char			*engine_path;
	enum hsm_signer		 signer;
	int			 accept_no_history;	/* hsm_config.accept_no_history */
	struct hsm_caps		 caps;		/* under h->lock, see struct hsm_caps */
	int			 history_missing; /* HSM_HISTORY_* never readable; atomic */
	int			 state;		/* enum hsm_state, atomic */
	int			 login_err;	/* KC_ERR_PIN_* once LOGIN_FAILED */

	/*
	 * The module's lifetime against re-initialization. Every operation holds it shared
	 * from its first C_* call to its last; hsm_recover() takes it exclusively (and only
	 * when nobody is inside: it never waits). modepoch counts re-initializations: a
	 * session opened in an older one has a dead handle that may even equal a live one,
	 * so it is never used again, only reopened.
	 */
	pthread_rwlock_t	 modlock;
	unsigned int		 modepoch;

	pthread_mutex_t		 rlock;		/* recovery bookkeeping below */
	int			 recovering;
	struct timespec		 next_try;	/* CLOCK_MONOTONIC */
	struct timespec		 last_try;	/* when the last attempt began */
	unsigned int		 backoff_ms;
	unsigned int		 attempts;	/* failed since the token went down */
	unsigned int		 retry_max_ms;
	char			*init_args;	/* C_Initialize's pReserved, or NULL */

	/*
	 * The probe (hsm_probe()): when the one in flight began, in CLOCK_MONOTONIC
	 * milliseconds (0: none in flight; atomic), and when the last one ran (the
	 * recovery thread's own).
	 */
	long long		 probe_since;
	unsigned int		 probe_timeout_ms;
	struct timespec		 probe_last;

	struct hsm_stats	 stats;		/* atomic counters */

	CK_SESSION_HANDLE	 login_sh;	/* keeps the login alive */
	int			 login_open;
	/*
	 * Some tokens keep every key they made or used loaded until the login ends
	 * (tpm2-pkcs11): see hsm_release(). All atomic. login_made counts the pairs made
	 * since the token last logged us in, login_gen those logins; release_due says the
	 * last key generation failed as a full token would, release_at is the least
	 * login_made at which a new login cured such a failure (0: never seen).
	 */
	unsigned int		 login_made;
	unsigned int		 login_gen;
	int			 release_due;
	unsigned int		 release_at;

	/*
	 * A copy of the PIN for logging in again when the token forgot our login (every
	 * session closed under us). Kept in its own mlock()ed, MADV_DONTDUMP page, wiped and
	 * unmapped by hsm_close(). NULL when the page could not be locked: then a lost login
	 * is reported instead of repaired.
	 */
	char			*pin;
	size_t			 pinlen;
	size_t			 pinmap;

	ENGINE			*engine;

	pthread_mutex_t		 lock;		/* map, sessions */
	/*
	 * Serializes every token search (and engine key load, which searches) and every
	 * destruction against key creation: SoftHSM 2.6.1 fails searches with
	 * CKR_GENERAL_ERROR while another thread creates keys (SoftHSMv2 issue 573). Key
	 * generations take it shared, so that they run in parallel (the token's ceiling);
	 * searches and destructions take it exclusive.
	 */
	pthread_rwlock_t	 search_lock;

	/*
	 * The id -> handle map (hsm-map.h), under lock. One scan of the token fills it (at
	 * the first use, and again after a flush); map_valid says the scan is done in this
	 * epoch, so that a miss means "not in the token when we looked". scan_lock: the scan
	 * holds it exclusive, a destruction by known handles shared, so that a scan never
	 * enters a handle destroyed behind it.
	 */
	struct hsm_map		 map;
	int			 map_valid;	/* atomic */
	pthread_rwlock_t	 scan_lock;
	/*
	 * Bumped whenever the token may have renumbered its objects (the login was lost: with
	 * the last session gone, a module may hand out new handles, SoftHSM2 does). The map
	 * is emptied then; a struct hsm_key of an older epoch looks its handle up again.
	 */
	unsigned int		 epoch;

	TAILQ_HEAD(, hsm_session) sessions;
};

struct hsm_key {
	uint8_t			 id[HSM_KEY_ID_LEN];
	CK_OBJECT_HANDLE	 priv;
	CK_OBJECT_HANDLE	 pub;
	enum hsm_keytype	 type;
	EVP_PKEY		*pkey;
	unsigned int		 epoch;
};

static const struct hsm_keytype_desc {
	const char	*name;
	CK_KEY_TYPE	 ckk;
	CK_ULONG	 bits;		/* RSA modulus bits */
	const char	*group;		/* EC group name (OpenSSL) */
	const uint8_t	*oid;		/* EC: DER OBJECT IDENTIFIER, CKA_EC_PARAMS */
	size_t		 oidlen;
	size_t		 fieldlen;	/* EC: bytes per coordinate */
} hsm_keytypes[HSM_KEY_NTYPES] = {
	[HSM_KEY_RSA2048] = { "rsa2048", CKK_RSA, 2048, NULL, NULL, 0, 0 },
	[HSM_KEY_P256] = { "p256v1", CKK_EC, 0, "prime256v1",
	    (const uint8_t *)"\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07", 10, 32 },
	[HSM_KEY_RSA3072] = { "rsa3072", CKK_RSA, 3072, NULL, NULL, 0, 0 },
	[HSM_KEY_RSA4096] = { "rsa4096", CKK_RSA, 4096, NULL, NULL, 0, 0 },
	[HSM_KEY_P384] = { "p384v1", CKK_EC, 0, "secp384r1",
	    (const uint8_t *)"\x06\x05\x2b\x81\x04\x00\x22", 7, 48 },
};

#define HSM_CKR(x)	{ x, #x }
static const struct hsm_ckr_name {
	CK_RV		 rv;
	const char	*name;
} hsm_ckr_names[] = {
	HSM_CKR(CKR_OK),
	HSM_CKR(CKR_CANCEL),
	HSM_CKR(CKR_HOST_MEMORY),
	HSM_CKR(CKR_SLOT_ID_INVALID),
	HSM_CKR(CKR_GENERAL_ERROR),
	HSM_CKR(CKR_FUNCTION_FAILED),
	HSM_CKR(CKR_ARGUMENTS_BAD),
	HSM_CKR(CKR_NO_EVENT),
	HSM_CKR(CKR_NEED_TO_CREATE_THREADS),
	HSM_CKR(CKR_CANT_LOCK),
	HSM_CKR(CKR_ATTRIBUTE_READ_ONLY),
	HSM_CKR(CKR_ATTRIBUTE_SENSITIVE),
	HSM_CKR(CKR_ATTRIBUTE_TYPE_INVALID),
	HSM_CKR(CKR_ATTRIBUTE_VALUE_INVALID),
	HSM_CKR(CKR_ACTION_PROHIBITED),
	HSM_CKR(CKR_DATA_INVALID),
	HSM_CKR(CKR_DATA_LEN_RANGE),
	HSM_CKR(CKR_DEVICE_ERROR),
	HSM_CKR(CKR_DEVICE_MEMORY),
	HSM_CKR(CKR_DEVICE_REMOVED),
	HSM_CKR(CKR_ENCRYPTED_DATA_INVALID),
	HSM_CKR(CKR_ENCRYPTED_DATA_LEN_RANGE),
	HSM_CKR(CKR_FUNCTION_CANCELED),
	HSM_CKR(CKR_FUNCTION_NOT_PARALLEL),
	HSM_CKR(CKR_FUNCTION_NOT_SUPPORTED),
	HSM_CKR(CKR_KEY_HANDLE_INVALID),
	HSM_CKR(CKR_KEY_SIZE_RANGE),
	HSM_CKR(CKR_KEY_TYPE_INCONSISTENT),
	HSM_CKR(CKR_KEY_NOT_NEEDED),
	HSM_CKR(CKR_KEY_CHANGED),
	HSM_CKR(CKR_KEY_NEEDED),
	HSM_CKR(CKR_KEY_INDIGESTIBLE),
	HSM_CKR(CKR_KEY_FUNCTION_NOT_PERMITTED),
	HSM_CKR(CKR_KEY_NOT_WRAPPABLE),
	HSM_CKR(CKR_KEY_UNEXTRACTABLE),
	HSM_CKR(CKR_MECHANISM_INVALID),
	HSM_CKR(CKR_MECHANISM_PARAM_INVALID),
	HSM_CKR(CKR_OBJECT_HANDLE_INVALID),
	HSM_CKR(CKR_OPERATION_ACTIVE),
	HSM_CKR(CKR_OPERATION_NOT_INITIALIZED),
	HSM_CKR(CKR_PIN_INCORRECT),
	HSM_CKR(CKR_PIN_INVALID),
	HSM_CKR(CKR_PIN_LEN_RANGE),
	HSM_CKR(CKR_PIN_EXPIRED),
	HSM_CKR(CKR_PIN_LOCKED),
	HSM_CKR(CKR_SESSION_CLOSED),
	HSM_CKR(CKR_SESSION_COUNT),
	HSM_CKR(CKR_SESSION_HANDLE_INVALID),
	HSM_CKR(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
	HSM_CKR(CKR_SESSION_READ_ONLY),
	HSM_CKR(CKR_SESSION_EXISTS),
	HSM_CKR(CKR_SESSION_READ_ONLY_EXISTS),
	HSM_CKR(CKR_SESSION_READ_WRITE_SO_EXISTS),
	HSM_CKR(CKR_SIGNATURE_INVALID),
	HSM_CKR(CKR_SIGNATURE_LEN_RANGE),
	HSM_CKR(CKR_TEMPLATE_INCOMPLETE),
	HSM_CKR(CKR_TEMPLATE_INCONSISTENT),
	HSM_CKR(CKR_TOKEN_NOT_PRESENT),
	HSM_CKR(CKR_TOKEN_NOT_RECOGNIZED),
	HSM_CKR(CKR_TOKEN_WRITE_PROTECTED),
	HSM_CKR(CKR_UNWRAPPING_KEY_SIZE_RANGE),
	HSM_CKR(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT),
	HSM_CKR(CKR_USER_ALREADY_LOGGED_IN),
	HSM_CKR(CKR_USER_NOT_LOGGED_IN),
	HSM_CKR(CKR_USER_PIN_NOT_INITIALIZED),
	HSM_CKR(CKR_USER_TYPE_INVALID),
	HSM_CKR(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
	HSM_CKR(CKR_USER_TOO_MANY_TYPES),
	HSM_CKR(CKR_WRAPPED_KEY_INVALID),
	HSM_CKR(CKR_WRAPPED_KEY_LEN_RANGE),
	HSM_CKR(CKR_WRAPPING_KEY_HANDLE_INVALID),
	HSM_CKR(CKR_WRAPPING_KEY_SIZE_RANGE),
	HSM_CKR(CKR_WRAPPING_KEY_TYPE_INCONSISTENT),
	HSM_CKR(CKR_RANDOM_SEED_NOT_SUPPORTED),
	HSM_CKR(CKR_RANDOM_NO_RNG),
	HSM_CKR(CKR_DOMAIN_PARAMS_INVALID),
	HSM_CKR(CKR_CURVE_NOT_SUPPORTED),
	HSM_CKR(CKR_BUFFER_TOO_SMALL),
	HSM_CKR(CKR_SAVED_STATE_INVALID),
	HSM_CKR(CKR_INFORMATION_SENSITIVE),
	HSM_CKR(CKR_STATE_UNSAVEABLE),
	HSM_CKR(CKR_CRYPTOKI_NOT_INITIALIZED),
	HSM_CKR(CKR_CRYPTOKI_ALREADY_INITIALIZED),
	HSM_CKR(CKR_MUTEX_BAD),
	HSM_CKR(CKR_MUTEX_NOT_LOCKED),
	HSM_CKR(CKR_NEW_PIN_MODE),
	HSM_CKR(CKR_NEXT_OTP),
	HSM_CKR(CKR_EXCEEDED_MAX_ITERATIONS),
	HSM_CKR(CKR_FIPS_SELF_TEST_FAILED),
	HSM_CKR(CKR_LIBRARY_LOAD_FAILED),
	HSM_CKR(CKR_PIN_TOO_WEAK),
	HSM_CKR(CKR_PUBLIC_KEY_INVALID),
	HSM_CKR(CKR_FUNCTION_REJECTED),
};
#undef HSM_CKR
#define HSM_NCKR	(sizeof(hsm_ckr_names) / sizeof(hsm_ckr_names[0]))

/* Operations that ended in each hsm_ckr_names[] code; the last slot: any other code. */
static uint64_t hsm_ckr_counts[HSM_NCKR + 1];	/* __atomic_* only */

static void	hsm_map_flush(struct hsm *);
static CK_RV	hsm_find_by_id(struct hsm_session *, CK_OBJECT_CLASS, const uint8_t *,
		    CK_OBJECT_HANDLE *, CK_ULONG, CK_ULONG *);
static void	hsm_map_entry_free(struct hsm_map_entry *);

/* Name of a CKR_* code, for logs and causes. */
static const char *
hsm_ckr_name(CK_RV rv)
{
	static __thread char	 buf[32];
	size_t			 i;

	for (i = 0; i < sizeof(hsm_ckr_names) / sizeof(hsm_ckr_names[0]); i++)
		if (hsm_ckr_names[i].rv == rv)
			return hsm_ckr_names[i].name;
	switch (rv) {
	case HSM_CKR_NOMEM:
		return "out of memory";
	case HSM_CKR_CRYPTO:
		return "OpenSSL failure";
	case HSM_CKR_UNSAFE:
		return "unsafe key attributes";
	case HSM_CKR_NOT_FOUND:
		return "no such object";
	case HSM_CKR_BAD_KEY:
		return "unexpected key object";
	case HSM_CKR_UNSUPPORTED:
		return "mechanism not offered by the token";
	}
	snprintf(buf, sizeof(buf), "CKR_0x%lx", (unsigned long)rv);
	return buf;
}

/* Name of a mechanism we negotiate, for logs and health. */
static const char *
hsm_ckr_mech_name(CK_MECHANISM_TYPE m)
{
	switch (m) {
	case CKM_SHA256_RSA_PKCS:
		return "CKM_SHA256_RSA_PKCS";
	case CKM_RSA_PKCS:
		return "CKM_RSA_PKCS";
	case CKM_ECDSA_SHA256:
		return "CKM_ECDSA_SHA256";
	case CKM_ECDSA:
		return "CKM_ECDSA";
	}
	return "CKM_?";
}

/* Drain the OpenSSL error queue into buf (one line, the most recent errors last). */
static void
hsm_ossl_errors(char *buf, size_t len)
{
	unsigned long	 e;
	size_t		 used = 0;
	char		 one[256];

	buf[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, one, sizeof(one));
		if (used < len) {
			snprintf(buf + used, len - used, "%s%s", used ? "; " : "",
			    one);
			used = strlen(buf);
		}
	}
	if (buf[0] == '\0')
		snprintf(buf, len, "no OpenSSL error recorded");
}

static void
hsm_set_state(struct hsm *h, enum hsm_state st)
{
	__atomic_store_n(&h->state, (int)st, __ATOMIC_SEQ_CST);
}

#define hsm_stat_inc(h, field)	__atomic_add_fetch(&(h)->stats.field, 1, __ATOMIC_RELAXED)
/* A finding of the scan that was since destroyed; never below 0. */
#define hsm_stat_dec(h, field)	do {						\
	uint64_t v_ = __atomic_load_n(&(h)->stats.field, __ATOMIC_RELAXED);		\
	while (v_ > 0 && !__atomic_compare_exchange_n(&(h)->stats.field, &v_, v_ - 1,	\
	    0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))					\
		;								\
} while (0)

void
hsm_get_stats(const struct hsm *h, struct hsm_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (h == NULL)
		return;
	st->module_failures = __atomic_load_n(&h->stats.module_failures, __ATOMIC_RELAXED);
	st->recoveries = __atomic_load_n(&h->stats.recoveries, __ATOMIC_RELAXED);
	st->recovery_failures = __atomic_load_n(&h->stats.recovery_failures,
	    __ATOMIC_RELAXED);
	st->session_repairs = __atomic_load_n(&h->stats.session_repairs, __ATOMIC_RELAXED);
	st->timeouts = __atomic_load_n(&h->stats.timeouts, __ATOMIC_RELAXED);
	st->refusals = __atomic_load_n(&h->stats.refusals, __ATOMIC_RELAXED);
	st->probe_stalls = __atomic_load_n(&h->stats.probe_stalls, __ATOMIC_RELAXED);
	st->scans = __atomic_load_n(&h->stats.scans, __ATOMIC_RELAXED);
	st->searches = __atomic_load_n(&h->stats.searches, __ATOMIC_RELAXED);
	st->token_pairs = __atomic_load_n(&h->stats.token_pairs, __ATOMIC_RELAXED);
	st->token_duplicates = __atomic_load_n(&h->stats.token_duplicates,
	    __ATOMIC_RELAXED);
	st->token_incomplete = __atomic_load_n(&h->stats.token_incomplete,
	    __ATOMIC_RELAXED);
	st->token_debris = __atomic_load_n(&h->stats.token_debris, __ATOMIC_RELAXED);
	st->scan_ms = __atomic_load_n(&h->stats.scan_ms, __ATOMIC_RELAXED);
	st->map_bytes = __atomic_load_n(&h->stats.map_bytes, __ATOMIC_RELAXED);
}

static void
hsm_now(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
}

static void
hsm_ts_add_ms(struct timespec *ts, unsigned int ms)
{
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Milliseconds from a to b (negative when b is earlier). */
static long long
hsm_ts_diff_ms(const struct timespec *a, const struct timespec *b)
{
	return (long long)(b->tv_sec - a->tv_sec) * 1000 +
	    (b->tv_nsec - a->tv_nsec) / 1000000L;
}

static long long
hsm_now_ms(void)
{
	struct timespec	ts;

	hsm_now(&ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000L;
}

/* Milliseconds the probe in flight has waited for the token; 0 when none is. */
static long long
hsm_probe_waited(const struct hsm *h)
{
	long long	since;

	since = __atomic_load_n(&h->probe_since, __ATOMIC_SEQ_CST);
	return since == 0 ? 0 : hsm_now_ms() - since;
}

enum hsm_state
hsm_get_state(const struct hsm *h)
{
	enum hsm_state	st;

	if (h == NULL)
		return HSM_STATE_DOWN;
	st = (enum hsm_state)__atomic_load_n(&h->state, __ATOMIC_SEQ_CST);
	/* A token that does not answer is down, whatever it last said. */
	if (st == HSM_STATE_OK && hsm_probe_waited(h) >= h->probe_timeout_ms)
		return HSM_STATE_DOWN;
	return st;
}

const char *
hsm_token_label(const struct hsm *h)
{
	return h->label;
}

enum hsm_signer
hsm_get_signer(const struct hsm *h)
{
	return h->signer;
}

const char *
hsm_keytype_name(enum hsm_keytype t)
{
	if ((unsigned int)t >= HSM_KEY_NTYPES)
		return NULL;
	return hsm_keytypes[t].name;
}

int
hsm_keytype_parse(const char *name, enum hsm_keytype *t)
{
	int	i;

	if (name == NULL)
		return KC_ERR_INVALID;
	for (i = 0; i < HSM_KEY_NTYPES; i++) {
		if (strcmp(name, hsm_keytypes[i].name) == 0) {
			*t = (enum hsm_keytype)i;
			return 0;
		}
	}
	return KC_ERR_INVALID;
}

/* The mechanism's info, when the token lists it and it has all of flags. */
static int
hsm_caps_mech(struct hsm *h, const CK_MECHANISM_TYPE *list, CK_ULONG n,
    CK_MECHANISM_TYPE m, CK_FLAGS flags, CK_MECHANISM_INFO *info)
{
	CK_ULONG	i;

	for (i = 0; i < n; i++)
		if (list[i] == m)
			break;
	if (i == n)
		return 0;
	memset(info, 0, sizeof(*info));
	if (h->f->C_GetMechanismInfo(h->slot, m, info) != CKR_OK)
		return 0;
	return (info->flags & flags) == flags;
}

/*
 * Whether the key size range of info covers bits. PKCS#11 gives EC sizes in bits, but
 * some modules give bytes; 0..0 says nothing, and is taken as no limit.
 */
static int
hsm_caps_size_ok(const CK_MECHANISM_INFO *info, CK_ULONG bits, int ec)
{
	if (info->ulMaxKeySize == 0)
		return 1;
	if (bits >= info->ulMinKeySize && bits <= info->ulMaxKeySize)
		return 1;
	return ec && bits / 8 >= info->ulMinKeySize && bits / 8 <= info->ulMaxKeySize;
}

/*
 * Derive, per key type, whether the token can make it and how it signs: the token's own
 * SHA-256 mechanism, or the raw one over a digest (RSA: a DigestInfo) built here. libp11's
 * engine always signs raw (CKM_RSA_PKCS, CKM_ECDSA), so with the engine signer the raw one
 * is required.
 */
static void
hsm_caps_kt_derive(struct hsm *h, const CK_MECHANISM_TYPE *list, CK_ULONG n,
    enum hsm_keytype t, struct hsm_caps_kt *kt)
{
	const struct hsm_keytype_desc *d = &hsm_keytypes[t];
	CK_MECHANISM_INFO	 info;
	CK_MECHANISM_TYPE	 gen, hashed, raw;
	CK_ULONG		 bits;
	const char		*genname, *hashedname, *rawname;
	int			 ec = d->ckk == CKK_EC;

	memset(kt, 0, sizeof(*kt));
	if (ec) {
		gen = CKM_EC_KEY_PAIR_GEN;
		genname = "CKM_EC_KEY_PAIR_GEN";
		hashed = CKM_ECDSA_SHA256;
		hashedname = "CKM_ECDSA_SHA256";
		raw = CKM_ECDSA;
		rawname = "CKM_ECDSA";
		bits = d->fieldlen * 8;
	} else {
		gen = CKM_RSA_PKCS_KEY_PAIR_GEN;
		genname = "CKM_RSA_PKCS_KEY_PAIR_GEN";
		hashed = CKM_SHA256_RSA_PKCS;
		hashedname = "CKM_SHA256_RSA_PKCS";
		raw = CKM_RSA_PKCS;
		rawname = "CKM_RSA_PKCS";
		bits = d->bits;
	}
	if (!hsm_caps_mech(h, list, n, gen, CKF_GENERATE_KEY_PAIR, &info)) {
		snprintf(kt->why, sizeof(kt->why), "the token offers no %s", genname);
		return;
	}
	if (!hsm_caps_size_ok(&info, bits, ec)) {
		snprintf(kt->why, sizeof(kt->why), "%s makes %lu..%lu-bit keys", genname,
		    (unsigned long)info.ulMinKeySize, (unsigned long)info.ulMaxKeySize);
		return;
	}
	if (h->signer != HSM_SIGNER_ENGINE &&
	    hsm_caps_mech(h, list, n, hashed, CKF_SIGN, &info) &&
	    hsm_caps_size_ok(&info, bits, ec)) {
		kt->sign = hashed;
		kt->prehash = 0;
	} else if (hsm_caps_mech(h, list, n, raw, CKF_SIGN, &info) &&
	    hsm_caps_size_ok(&info, bits, ec)) {
		kt->sign = raw;
		kt->prehash = 1;
	} else {
		if (h->signer == HSM_SIGNER_ENGINE)
			snprintf(kt->why, sizeof(kt->why), "the token cannot sign with %s "
			    "for %lu-bit keys (the engine signer's only mechanism)", rawname,
			    (unsigned long)bits);
		else
			snprintf(kt->why, sizeof(kt->why), "the token can sign with neither "
			    "%s nor %s for %lu-bit keys", hashedname, rawname,
			    (unsigned long)bits);
		return;
	}
	kt->can_sign = 1;
	kt->offered = 1;
}

/*
 * Ask the token what it can do (after the login: some tokens list mechanisms only
 * then). A token that cannot even list them is refused.
 */
static int
hsm_caps_probe(struct hsm *h, struct hsm_caps *c, char **cause)
{
	CK_MECHANISM_TYPE	*list = NULL;
	CK_MECHANISM_INFO	 info;
	CK_ULONG		 n = 0;
	CK_RV			 rv;
	int			 i;

	memset(c, 0, sizeof(*c));
	if ((rv = h->f->C_GetMechanismList(h->slot, NULL, &n)) == CKR_OK && n > 0) {
		/*
		 * One spare element: p11-kit's RPC client before 0.25 (Debian 12 has 0.24.1)
		 * reads one past the list when it removes a mechanism it cannot forward
		 * (mechanism_list_purge, p11-kit PR #456).
		 */
		if ((list = calloc(n + 1, sizeof(*list))) == NULL)
			return KC_ERR_NOMEM;
		rv = h->f->C_GetMechanismList(h->slot, list, &n);
	}
	if (rv != CKR_OK) {
		free(list);
		kc_cause(cause, "C_GetMechanismList on token \"%s\": %s", h->label,
		    hsm_ckr_name(rv));
		return KC_ERR_HSM;
	}
	for (i = 0; i < HSM_KEY_NTYPES; i++)
		hsm_caps_kt_derive(h, list, n, (enum hsm_keytype)i, &c->kt[i]);
	c->mac_gen = hsm_caps_mech(h, list, n, CKM_GENERIC_SECRET_KEY_GEN, CKF_GENERATE,
	    &info);
	c->mac_sign = hsm_caps_mech(h, list, n, CKM_SHA256_HMAC, CKF_SIGN, &info);
	free(list);
	return 0;
}

/* Install what hsm_caps_probe() found, keeping what key generation learnt of the token. */
static void
hsm_caps_set(struct hsm *h, const struct hsm_caps *c)
{
	int	i;

	pthread_mutex_lock(&h->lock);
	for (i = 0; i < HSM_KEY_NTYPES; i++) {
		/* A type the token refused to make (listed, but CKR_MECHANISM_INVALID). */
		if (h->caps.kt[i].refused)
			continue;
		h->caps.kt[i].offered = c->kt[i].offered;
		h->caps.kt[i].can_sign = c->kt[i].can_sign;
		h->caps.kt[i].sign = c->kt[i].sign;
		h->caps.kt[i].prehash = c->kt[i].prehash;
		memcpy(h->caps.kt[i].why, c->kt[i].why, sizeof(c->kt[i].why));
	}
	h->caps.mac_gen = c->mac_gen;
	h->caps.mac_sign = c->mac_sign;
	pthread_mutex_unlock(&h->lock);
}

/* Log what the token offers, once per (re)initialization. */
static void
hsm_caps_log(struct hsm *h)
{
	struct hsm_caps_kt	 kt;
	int			 i;

	for (i = 0; i < HSM_KEY_NTYPES; i++) {
		pthread_mutex_lock(&h->lock);
		kt = h->caps.kt[i];
		pthread_mutex_unlock(&h->lock);
		if (kt.offered)
			log_debug("hsm: %s: signed with %s%s", hsm_keytypes[i].name,
			    hsm_ckr_mech_name(kt.sign), kt.prehash ? " over a digest made "
			    "here" : "");
		else
			log_info("hsm: token \"%s\" cannot make %s keys: %s", h->label,
			    hsm_keytypes[i].name, kt.why);
	}
}

int
hsm_keytype_offered(const struct hsm *h, enum hsm_keytype t)
{
	int	offered;

	if (h == NULL || (unsigned int)t >= HSM_KEY_NTYPES)
		return 0;
	pthread_mutex_lock((pthread_mutex_t *)&h->lock);
	offered = h->caps.kt[t].offered;
	pthread_mutex_unlock((pthread_mutex_t *)&h->lock);
	return offered;
}

int
hsm_keytype_info(const struct hsm *h, enum hsm_keytype t, char *buf, size_t len)
{
	struct hsm_caps_kt	 kt;

	return_val_if_fail(h != NULL && (unsigned int)t < HSM_KEY_NTYPES, 0);
	pthread_mutex_lock((pthread_mutex_t *)&h->lock);
	kt = h->caps.kt[t];
	pthread_mutex_unlock((pthread_mutex_t *)&h->lock);
	if (kt.offered)
		snprintf(buf, len, "%s%s", hsm_ckr_mech_name(kt.sign),
		    kt.sign == CKM_RSA_PKCS ? " over a DigestInfo(SHA-256)" :
		    kt.prehash ? " over SHA-256" : "");
	else
		snprintf(buf, len, "%s", kt.why);
	return kt.offered;
}

const char *
hsm_history_missing(const struct hsm *h)
{
	static const char *const names[] = {
		NULL, "CKA_ALWAYS_SENSITIVE", "CKA_NEVER_EXTRACTABLE",
		"CKA_ALWAYS_SENSITIVE CKA_NEVER_EXTRACTABLE"
	};

	if (h == NULL)
		return NULL;
	return names[__atomic_load_n(&h->history_missing, __ATOMIC_RELAXED) & 3];
}

int
hsm_mac_offered(const struct hsm *h)
{
	int	ok;

	if (h == NULL)
		return 0;
	pthread_mutex_lock((pthread_mutex_t *)&h->lock);
	ok = h->caps.mac_sign;
	pthread_mutex_unlock((pthread_mutex_t *)&h->lock);
	return ok;
}

/*
 * Per-session failures: a fresh session (and login) repairs them. CKR_OPERATION_ACTIVE is
 * a session left mid-operation by a call that failed without ending it (a module's bug,
 * or a fault in front of it): only a new session is sure to be clean.
 */
static int
hsm_ckr_is_session(CK_RV rv)
{
	return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
	    rv == CKR_USER_NOT_LOGGED_IN || rv == CKR_OPERATION_ACTIVE;
}

/* Per-module failures: the token or the module is gone; only re-initialization helps. */
static int
hsm_ckr_is_module(CK_RV rv)
{
	return rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT ||
	    rv == CKR_CRYPTOKI_NOT_INITIALIZED;
}

/*
 * What modules answer both to an operation they refuse and to an outage: tpm2-pkcs11
 * gives CKR_GENERAL_ERROR for a template it does not take, a network HSM's client
 * CKR_DEVICE_ERROR for a lost server. Only a probe tells which (hsm_op_result()).
 */
static int
hsm_ckr_is_ambiguous(CK_RV rv)
{
	return rv == CKR_GENERAL_ERROR || rv == CKR_DEVICE_ERROR || rv == CKR_DEVICE_MEMORY;
}

/* The login failed for good: no call, recovery included, logs in again. */
static void
hsm_login_failed(struct hsm *h, CK_RV rv, const char *what)
{
	h->login_err = rv == CKR_PIN_LOCKED ? KC_ERR_PIN_LOCKED : KC_ERR_PIN_INCORRECT;
	if (hsm_get_state(h) != HSM_STATE_LOGIN_FAILED)
		log_warnx("hsm: %s on token \"%s\": %s; login will not be retried", what,
		    h->label, hsm_ckr_name(rv));
	hsm_set_state(h, HSM_STATE_LOGIN_FAILED);
}

/*
 * The module failed: mark the token down (once) and schedule the first recovery attempt.
 * Requests fail fast from now on.
 */
static void
hsm_mark_down(struct hsm *h, CK_RV rv, const char *what)
{
	struct timespec	now;

	pthread_mutex_lock(&h->rlock);
	/* The state as last set: a probe that is merely late does not count here. */
	if (__atomic_load_n(&h->state, __ATOMIC_SEQ_CST) == HSM_STATE_OK) {
		hsm_now(&now);
		h->backoff_ms = HSM_BACKOFF_MIN_MS;
		h->attempts = 0;
		h->next_try = now;
		hsm_ts_add_ms(&h->next_try, h->backoff_ms);
		hsm_set_state(h, HSM_STATE_DOWN);
		hsm_stat_inc(h, module_failures);
		log_warnx("hsm: %s: %s; token \"%s\" marked down, re-initializing in %u ms",
		    what, hsm_ckr_name(rv), h->label, h->backoff_ms);
	}
	pthread_mutex_unlock(&h->rlock);
}

/* Count a PKCS#11 error by its CKR_* name, for metrics (not our own HSM_CKR_* codes). */
static void
hsm_count_ckr(CK_RV rv)
{
	size_t	 i;

	if (rv == CKR_OK || (rv & HSM_CKR_BASE) == HSM_CKR_BASE)
		return;
	for (i = 0; i < HSM_NCKR && hsm_ckr_names[i].rv != rv; i++)
		;
	__atomic_fetch_add(&hsm_ckr_counts[i], 1, __ATOMIC_RELAXED);
}

size_t
hsm_ckr_errors(struct hsm_ckr_count *v, size_t max)
{
	uint64_t	 n;
	size_t		 i, k = 0;

	for (i = 0; i <= HSM_NCKR && k < max; i++) {
		if ((n = __atomic_load_n(&hsm_ckr_counts[i], __ATOMIC_RELAXED)) == 0)
			continue;
		v[k].name = i < HSM_NCKR ? hsm_ckr_names[i].name : "other";
		v[k++].count = n;
	}
	return k;
}

/*
 * Translate the outcome of an operation on a session into a KC_ERR_* code, marking the
 * token down when the module failed.
 */
static int
hsm_result(struct hsm *h, CK_RV rv, const char *what)
{
	hsm_count_ckr(rv);
	switch (rv) {
	case CKR_OK:
		return 0;
	case HSM_CKR_NOMEM:
	case CKR_HOST_MEMORY:
		return KC_ERR_NOMEM;
	case HSM_CKR_CRYPTO:
		return KC_ERR_CRYPTO;
	case HSM_CKR_UNSAFE:
		return KC_ERR_KEY_UNSAFE;
	case HSM_CKR_NOT_FOUND:
		return KC_ERR_NOT_FOUND;
	case CKR_PIN_INCORRECT:
	case CKR_PIN_LOCKED:
		hsm_login_failed(h, rv, what);
		return h->login_err;
	}
	if (hsm_ckr_is_module(rv) || hsm_ckr_is_ambiguous(rv)) {
		hsm_mark_down(h, rv, what);
		return KC_ERR_UNAVAILABLE;
	}
	/* A session error that one repair did not cure, while the module went down. */
	if (hsm_ckr_is_session(rv) && hsm_get_state(h) != HSM_STATE_OK)
		return KC_ERR_UNAVAILABLE;
	log_warnx("hsm: %s: %s", what, hsm_ckr_name(rv));
	return KC_ERR_HSM;
}

/*
 * hsm_result() for an operation on s, where an ambiguous error is read in context: if the
 * token still answers on the session, it refused this operation and stays up.
 */
static int
hsm_op_result(struct hsm_session *s, CK_RV rv, const char *what)
{
	struct hsm	*h = s->h;
	CK_SESSION_INFO	 info;
	CK_RV		 prv;

	if (!hsm_ckr_is_ambiguous(rv) || !s->open)
		return hsm_result(h, rv, what);
	prv = h->f->C_GetSessionInfo(s->sh, &info);
	if (prv != CKR_OK) {
		log_warnx("hsm: %s: %s, and the token does not answer a probe (%s)", what,
		    hsm_ckr_name(rv), hsm_ckr_name(prv));
		return hsm_result(h, rv, what);
	}
	hsm_count_ckr(rv);
	hsm_stat_inc(h, refusals);
	log_warnx("hsm: %s: %s; the token answers, so it refused this operation (the token "
	    "stays up)", what, hsm_ckr_name(rv));
	return KC_ERR_HSM;
}

/* The token logged us in again: it holds none of the objects the old login loaded. */
static void
hsm_login_new(struct hsm *h)
{
	__atomic_store_n(&h->login_made, 0, __ATOMIC_RELAXED);
	__atomic_add_fetch(&h->login_gen, 1, __ATOMIC_RELAXED);
}

/* Log in on sh with the kept PIN copy, if there is one; never after a PIN failure. */
static CK_RV
hsm_relogin(struct hsm *h, CK_SESSION_HANDLE sh)
{
	CK_RV	rv;

	if (hsm_get_state(h) == HSM_STATE_LOGIN_FAILED)
		return CKR_PIN_INCORRECT;
	if (h->pin == NULL)
		return CKR_USER_NOT_LOGGED_IN;
	rv = h->f->C_Login(sh, CKU_USER, (CK_UTF8CHAR_PTR)h->pin, h->pinlen);
	if (rv == CKR_USER_ALREADY_LOGGED_IN)
		rv = CKR_OK;
	return rv;
}

/*
 * After a per-session failure: close the session, open a new one and log in again if the
 * token forgot us. Returns 1 when the caller should retry the operation once.
 */
static int
hsm_session_recover(struct hsm_session *s, CK_RV failed)
{
	struct hsm	*h = s->h;
	CK_SESSION_INFO	 info;
	CK_RV		 rv;

	if (!hsm_ckr_is_session(failed))
		return 0;
	log_info("hsm: %s: reopening the session", hsm_ckr_name(failed));
	hsm_stat_inc(h, session_repairs);
	if (s->open)
		(void)h->f->C_CloseSession(s->sh);
	s->open = 0;
	rv = h->f->C_OpenSession(h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
	    NULL, &s->sh);
	if (rv != CKR_OK) {
		(void)hsm_result(h, rv, "C_OpenSession");
		return 0;
	}
	s->open = 1;
	s->modepoch = h->modepoch;
	rv = h->f->C_GetSessionInfo(s->sh, &info);
	if (rv != CKR_OK) {
		(void)hsm_result(h, rv, "C_GetSessionInfo");
		return 0;
	}
	if (info.state != CKS_RW_USER_FUNCTIONS) {
		rv = hsm_relogin(h, s->sh);
		if (rv != CKR_OK) {
			(void)hsm_result(h, rv, "C_Login (again)");
			return 0;
		}
		log_info("hsm: logged in to token \"%s\" again", h->label);
		hsm_login_new(h);
		hsm_map_flush(h);
	}
	return 1;
}

/* Keep a PIN copy in a locked page that never reaches a core dump. */
static void
hsm_pin_keep(struct hsm *h, const char *pin, size_t pinlen)
{
	long	 pg;
	size_t	 len;
	void	*p;

	if ((pg = sysconf(_SC_PAGESIZE)) <= 0)
		pg = 4096;
	len = ((pinlen + 1 + (size_t)pg - 1) / (size_t)pg) * (size_t)pg;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		log_warn("hsm: mmap for the PIN copy");
		return;
	}
	if (mlock(p, len) == -1) {
		log_warn("hsm: mlock for the PIN copy; a lost login will not be repaired");
		munmap(p, len);
		return;
	}
#ifdef MADV_DONTDUMP
	(void)madvise(p, len, MADV_DONTDUMP);
#endif
	memcpy(p, pin, pinlen);
	h->pin = p;
	h->pinlen = pinlen;
	h->pinmap = len;
}

static void
hsm_pin_wipe(struct hsm *h)
{
	if (h->pin == NULL)
		return;
	OPENSSL_cleanse(h->pin, h->pinmap);
	munlock(h->pin, h->pinmap);
	munmap(h->pin, h->pinmap);
	h->pin = NULL;
	h->pinlen = h->pinmap = 0;
}

/* Does a space-padded CK_TOKEN_INFO label equal label? */
static int
hsm_label_match(const CK_UTF8CHAR *padded, const char *label)
{
	size_t	len = strlen(label), i;

	if (len > HSM_TOKEN_LABEL_LEN || memcmp(padded, label, len) != 0)
		return 0;
	for (i = len; i < HSM_TOKEN_LABEL_LEN; i++)
		if (padded[i] != ' ')
			return 0;
	return 1;
}

/* Find the one slot holding a token with this label. */
static int
hsm_find_slot(struct hsm *h, const char *label, char **cause)
{
	CK_SLOT_ID	*slots = NULL;
	CK_ULONG	 n = 0, i, found = 0;
	CK_TOKEN_INFO	 ti;
	CK_RV		 rv;
	int		 r;

	for (;;) {
		rv = h->f->C_GetSlotList(CK_TRUE, NULL, &n);
		if (rv != CKR_OK)
			goto ckerr;
		free(slots);
		if ((slots = calloc(n ? n : 1, sizeof(*slots))) == NULL) {
			r = KC_ERR_NOMEM;
			goto out;
		}
		rv = h->f->C_GetSlotList(CK_TRUE, slots, &n);
		if (rv == CKR_BUFFER_TOO_SMALL)
			continue;
		if (rv != CKR_OK)
			goto ckerr;
		break;
	}
	for (i = 0; i < n; i++) {
		rv = h->f->C_GetTokenInfo(slots[i], &ti);
		if (rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_TOKEN_NOT_RECOGNIZED)
			continue;
		if (rv != CKR_OK)
			goto ckerr;
		if (!hsm_label_match(ti.label, label))
			continue;
		if (found++ == 0)
			h->slot = slots[i];
	}
	if (found == 0) {
		r = KC_ERR_TOKEN_NOT_PRESENT;
		kc_cause(cause, "no token labelled \"%s\" (%lu token%s present)",
		    label, (unsigned long)n, n == 1 ? "" : "s");
		goto out;
	}
	if (found > 1) {
		r = KC_ERR_HSM;
		kc_cause(cause, "%lu tokens are labelled \"%s\"; labels must be "
		    "unique", (unsigned long)found, label);
		goto out;
	}
	r = 0;
	goto out;
 ckerr:
	r = rv == CKR_TOKEN_NOT_PRESENT ? KC_ERR_TOKEN_NOT_PRESENT : KC_ERR_HSM;
	kc_cause(cause, "listing tokens: %s", hsm_ckr_name(rv));
 out:
	free(slots);
	return r;
}

/* Make the engine wipe its PIN copy (libp11 cleanses the old one when given a new one). */
static void
hsm_engine_forget_pin(ENGINE *e)
{
	if (!ENGINE_ctrl_cmd_string(e, "PIN", "", 0))
		ERR_clear_error();
}

/* Load libp11's engine through OpenSSL's dynamic engine and hand it the module and PIN. */
static int
hsm_engine_open(struct hsm *h, const struct hsm_config *cfg, const char *pin,
    size_t pinlen, char **cause)
{
	ENGINE		*e = NULL;
	const char	*path;
	char		*pinz = NULL, errs[512];
	int		 r = KC_ERR_HSM, inited = 0, ok;

	path = cfg->engine_path != NULL ? cfg->engine_path : KC_DEFAULT_ENGINE;
	/*
	 * libp11's engine cannot be bound a second time in one process once it has been used
	 * (the second dynamic LOAD fails), so it stays in OpenSSL's engine list for the
	 * process's life and a later hsm_open() finds it there. ENGINE_by_id("pkcs11") is not
	 * used for that: it would load whatever pkcs11.so lies in OpenSSL's engines directory.
	 */
	for (e = ENGINE_get_first(); e != NULL; e = ENGINE_get_next(e))
		if (strcmp(ENGINE_get_id(e), "pkcs11") == 0)
			break;
	if (e != NULL)
		goto loaded;
	ENGINE_load_dynamic();
	if ((e = ENGINE_by_id("dynamic")) == NULL ||
	    !ENGINE_ctrl_cmd_string(e, "SO_PATH", path, 0) ||
	    !ENGINE_ctrl_cmd_string(e, "ID", "pkcs11", 0) ||
	    !ENGINE_ctrl_cmd_string(e, "LIST_ADD", "1", 0) ||
	    !ENGINE_ctrl_cmd_string(e, "LOAD", NULL, 0)) {
		hsm_ossl_errors(errs, sizeof(errs));
		kc_cause(cause, "loading the pkcs11 engine %s: %s", path, errs);
		goto out;
	}
 loaded:
	if (!ENGINE_ctrl_cmd_string(e, "MODULE_PATH", cfg->module, 0)) {
		hsm_ossl_errors(errs, sizeof(errs));
		kc_cause(cause, "pkcs11 engine MODULE_PATH: %s", errs);
		goto out;
	}
	/* libp11 initializes the module itself: it needs the same arguments. */
	if (cfg->init_args != NULL &&
	    !ENGINE_ctrl_cmd_string(e, "INIT_ARGS", cfg->init_args, 0)) {
		hsm_ossl_errors(errs, sizeof(errs));
		kc_cause(cause, "pkcs11 engine INIT_ARGS: %s", errs);
		goto out;
	}
	/* The engine wants a C string; it keeps its own copy (and libp11 another). */
	if ((pinz = malloc(pinlen + 1)) == NULL) {
		r = KC_ERR_NOMEM;
		goto out;
	}
	memcpy(pinz, pin, pinlen);
	pinz[pinlen] = '\0';
	ok = ENGINE_ctrl_cmd_string(e, "PIN", pinz, 0);
	OPENSSL_cleanse(pinz, pinlen + 1);
	if (!ok) {
		hsm_ossl_errors(errs, sizeof(errs));
		kc_cause(cause, "pkcs11 engine PIN: %s", errs);
		goto out;
	}
	if (!ENGINE_init(e)) {
		hsm_ossl_errors(errs, sizeof(errs));
		kc_cause(cause, "pkcs11 engine init: %s", errs);
		goto out;
	}
	inited = 1;
	h->engine = e;
	e = NULL;
	r = 0;
 out:
	free(pinz);
	if (e != NULL) {
		if (inited)
			ENGINE_finish(e);
		hsm_engine_forget_pin(e);
		ENGINE_free(e);
		ERR_clear_error();
	}
	return r;
}

/*
 * C_Initialize's arguments: we are multi-threaded and let the module use the OS's locks;
 * pReserved carries the configured module arguments (NSS softoken reads its database
 * location there), as PKCS#11 2.40 section 5.4 allows.
 */
static void
hsm_init_args(const struct hsm *h, CK_C_INITIALIZE_ARGS *args)
{
	memset(args, 0, sizeof(*args));
	args->flags = CKF_OS_LOCKING_OK;
	args->pReserved = h->init_args;
}

int
hsm_open(const struct hsm_config *cfg, const char *pin, size_t pinlen, struct hsm **hp,
    char **cause)
{
	struct hsm		*h = NULL;
	CK_C_GetFunctionList	 getfl;
	CK_C_INITIALIZE_ARGS	 args;
	struct hsm_caps		 caps;
	CK_RV			 rv;
	int			 r;

	if (cause != NULL)
		*cause = NULL;
	*hp = NULL;
	if (cfg == NULL || cfg->module == NULL || cfg->token_label == NULL ||
	    pin == NULL) {
		kc_cause(cause, "hsm: module, token label and PIN are required");
		return KC_ERR_INVALID;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return KC_ERR_NOMEM;
	h->signer = cfg->signer;
	h->accept_no_history = cfg->accept_no_history;
	h->state = HSM_STATE_DOWN;
	h->retry_max_ms = cfg->retry_max_ms > 0 ? cfg->retry_max_ms : HSM_RETRY_MAX_MS;
	if (h->retry_max_ms < HSM_BACKOFF_MIN_MS)
		h->retry_max_ms = HSM_BACKOFF_MIN_MS;
	h->probe_timeout_ms = cfg->probe_timeout_ms > 0 ? cfg->probe_timeout_ms :
	    HSM_PROBE_TIMEOUT_MS;
	TAILQ_INIT(&h->sessions);
	pthread_mutex_init(&h->lock, NULL);
	pthread_rwlock_init(&h->search_lock, NULL);
	pthread_rwlock_init(&h->scan_lock, NULL);
	hsm_map_init(&h->map);
	pthread_mutex_init(&h->rlock, NULL);
	pthread_rwlock_init(&h->modlock, NULL);
	if ((h->label = strdup(cfg->token_label)) == NULL ||
	    (h->module = strdup(cfg->module)) == NULL ||
	    (cfg->engine_path != NULL &&
	    (h->engine_path = strdup(cfg->engine_path)) == NULL) ||
	    (cfg->init_args != NULL && (h->init_args = strdup(cfg->init_args)) == NULL)) {
		r = KC_ERR_NOMEM;
		goto out;
	}

	if ((h->dl = dlopen(cfg->module, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		r = KC_ERR_HSM;
		kc_cause(cause, "loading PKCS#11 module: %s", dlerror());
		goto out;
	}
	if ((getfl = (CK_C_GetFunctionList)dlsym(h->dl, "C_GetFunctionList")) == NULL) {
		r = KC_ERR_HSM;
		kc_cause(cause, "%s is not a PKCS#11 module (no C_GetFunctionList)",
		    cfg->module);
		goto out;
	}
	if ((rv = getfl(&h->f)) != CKR_OK || h->f == NULL) {
		r = KC_ERR_HSM;
		kc_cause(cause, "C_GetFunctionList: %s", hsm_ckr_name(rv));
		goto out;
	}

	hsm_init_args(h, &args);
	rv = h->f->C_Initialize(&args);
	if (rv == CKR_OK)
		h->initialized = 1;
	else if (rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		r = KC_ERR_HSM;
		kc_cause(cause, "C_Initialize: %s", hsm_ckr_name(rv));
		goto out;
	}

	if ((r = hsm_find_slot(h, cfg->token_label, cause)) != 0)
		goto out;

	rv = h->f->C_OpenSession(h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
	    NULL, &h->login_sh);
	if (rv != CKR_OK) {
		r = rv == CKR_TOKEN_NOT_PRESENT ? KC_ERR_TOKEN_NOT_PRESENT : KC_ERR_HSM;
		kc_cause(cause, "C_OpenSession on token \"%s\": %s", h->label,
		    hsm_ckr_name(rv));
		goto out;
	}
	h->login_open = 1;

	rv = h->f->C_Login(h->login_sh, CKU_USER, (CK_UTF8CHAR_PTR)pin, pinlen);
	switch (rv) {
	case CKR_OK:
	case CKR_USER_ALREADY_LOGGED_IN:
		break;
	case CKR_PIN_INCORRECT:
		r = KC_ERR_PIN_INCORRECT;
		kc_cause(cause, "login to token \"%s\": PIN incorrect; not retried",
		    h->label);
		goto out;
	case CKR_PIN_LOCKED:
		r = KC_ERR_PIN_LOCKED;
		kc_cause(cause, "login to token \"%s\": PIN locked; not retried", h->label);
		goto out;
	case CKR_TOKEN_NOT_PRESENT:
		r = KC_ERR_TOKEN_NOT_PRESENT;
		kc_cause(cause, "login to token \"%s\": token not present", h->label);
		goto out;
	default:
		r = KC_ERR_HSM;
		kc_cause(cause, "login to token \"%s\": %s", h->label,
		    hsm_ckr_name(rv));
		goto out;
	}
	hsm_pin_keep(h, pin, pinlen);

	if ((r = hsm_caps_probe(h, &caps, cause)) != 0)
		goto out;
	hsm_caps_set(h, &caps);
	hsm_caps_log(h);

	if (h->signer == HSM_SIGNER_ENGINE &&
	    (r = hsm_engine_open(h, cfg, pin, pinlen, cause)) != 0)
		goto out;

	hsm_set_state(h, HSM_STATE_OK);
	log_debug("hsm: token \"%s\" open (slot %lu), %s signer", h->label,
	    (unsigned long)h->slot, h->signer == HSM_SIGNER_ENGINE ? "engine" : "direct");
	*hp = h;
	h = NULL;
	r = 0;
 out:
	hsm_close(h);
	return r;
}

void
hsm_close(struct hsm *h)
{
	struct hsm_session	*s;
	CK_RV			 rv;

	if (h == NULL)
		return;

	pthread_mutex_lock(&h->lock);
	while ((s = TAILQ_FIRST(&h->sessions)) != NULL) {
		log_warnx("hsm: closing a session its worker did not free");
		TAILQ_REMOVE(&h->sessions, s, entry);
		if (s->open && s->modepoch == h->modepoch)
			(void)h->f->C_CloseSession(s->sh);
		s->open = 0;
		s->h = NULL;
	}
	pthread_mutex_unlock(&h->lock);

	if (h->login_open) {
		(void)h->f->C_Logout(h->login_sh);
		(void)h->f->C_CloseSession(h->login_sh);
		h->login_open = 0;
	}

	/*
	 * libp11 shares the module with us and finalizes it when the engine finishes: let it
	 * go first, then finalize ourselves (which may find it already finalized).
	 */
	if (h->engine != NULL) {
		ENGINE_finish(h->engine);
		hsm_engine_forget_pin(h->engine);
		ENGINE_free(h->engine);
		h->engine = NULL;
		ERR_clear_error();
	}
	if (h->initialized) {
		rv = h->f->C_Finalize(NULL);
		if (rv != CKR_OK && rv != CKR_CRYPTOKI_NOT_INITIALIZED)
			log_warnx("hsm: C_Finalize: %s", hsm_ckr_name(rv));
	}
	if (h->dl != NULL)
		dlclose(h->dl);

	hsm_map_uninit(&h->map, hsm_map_entry_free);
	hsm_pin_wipe(h);
	pthread_rwlock_destroy(&h->modlock);
	pthread_mutex_destroy(&h->rlock);
	pthread_rwlock_destroy(&h->search_lock);
	pthread_rwlock_destroy(&h->scan_lock);
	pthread_mutex_destroy(&h->lock);
	free(h->label);
	free(h->module);
	free(h->engine_path);
	free(h->init_args);
	free(h);
}

/*
 * Re-initialize the module with nobody inside it (h->modlock held exclusively): every
 * session handle dies with C_Finalize, so worker sessions are reopened lazily by
 * hsm_op_begin() when they see the new modepoch.
 */
static int
hsm_reinit_inlock(struct hsm *h, char **cause)
{
	struct hsm_config	 cfg;
	struct hsm_session	*s;
	struct hsm_caps		 caps;
	CK_C_INITIALIZE_ARGS	 args;
	CK_RV			 rv;
	int			 r;

	pthread_mutex_lock(&h->lock);
	h->modepoch++;
	TAILQ_FOREACH(s, &h->sessions, entry)
		s->open = 0;
	pthread_mutex_unlock(&h->lock);
	h->login_open = 0;

	/* libp11 shares the module and finalizes it when the engine finishes: it goes first. */
	if (h->engine != NULL) {
		ENGINE_finish(h->engine);
		hsm_engine_forget_pin(h->engine);
		ENGINE_free(h->engine);
		h->engine = NULL;
		ERR_clear_error();
	}
	(void)h->f->C_Finalize(NULL);
	h->initialized = 0;

	hsm_init_args(h, &args);
	rv = h->f->C_Initialize(&args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		hsm_count_ckr(rv);
		kc_cause(cause, "C_Initialize: %s", hsm_ckr_name(rv));
		return KC_ERR_UNAVAILABLE;
	}
	h->initialized = rv == CKR_OK;

	/* Slot ids may change across C_Initialize: find the token by its label again. */
	if ((r = hsm_find_slot(h, h->label, cause)) != 0)
		return r == KC_ERR_NOMEM ? r : KC_ERR_UNAVAILABLE;
	rv = h->f->C_OpenSession(h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
	    &h->login_sh);
	if (rv != CKR_OK) {
		hsm_count_ckr(rv);
		kc_cause(cause, "C_OpenSession: %s", hsm_ckr_name(rv));
		return KC_ERR_UNAVAILABLE;
	}
	h->login_open = 1;
	if (h->pin == NULL) {
		kc_cause(cause, "no PIN copy was kept (mlock failed); restart the daemon");
		return KC_ERR_UNAVAILABLE;
	}
	rv = hsm_relogin(h, h->login_sh);
	hsm_count_ckr(rv);
	if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED) {
		hsm_login_failed(h, rv, "C_Login (re-initialization)");
		return h->login_err;
	}
	if (rv != CKR_OK) {
		kc_cause(cause, "C_Login: %s", hsm_ckr_name(rv));
		return KC_ERR_UNAVAILABLE;
	}
	/* The module may have been replaced (a network HSM's other end): ask again. */
	if ((r = hsm_caps_probe(h, &caps, cause)) != 0)
		return r == KC_ERR_NOMEM ? r : KC_ERR_UNAVAILABLE;
	hsm_caps_set(h, &caps);
	hsm_caps_log(h);
	if (h->signer == HSM_SIGNER_ENGINE) {
		memset(&cfg, 0, sizeof(cfg));
		cfg.module = h->module;
		cfg.token_label = h->label;
		cfg.engine_path = h->engine_path;
		cfg.init_args = h->init_args;
		cfg.signer = h->signer;
		if ((r = hsm_engine_open(h, &cfg, h->pin, h->pinlen, cause)) != 0)
			return r == KC_ERR_NOMEM ? r : KC_ERR_UNAVAILABLE;
	}
	hsm_login_new(h);
	/* Handles may have been renumbered: hsm_key_find() fills the map again. */
	hsm_map_flush(h);
	return 0;
}

int
hsm_recover(struct hsm *h)
{
	struct timespec	 now;
	char		*cause = NULL;
	int		 r;

	return_val_if_fail(h != NULL, KC_ERR_INVALID);
	switch (hsm_get_state(h)) {
	case HSM_STATE_OK:
		return 0;
	case HSM_STATE_LOGIN_FAILED:
		return h->login_err;
	default:
		break;
	}
	hsm_now(&now);
	pthread_mutex_lock(&h->rlock);
	if (h->recovering || hsm_ts_diff_ms(&h->next_try, &now) < 0) {
		pthread_mutex_unlock(&h->rlock);
		return KC_ERR_UNAVAILABLE;
	}
	h->recovering = 1;
	h->last_try = now;
	pthread_mutex_unlock(&h->rlock);

	/* Requests still inside the old module (a slow call): look again shortly. */
	if (pthread_rwlock_trywrlock(&h->modlock) != 0) {
		pthread_mutex_lock(&h->rlock);
		h->recovering = 0;
		h->next_try = now;
		hsm_ts_add_ms(&h->next_try, 100);
		pthread_mutex_unlock(&h->rlock);
		return KC_ERR_UNAVAILABLE;
	}
	r = hsm_reinit_inlock(h, &cause);
	if (r == 0)
		hsm_set_state(h, HSM_STATE_OK);
	pthread_rwlock_unlock(&h->modlock);

	pthread_mutex_lock(&h->rlock);
	h->recovering = 0;
	if (r == 0) {
		hsm_stat_inc(h, recoveries);
		log_info("hsm: token \"%s\" is back after %u failed attempt%s",
		    h->label, h->attempts, h->attempts == 1 ? "" : "s");
		h->attempts = 0;
		h->backoff_ms = HSM_BACKOFF_MIN_MS;
	} else if (hsm_get_state(h) == HSM_STATE_DOWN) {
		hsm_stat_inc(h, recovery_failures);
		h->attempts++;
		h->backoff_ms = h->backoff_ms >= h->retry_max_ms / 2 ? h->retry_max_ms :
		    h->backoff_ms * 2;
		hsm_now(&h->next_try);
		hsm_ts_add_ms(&h->next_try, h->backoff_ms);
		log_warnx("hsm: re-initializing token \"%s\" failed (attempt %u): %s; next "
		    "attempt in %u ms", h->label, h->attempts,
		    cause != NULL ? cause : kc_strerror(r), h->backoff_ms);
		r = KC_ERR_UNAVAILABLE;
	}
	pthread_mutex_unlock(&h->rlock);
	free(cause);
	return r;
}

unsigned int
hsm_retry_after(struct hsm *h)
{
	struct timespec	 now, next;
	long long	 ms;

	if (h == NULL || hsm_get_state(h) != HSM_STATE_DOWN)
		return 0;
	hsm_now(&now);
	pthread_mutex_lock(&h->rlock);
	next = h->next_try;
	pthread_mutex_unlock(&h->rlock);
	ms = hsm_ts_diff_ms(&now, &next);
	return ms <= 1000 ? 1 : (unsigned int)((ms + 999) / 1000);
}

/* The probe while the token is up: does it answer on the login session, and in time? */
static void
hsm_probe_up(struct hsm *h)
{
	CK_SESSION_INFO	 info;
	CK_RV		 rv;
	long long	 took;

	if (!h->login_open)
		return;
	__atomic_store_n(&h->probe_since, hsm_now_ms() | 1, __ATOMIC_SEQ_CST);
	rv = h->f->C_GetSessionInfo(h->login_sh, &info);
	took = hsm_probe_waited(h);
	__atomic_store_n(&h->probe_since, 0, __ATOMIC_SEQ_CST);
	if (took >= h->probe_timeout_ms) {
		hsm_stat_inc(h, probe_stalls);
		log_warnx("hsm: token \"%s\" answered a probe after %lld ms; it was reported "
		    "down from %u ms on", h->label, took, h->probe_timeout_ms);
	}
	if (rv != CKR_OK) {
		/* The login session is gone with the token's state: re-initialize. */
		hsm_count_ckr(rv);
		hsm_mark_down(h, rv, "probe (C_GetSessionInfo)");
		return;
	}
	if (info.state == CKS_RW_USER_FUNCTIONS)
		return;
	/* The token forgot our login (it restarted under a live session). */
	rv = hsm_relogin(h, h->login_sh);
	if (rv == CKR_OK) {
		log_info("hsm: probe: logged in to token \"%s\" again", h->label);
		hsm_map_flush(h);
	} else
		(void)hsm_result(h, rv, "C_Login (probe)");
}

/*
 * The probe while the token is down: if the loaded module answers for the token again,
 * try to re-initialize now rather than at the end of the back-off, but never more than
 * once per HSM_PROBE_INTERVAL_MS.
 */
static void
hsm_probe_down(struct hsm *h, const struct timespec *now)
{
	CK_TOKEN_INFO	 info;
	struct timespec	 soonest;

	if (!h->initialized || h->f->C_GetTokenInfo(h->slot, &info) != CKR_OK)
		return;
	pthread_mutex_lock(&h->rlock);
	soonest = h->last_try;
	hsm_ts_add_ms(&soonest, HSM_PROBE_INTERVAL_MS);
	if (hsm_ts_diff_ms(&soonest, now) < 0)
		soonest = *now;
	if (hsm_ts_diff_ms(&soonest, &h->next_try) > 0) {
		h->next_try = soonest;
		log_debug("hsm: token \"%s\" answers a probe; re-initializing early",
		    h->label);
	}
	pthread_mutex_unlock(&h->rlock);
}

void
hsm_probe(struct hsm *h)
{
	struct timespec	now;
	int		st;

	if (h == NULL)
		return;
	hsm_now(&now);
	st = __atomic_load_n(&h->state, __ATOMIC_SEQ_CST);
	if (st == HSM_STATE_LOGIN_FAILED ||
	    (st == HSM_STATE_OK &&
	    hsm_ts_diff_ms(&h->probe_last, &now) < HSM_PROBE_INTERVAL_MS))
		return;
	h->probe_last = now;
	/* Held like an operation: never inside a re-initialization. */
	if (pthread_rwlock_tryrdlock(&h->modlock) != 0)
		return;
	if (st == HSM_STATE_OK)
		hsm_probe_up(h);
	else
		hsm_probe_down(h, &now);
	pthread_rwlock_unlock(&h->modlock);
}

/* Open s->sh in the current module epoch. Called with h->modlock held shared. */
static CK_RV
hsm_session_open(struct hsm_session *s)
{
	struct hsm	*h = s->h;
	CK_RV		 rv;

	if (s->open && s->modepoch == h->modepoch)
		return CKR_OK;
	if (s->open && s->modepoch != h->modepoch)
		log_debug("hsm: the module was re-initialized; reopening a worker session");
	s->open = 0;
	rv = h->f->C_OpenSession(h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
	    &s->sh);
	if (rv != CKR_OK)
		return rv;
	s->open = 1;
	s->modepoch = h->modepoch;
	return CKR_OK;
}

/*
 * Enter an operation on s: fail fast while the token is down (after trying to bring it
 * back when its backoff has elapsed), hold the module against re-initialization until
 * hsm_op_end(), and reopen the session if the module was re-initialized since. An undo
 * (cleanup) still runs while the token is DOWN, on the module instance that is loaded, and
 * past the deadline. Every 0 return is paired with hsm_op_end().
 */
static int
hsm_op_begin(struct hsm_session *s, int cleanup)
{
	struct hsm	*h = s->h;
	CK_RV		 rv;
	int		 r;

	if ((r = hsm_recover(h)) != 0) {
		if (!cleanup || hsm_get_state(h) != HSM_STATE_DOWN)
			return KC_ERR_UNAVAILABLE;
	}
	hsm_now(&s->op_start);
	if (!cleanup && s->has_deadline && hsm_ts_diff_ms(&s->deadline, &s->op_start) >= 0) {
		hsm_stat_inc(h, timeouts);
		return KC_ERR_TIMEOUT;
	}
	pthread_rwlock_rdlock(&h->modlock);
	if ((rv = hsm_session_open(s)) != CKR_OK) {
		r = hsm_result(h, rv, "C_OpenSession");
		pthread_rwlock_unlock(&h->modlock);
		return r;
	}
	return 0;
}

static void
hsm_op_end(struct hsm_session *s)
{
	pthread_rwlock_unlock(&s->h->modlock);
}

int
hsm_session_probe(struct hsm_session *s)
{
	CK_SESSION_INFO	 info;
	CK_RV		 rv;
	int		 r;

	return_val_if_fail(s != NULL && s->h != NULL, KC_ERR_INVALID);
	if ((r = hsm_op_begin(s, 0)) != 0)
		return r == KC_ERR_TIMEOUT ? r : KC_ERR_UNAVAILABLE;
	rv = s->h->f->C_GetSessionInfo(s->sh, &info);
	hsm_op_end(s);
	if (rv == CKR_OK)
		return 0;
	hsm_count_ckr(rv);
	hsm_mark_down(s->h, rv, "probe after a failed engine operation");
	return KC_ERR_UNAVAILABLE;
}

/*
 * Has the operation begun on s outlived the session's deadline? Its result must then be
 * undone and KC_ERR_TIMEOUT returned: the client has been told the request timed out.
 */
static int
hsm_late(struct hsm_session *s, const char *what)
{
	struct hsm	*h = s->h;
	struct timespec	 now;
	long long	 took;

	hsm_now(&now);
	took = hsm_ts_diff_ms(&s->op_start, &now);
	if (s->has_deadline && hsm_ts_diff_ms(&s->deadline, &now) >= 0) {
		hsm_stat_inc(h, timeouts);
		log_warnx("hsm: %s returned after %lld ms, past its deadline; result "
		    "discarded", what, took);
		return 1;
	}
	return 0;
}

void
hsm_session_set_deadline(struct hsm_session *s, unsigned int ms)
{
	if (s == NULL)
		return;
	if (ms == 0) {
		s->has_deadline = 0;
		return;
	}
	hsm_now(&s->deadline);
	hsm_ts_add_ms(&s->deadline, ms);
	s->has_deadline = 1;
}

unsigned int
hsm_session_time_left(const struct hsm_session *s)
{
	struct timespec	 now;
	long long	 left;

	if (s == NULL || !s->has_deadline)
		return UINT_MAX;
	hsm_now(&now);
	left = hsm_ts_diff_ms(&now, &s->deadline);
	if (left <= 0)
		return 0;
	return left >= UINT_MAX ? UINT_MAX - 1 : (unsigned int)left;
}

int
hsm_session_new(struct hsm *h, struct hsm_session **sp)
{
	struct hsm_session	*s;
	int			 r;

	*sp = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return KC_ERR_NOMEM;
	s->h = h;
	if ((r = hsm_op_begin(s, 0)) != 0) {
		free(s);
		return r;
	}
	hsm_op_end(s);
	pthread_mutex_lock(&h->lock);
	TAILQ_INSERT_TAIL(&h->sessions, s, entry);
	pthread_mutex_unlock(&h->lock);
	*sp = s;
	return 0;
}

void
hsm_session_free(struct hsm_session *s)
{
	struct hsm	*h;

	if (s == NULL)
		return;
	if ((h = s->h) != NULL) {
		pthread_mutex_lock(&h->lock);
		TAILQ_REMOVE(&h->sessions, s, entry);
		pthread_mutex_unlock(&h->lock);
		/* A handle from an older module epoch is dead, or worse, someone else's. */
		pthread_rwlock_rdlock(&h->modlock);
		if (s->open && s->modepoch == h->modepoch)
			(void)h->f->C_CloseSession(s->sh);
		pthread_rwlock_unlock(&h->modlock);
	}
	free(s);
}

static unsigned int
hsm_epoch(struct hsm *h)
{
	return __atomic_load_n(&h->epoch, __ATOMIC_SEQ_CST);
}

static int
hsm_map_is_valid(struct hsm *h)
{
	return __atomic_load_n(&h->map_valid, __ATOMIC_SEQ_CST);
}

static void
hsm_map_entry_free(struct hsm_map_entry *e)
{
	EVP_PKEY_free(e->pkey);
	e->pkey = NULL;
}

/* Forget every handle: the token may have renumbered its objects. The next use scans. */
static void
hsm_map_flush(struct hsm *h)
{
	pthread_mutex_lock(&h->lock);
	hsm_map_clear(&h->map, hsm_map_entry_free);
	__atomic_store_n(&h->map_valid, 0, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&h->epoch, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&h->lock);
}

/*
 * Enter a pair in the map (replacing its handles). Takes a reference to k->pkey, which may
 * be NULL (loaded on first use). A pair found in an older epoch is not entered.
 */
static int
hsm_map_put(struct hsm *h, const struct hsm_key *k)
{
	struct hsm_map_entry	*e;
	int			 made, r = 0;

	pthread_mutex_lock(&h->lock);
	if (k->epoch != h->epoch)
		goto out;
	if ((e = hsm_map_insert(&h->map, k->id, &made)) == NULL) {
		r = KC_ERR_NOMEM;
		goto out;
	}
	__atomic_store_n(&h->stats.map_bytes, hsm_map_bytes(&h->map), __ATOMIC_RELAXED);
	EVP_PKEY_free(e->pkey);
	e->priv = k->priv;
	e->pub = k->pub;
	e->type = (uint8_t)k->type;
	if (k->pkey != NULL)
		EVP_PKEY_up_ref(k->pkey);
	e->pkey = k->pkey;
 out:
	pthread_mutex_unlock(&h->lock);
	return r;
}

enum hsm_map_hit {
	HSM_MAP_MISS = 0,
	HSM_MAP_HALF,		/* one half of the pair only */
	HSM_MAP_NOKEY,		/* both handles; the public key not loaded yet */
	HSM_MAP_HIT
};

/*
 * Look a pair up in the map; *k gets its handles, the epoch, and (HSM_MAP_HIT) the type and
 * a reference to the public key.
 */
static enum hsm_map_hit
hsm_map_get(struct hsm *h, const uint8_t *id, struct hsm_key *k)
{
	struct hsm_map_entry	*e;
	enum hsm_map_hit	 hit = HSM_MAP_MISS;

	pthread_mutex_lock(&h->lock);
	if ((e = hsm_map_lookup(&h->map, id)) != NULL) {
		memcpy(k->id, id, HSM_KEY_ID_LEN);
		k->priv = e->priv;
		k->pub = e->pub;
		k->epoch = h->epoch;
		EVP_PKEY_free(k->pkey);
		k->pkey = NULL;
		if (e->priv == CK_INVALID_HANDLE || e->pub == CK_INVALID_HANDLE)
			hit = HSM_MAP_HALF;
		else if (e->pkey == NULL)
			hit = HSM_MAP_NOKEY;
		else {
			k->type = (enum hsm_keytype)e->type;
			EVP_PKEY_up_ref(e->pkey);
			k->pkey = e->pkey;
			hit = HSM_MAP_HIT;
		}
	}
	pthread_mutex_unlock(&h->lock);
	return hit;
}

/*
 * Keep the public key read for k in its map entry, unless the entry changed meanwhile;
 * when another thread was first, k takes its key instead.
 */
static void
hsm_map_set_pkey(struct hsm *h, struct hsm_key *k)
{
	struct hsm_map_entry	*e;

	pthread_mutex_lock(&h->lock);
	e = hsm_map_lookup(&h->map, k->id);
	if (k->epoch == h->epoch && e != NULL && e->pub == k->pub) {
		if (e->pkey == NULL) {
			EVP_PKEY_up_ref(k->pkey);
			e->pkey = k->pkey;
			e->type = (uint8_t)k->type;
		} else {
			EVP_PKEY_up_ref(e->pkey);
			EVP_PKEY_free(k->pkey);
			k->pkey = e->pkey;
		}
	}
	pthread_mutex_unlock(&h->lock);
}

/*
 * Forget a pair; returns whether it was there, with its handles and whether the token
 * holds more objects of ours with its id (HSM_MAP_DUP).
 */
static int
hsm_map_del(struct hsm *h, const uint8_t *id, CK_OBJECT_HANDLE *priv,
    CK_OBJECT_HANDLE *pub, int *dup)
{
	struct hsm_map_entry	e;
	int			found;

	pthread_mutex_lock(&h->lock);
	if ((found = hsm_map_remove(&h->map, id, &e))) {
		*priv = e.priv;
		*pub = e.pub;
		*dup = (e.flags & HSM_MAP_DUP) != 0;
		EVP_PKEY_free(e.pkey);
	}
	pthread_mutex_unlock(&h->lock);
	return found;
}

static void
hsm_attr(CK_ATTRIBUTE *t, CK_ULONG *n, CK_ATTRIBUTE_TYPE type, const void *p,
    CK_ULONG len)
{
	t[*n].type = type;
	t[*n].pValue = (void *)p;
	t[*n].ulValueLen = len;
	(*n)++;
}

/* Read one variable-length attribute into a malloc'ed buffer. */
static CK_RV
hsm_get_attr(struct hsm_session *s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type,
    uint8_t **val, CK_ULONG *len)
{
	CK_ATTRIBUTE	 a = { type, NULL, 0 };
	CK_FUNCTION_LIST_PTR f = s->h->f;
	CK_RV		 rv;

	*val = NULL;
	*len = 0;
	if ((rv = f->C_GetAttributeValue(s->sh, o, &a, 1)) != CKR_OK)
		return rv;
	if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
		return HSM_CKR_BAD_KEY;
	if ((a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1)) == NULL)
		return HSM_CKR_NOMEM;
	if ((rv = f->C_GetAttributeValue(s->sh, o, &a, 1)) != CKR_OK) {
		free(a.pValue);
		return rv;
	}
	*val = a.pValue;
	*len = a.ulValueLen;
	return CKR_OK;
}

/* Build an RSA public EVP_PKEY from modulus and exponent (big-endian). */
static CK_RV
hsm_pkey_rsa(const uint8_t *n, size_t nlen, const uint8_t *e, size_t elen, EVP_PKEY **pkey)
{
	OSSL_PARAM_BLD	*bld = NULL;
	OSSL_PARAM	*params = NULL;
	EVP_PKEY_CTX	*ctx = NULL;
	BIGNUM		*bn = NULL, *be = NULL;
	CK_RV		 rv = HSM_CKR_CRYPTO;

	if ((bn = BN_bin2bn(n, (int)nlen, NULL)) == NULL ||
	    (be = BN_bin2bn(e, (int)elen, NULL)) == NULL ||
	    (bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		goto out;
	rv = CKR_OK;
 out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return rv;
}

/* Build an EC public EVP_PKEY from a group name and an uncompressed point. */
static CK_RV
hsm_pkey_ec(const char *group, const uint8_t *pt, size_t ptlen, EVP_PKEY **pkey)
{
	OSSL_PARAM_BLD	*bld = NULL;
	OSSL_PARAM	*params = NULL;
	EVP_PKEY_CTX	*ctx = NULL;
	CK_RV		 rv = HSM_CKR_CRYPTO;

	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, ptlen) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		goto out;
	rv = CKR_OK;
 out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return rv;
}

/*
 * CKA_EC_POINT is a DER OCTET STRING wrapping the uncompressed point (PKCS#11 2.40); some
 * modules return the bare point. Find the point either way.
 */
static int
hsm_ec_point(const uint8_t *p, size_t len, size_t fieldlen, const uint8_t **pt,
    size_t *ptlen)
{
	size_t	want = 1 + 2 * fieldlen, l, hdr;

	if (len == want && p[0] == 0x04) {
		*pt = p;
		*ptlen = len;
		return 0;
	}
	if (len < 2 || p[0] != 0x04)
		return -1;
	if (p[1] < 0x80) {
		l = p[1];
		hdr = 2;
	} else if (p[1] == 0x81 && len >= 3) {
		l = p[2];
		hdr = 3;
	} else
		return -1;
	if (hdr + l != len || l != want || p[hdr] != 0x04)
		return -1;
	*pt = p + hdr;
	*ptlen = l;
	return 0;
}

/* Read a public key object: its type and the OpenSSL public key. */
static CK_RV
hsm_read_public(struct hsm_session *s, CK_OBJECT_HANDLE pub, enum hsm_keytype *type,
    EVP_PKEY **pkey)
{
	CK_KEY_TYPE	 ckk;
	CK_ATTRIBUTE	 a = { CKA_KEY_TYPE, &ckk, sizeof(ckk) };
	uint8_t		*v1 = NULL, *v2 = NULL;
	const uint8_t	*pt;
	CK_ULONG	 l1, l2;
	size_t		 ptlen;
	CK_RV		 rv;
	int		 t;

	*pkey = NULL;
	if ((rv = s->h->f->C_GetAttributeValue(s->sh, pub, &a, 1)) != CKR_OK)
		goto out;
	rv = HSM_CKR_BAD_KEY;
	if (ckk == CKK_RSA) {
		if ((rv = hsm_get_attr(s, pub, CKA_MODULUS, &v1, &l1)) != CKR_OK ||
		    (rv = hsm_get_attr(s, pub, CKA_PUBLIC_EXPONENT, &v2, &l2)) != CKR_OK)
			goto out;
		/* Tolerate leading zero bytes in the modulus. */
		while (l1 > 0 && v1[0] == 0) {
			memmove(v1, v1 + 1, --l1);
		}
		for (t = 0; t < HSM_KEY_NTYPES; t++)
			if (hsm_keytypes[t].ckk == CKK_RSA &&
			    hsm_keytypes[t].bits == l1 * 8)
				break;
		if (t == HSM_KEY_NTYPES) {
			rv = HSM_CKR_BAD_KEY;
			goto out;
		}
		if ((rv = hsm_pkey_rsa(v1, l1, v2, l2, pkey)) != CKR_OK)
			goto out;
	} else if (ckk == CKK_EC) {
		if ((rv = hsm_get_attr(s, pub, CKA_EC_PARAMS, &v1, &l1)) != CKR_OK ||
		    (rv = hsm_get_attr(s, pub, CKA_EC_POINT, &v2, &l2)) != CKR_OK)
			goto out;
		for (t = 0; t < HSM_KEY_NTYPES; t++)
			if (hsm_keytypes[t].ckk == CKK_EC &&
			    hsm_keytypes[t].oidlen == l1 &&
			    memcmp(hsm_keytypes[t].oid, v1, l1) == 0)
				break;
		if (t == HSM_KEY_NTYPES ||
		    hsm_ec_point(v2, l2, hsm_keytypes[t].fieldlen, &pt, &ptlen) != 0) {
			rv = HSM_CKR_BAD_KEY;
			goto out;
		}
		if ((rv = hsm_pkey_ec(hsm_keytypes[t].group, pt, ptlen, pkey)) != CKR_OK)
			goto out;
	} else
		goto out;
	*type = (enum hsm_keytype)t;
	rv = CKR_OK;
 out:
	free(v1);
	free(v2);
	return rv;
}

/* Whether the token still answers on s (after an ambiguous error). */
static int
hsm_session_answers(struct hsm_session *s)
{
	CK_SESSION_INFO	 info;

	return s->open && s->h->f->C_GetSessionInfo(s->sh, &info) == CKR_OK;
}

/* The token refused an attribute of a template, or its combination. */
static int
hsm_ckr_is_template(CK_RV rv)
{
	return rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_VALUE_INVALID ||
	    rv == CKR_TEMPLATE_INCONSISTENT;
}

/* The token cannot make this kind of key at all, whatever it listed. */
static int
hsm_ckr_is_unsupported(CK_RV rv)
{
	return rv == CKR_MECHANISM_INVALID || rv == CKR_MECHANISM_PARAM_INVALID ||
	    rv == CKR_CURVE_NOT_SUPPORTED || rv == CKR_DOMAIN_PARAMS_INVALID ||
	    rv == CKR_KEY_SIZE_RANGE;
}

/* A copy of type t's capabilities. */
static void
hsm_caps_kt_get(struct hsm *h, enum hsm_keytype t, struct hsm_caps_kt *kt)
{
	pthread_mutex_lock(&h->lock);
	*kt = h->caps.kt[t];
	pthread_mutex_unlock(&h->lock);
}

/* Generation of type t was refused for good: it is no longer offered (until restart). */
static void
hsm_caps_refuse(struct hsm *h, enum hsm_keytype t, const char *fmt, ...)
    __attribute__((__format__(__printf__, 3, 4)));
static void
hsm_caps_refuse(struct hsm *h, enum hsm_keytype t, const char *fmt, ...)
{
	struct hsm_caps_kt	*kt = &h->caps.kt[t];
	va_list			 ap;

	pthread_mutex_lock(&h->lock);
	kt->offered = 0;
	kt->refused = 1;
	va_start(ap, fmt);
	vsnprintf(kt->why, sizeof(kt->why), fmt, ap);
	va_end(ap);
	log_warnx("hsm: token \"%s\" cannot make %s keys: %s", h->label,
	    hsm_keytypes[t].name, kt->why);
	pthread_mutex_unlock(&h->lock);
}

/*
 * Generate the pair with our template. Nothing exists in the token unless CKR_OK.
 * The private template is what custody needs and is never reduced. The public one, when
 * minimal, holds only what PKCS#11 requires (class, key type, size or curve) and what
 * finds the key again (token, id, label): the usage flags on a public key are optional,
 * and some tokens (tpm2-pkcs11) refuse them.
 */
static CK_RV
hsm_generate(struct hsm_session *s, enum hsm_keytype type, const uint8_t *id,
    const char *label, int minimal, CK_OBJECT_HANDLE *pubh, CK_OBJECT_HANDLE *privh)
{
	const struct hsm_keytype_desc *d = &hsm_keytypes[type];
	static const CK_BYTE	 exponent[] = { 0x01, 0x00, 0x01 };
	CK_BBOOL		 yes = CK_TRUE, no = CK_FALSE;
	CK_OBJECT_CLASS		 pubclass = CKO_PUBLIC_KEY, privclass = CKO_PRIVATE_KEY;
	CK_KEY_TYPE		 ckk = d->ckk;
	CK_ULONG		 bits = d->bits, npub = 0, npriv = 0;
	CK_MECHANISM		 mech = { 0, NULL, 0 };
	CK_ATTRIBUTE		 pubt[16], privt[20];
	CK_RV			 rv;

	hsm_attr(pubt, &npub, CKA_CLASS, &pubclass, sizeof(pubclass));
	hsm_attr(pubt, &npub, CKA_KEY_TYPE, &ckk, sizeof(ckk));
	hsm_attr(pubt, &npub, CKA_TOKEN, &yes, sizeof(yes));
	if (!minimal) {
		hsm_attr(pubt, &npub, CKA_PRIVATE, &no, sizeof(no));
		hsm_attr(pubt, &npub, CKA_VERIFY, &yes, sizeof(yes));
		hsm_attr(pubt, &npub, CKA_VERIFY_RECOVER, &no, sizeof(no));
		hsm_attr(pubt, &npub, CKA_ENCRYPT, &no, sizeof(no));
		hsm_attr(pubt, &npub, CKA_WRAP, &no, sizeof(no));
		hsm_attr(pubt, &npub, CKA_DERIVE, &no, sizeof(no));
	}
	hsm_attr(pubt, &npub, CKA_ID, id, HSM_KEY_ID_LEN);
	hsm_attr(pubt, &npub, CKA_LABEL, label, strlen(label));

	hsm_attr(privt, &npriv, CKA_CLASS, &privclass, sizeof(privclass));
	hsm_attr(privt, &npriv, CKA_KEY_TYPE, &ckk, sizeof(ckk));
	hsm_attr(privt, &npriv, CKA_TOKEN, &yes, sizeof(yes));
	hsm_attr(privt, &npriv, CKA_PRIVATE, &yes, sizeof(yes));
	hsm_attr(privt, &npriv, CKA_SENSITIVE, &yes, sizeof(yes));
	hsm_attr(privt, &npriv, CKA_EXTRACTABLE, &no, sizeof(no));
	hsm_attr(privt, &npriv, CKA_SIGN, &yes, sizeof(yes));
	hsm_attr(privt, &npriv, CKA_SIGN_RECOVER, &no, sizeof(no));
	hsm_attr(privt, &npriv, CKA_DECRYPT, &no, sizeof(no));
	hsm_attr(privt, &npriv, CKA_UNWRAP, &no, sizeof(no));
	hsm_attr(privt, &npriv, CKA_DERIVE, &no, sizeof(no));
	hsm_attr(privt, &npriv, CKA_ID, id, HSM_KEY_ID_LEN);
	hsm_attr(privt, &npriv, CKA_LABEL, label, strlen(label));

	if (d->ckk == CKK_RSA) {
		mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
		hsm_attr(pubt, &npub, CKA_MODULUS_BITS, &bits, sizeof(bits));
		hsm_attr(pubt, &npub, CKA_PUBLIC_EXPONENT, exponent, sizeof(exponent));
	} else {
		mech.mechanism = CKM_EC_KEY_PAIR_GEN;
		hsm_attr(pubt, &npub, CKA_EC_PARAMS, d->oid, d->oidlen);
	}

	pthread_rwlock_rdlock(&s->h->search_lock);
	rv = s->h->f->C_GenerateKeyPair(s->sh, &mech, pubt, npub, privt, npriv, pubh,
	    privh);
	pthread_rwlock_unlock(&s->h->search_lock);
	return rv;
}

/* A CK_BBOOL attribute a custody key must have (or must not have). */
struct hsm_flag_check {
	CK_ATTRIBUTE_TYPE	 type;
	const char		*name;
	CK_BBOOL		 want;
	int			 required;	/* must be present; HSM_FLAG_HISTORY: see below */
};

/*
 * A key-history attribute (CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE): required, but a
 * token that cannot report it at all is accepted when configured (accept_no_history),
 * and said so in health. When it is reported, its value counts as for any other.
 */
#define HSM_FLAG_HISTORY	2

#define HSM_MAX_FLAG_CHECKS	16

/*
 * Read the n flags of checks on o in one call and compare them. On a mismatch, why (len
 * bytes) says which flag and HSM_CKR_UNSAFE is returned.
 */
static CK_RV
hsm_check_flags(struct hsm_session *s, CK_OBJECT_HANDLE o,
    const struct hsm_flag_check *checks, size_t n, char *why, size_t len)
{
	CK_ATTRIBUTE	 t[HSM_MAX_FLAG_CHECKS];
	CK_BBOOL	 v[HSM_MAX_FLAG_CHECKS];
	CK_RV		 rv;
	size_t		 i;

	if (n > HSM_MAX_FLAG_CHECKS)
		return HSM_CKR_UNSAFE;
	for (i = 0; i < n; i++) {
		v[i] = !checks[i].want;
		t[i].type = checks[i].type;
		t[i].pValue = &v[i];
		t[i].ulValueLen = sizeof(v[i]);
	}
	rv = s->h->f->C_GetAttributeValue(s->sh, o, t, n);
	if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID &&
	    rv != CKR_ATTRIBUTE_SENSITIVE)
		return rv;
	for (i = 0; i < n; i++) {
		if (t[i].ulValueLen != sizeof(CK_BBOOL)) {
			if (!checks[i].required)
				continue;
			if (checks[i].required == HSM_FLAG_HISTORY) {
				__atomic_or_fetch(&s->h->history_missing,
				    checks[i].type == CKA_ALWAYS_SENSITIVE ?
				    HSM_HISTORY_ALWAYS_SENSITIVE : HSM_HISTORY_NEVER_EXTRACTABLE,
				    __ATOMIC_RELAXED);
				if (s->h->accept_no_history)
					continue;
				snprintf(why, len, "%s unreadable: the token does not report "
				    "the key's history (accept_missing_key_history accepts "
				    "that)", checks[i].name);
				return HSM_CKR_UNSAFE;
			}
			snprintf(why, len, "%s unreadable", checks[i].name);
			return HSM_CKR_UNSAFE;
		}
		if ((v[i] != CK_FALSE) != (checks[i].want != CK_FALSE)) {
			snprintf(why, len, "%s is %s", checks[i].name,
			    v[i] ? "true" : "false");
			return HSM_CKR_UNSAFE;
		}
	}
	return CKR_OK;
}

/*
 * Read the private key's attributes back: a key that is or was extractable, or not
 * generated in the token, or usable for anything but signing, is unsafe.
 */
static CK_RV
hsm_check_private(struct hsm_session *s, CK_OBJECT_HANDLE priv)
{
	static const struct hsm_flag_check checks[] = {
		{ CKA_TOKEN, "CKA_TOKEN", CK_TRUE, 1 },
		{ CKA_PRIVATE, "CKA_PRIVATE", CK_TRUE, 1 },
		{ CKA_SENSITIVE, "CKA_SENSITIVE", CK_TRUE, 1 },
		{ CKA_ALWAYS_SENSITIVE, "CKA_ALWAYS_SENSITIVE", CK_TRUE, HSM_FLAG_HISTORY },
		{ CKA_EXTRACTABLE, "CKA_EXTRACTABLE", CK_FALSE, 1 },
		{ CKA_NEVER_EXTRACTABLE, "CKA_NEVER_EXTRACTABLE", CK_TRUE, HSM_FLAG_HISTORY },
		{ CKA_LOCAL, "CKA_LOCAL", CK_TRUE, 1 },
		{ CKA_SIGN, "CKA_SIGN", CK_TRUE, 1 },
		{ CKA_DECRYPT, "CKA_DECRYPT", CK_FALSE, 0 },
		{ CKA_UNWRAP, "CKA_UNWRAP", CK_FALSE, 0 },
		{ CKA_DERIVE, "CKA_DERIVE", CK_FALSE, 0 },
	};
	char	 why[128];
	CK_RV	 rv;

	if ((rv = hsm_check_flags(s, priv, checks, nitems(checks), why, sizeof(why))) ==
	    HSM_CKR_UNSAFE)
		log_warnx("hsm: new private key: %s", why);
	return rv;
}

/* Destroy objects; a handle that is already gone counts as destroyed. */
static CK_RV
hsm_destroy_handles(struct hsm_session *s, const CK_OBJECT_HANDLE *o, size_t n)
{
	CK_RV	rv, first = CKR_OK;
	size_t	i;

	pthread_rwlock_wrlock(&s->h->search_lock);
	for (i = 0; i < n; i++) {
		if (o[i] == CK_INVALID_HANDLE)
			continue;
		rv = s->h->f->C_DestroyObject(s->sh, o[i]);
		if (rv != CKR_OK && rv != CKR_OBJECT_HANDLE_INVALID && first == CKR_OK)
			first = rv;
	}
	pthread_rwlock_unlock(&s->h->search_lock);
	return first;
}

/* Destroy a pair just made, retrying once on a per-session failure. @retval 0 when gone */
static int
hsm_destroy_pair(struct hsm_session *s, CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub)
{
	CK_OBJECT_HANDLE	o[2] = { priv, pub };
	CK_RV			rv;
	int			retried;

	for (retried = 0;; retried = 1) {
		rv = hsm_destroy_handles(s, o, 2);
		if (rv == CKR_OK || retried || !hsm_session_recover(s, rv))
			break;
	}
	if (rv != CKR_OK) {
		(void)hsm_op_result(s, rv, "destroying a rejected key pair");
		return -1;
	}
	return 0;
}

/*
 * End the login and log in again, so that the token unloads the objects the login made it
 * load. tpm2-pkcs11 (1.9) keeps each key it generated or used loaded in the TPM until
 * session_ctx_logout() flushes them all (C_Logout, or the close of the last session) or
 * C_Finalize; closing one of several sessions frees nothing. Behind tpm2-abrmd a
 * connection holds at most --max-transients objects: then C_GenerateKeyPair fails with
 * CKR_GENERAL_ERROR ("out of memory for object contexts") while the token answers.
 *
 * No PKCS#11 call tells a full token from one that refused a single operation, so the
 * daemon learns it (hsm_keygen()): two key generations in a row that fail so while the
 * token answers make it log in again and retry once; when that cures it, the number of
 * pairs the login had made is kept, and from then on the login is renewed before it
 * reaches that number. A token that never fails twice in a row sees no change.
 *
 * The login is the token's, shared by every session, so s leaves the module and the
 * module is taken exclusively (waiting at most HSM_RELEASE_WAIT_MS for the operations
 * inside to finish). The sessions stay open; object handles may change with the login
 * (SoftHSM2 renumbers them), so the map is flushed as after any new login (keys of the
 * older epoch look their handles up again). gen is h->login_gen when the caller decided;
 * if another session renewed the login since, nothing is done. Returns 0 with s back
 * inside the module (hsm_op_begin()); otherwise a KC_ERR_* code with s outside it.
 */
static int
hsm_release(struct hsm_session *s, unsigned int gen, const char *why)
{
	struct hsm	*h = s->h;
	struct timespec	 until, t0, t1;
	unsigned int	 made;
	CK_RV		 rv;
	int		 r = 0;

	hsm_op_end(s);
	if (clock_gettime(CLOCK_REALTIME, &until) != 0)
		return KC_ERR_UNAVAILABLE;
	hsm_ts_add_ms(&until, HSM_RELEASE_WAIT_MS);
	if (pthread_rwlock_timedwrlock(&h->modlock, &until) != 0) {
		log_warnx("hsm: token \"%s\": other operations kept the module for %d ms; "
		    "not logging in again", h->label, HSM_RELEASE_WAIT_MS);
		return KC_ERR_UNAVAILABLE;
	}
	if (__atomic_load_n(&h->login_gen, __ATOMIC_RELAXED) != gen)
		goto out;
	if (!h->login_open || h->pin == NULL || hsm_get_state(h) != HSM_STATE_OK) {
		r = KC_ERR_UNAVAILABLE;
		goto out;
	}
	made = __atomic_load_n(&h->login_made, __ATOMIC_RELAXED);
	hsm_now(&t0);
	rv = h->f->C_Logout(h->login_sh);
	if (rv != CKR_OK && rv != CKR_USER_NOT_LOGGED_IN) {
		r = hsm_result(h, rv, "C_Logout (renewing the login)");
		goto out;
	}
	rv = hsm_relogin(h, h->login_sh);
	hsm_count_ckr(rv);
	if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED) {
		hsm_login_failed(h, rv, "C_Login (renewing the login)");
		r = h->login_err;
		goto out;
	}
	if (rv != CKR_OK) {
		/* Logged out: only a re-initialization brings the login back. */
		hsm_mark_down(h, rv, "C_Login (renewing the login)");
		r = KC_ERR_UNAVAILABLE;
		goto out;
	}
	hsm_login_new(h);
	/* A new login may number the objects anew (SoftHSM2 does): the map is rebuilt. */
	hsm_map_flush(h);
	hsm_now(&t1);
	log_info("hsm: token \"%s\" %s after %u key pairs in this login; logged out and in "
	    "again to unload its objects (%lld ms)", h->label, why, made,
	    hsm_ts_diff_ms(&t0, &t1));
 out:
	pthread_rwlock_unlock(&h->modlock);
	if (r != 0)
		return r;
	return hsm_op_begin(s, 0);
}

/* Whether the token holds no object, private or public, with this CKA_ID. */
static int
hsm_id_absent(struct hsm_session *s, const uint8_t *id)
{
	CK_OBJECT_HANDLE	 o[1];
	CK_ULONG		 n;

	return hsm_find_by_id(s, CKO_PRIVATE_KEY, id, o, 1, &n) == CKR_OK && n == 0 &&
	    hsm_find_by_id(s, CKO_PUBLIC_KEY, id, o, 1, &n) == CKR_OK && n == 0;
}

int
hsm_keygen(struct hsm_session *s, enum hsm_keytype type, const uint8_t id[HSM_KEY_ID_LEN],
    const char *label, struct hsm_key **kp, int *maybe_made)
{
	struct hsm		*h;
	struct hsm_key		*k = NULL;
	CK_OBJECT_HANDLE	 pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
	enum hsm_keytype	 got;
	EVP_PKEY		*pkey = NULL;
	char			*fullabel = NULL;
	struct hsm_caps_kt	 kt;
	CK_RV			 rv;
	unsigned int		 epoch;
	unsigned int		 gen, at, made_before = 0;
	int			 r, retried, released = 0, made = 0;

	return_val_if_fail(s != NULL && s->h != NULL, KC_ERR_INVALID);
	return_val_if_fail((unsigned int)type < HSM_KEY_NTYPES, KC_ERR_INVALID);
	return_val_if_fail(id != NULL && label != NULL && kp != NULL, KC_ERR_INVALID);
	return_val_if_fail(maybe_made != NULL, KC_ERR_INVALID);
	h = s->h;
	*kp = NULL;
	*maybe_made = 0;
	if (asprintf(&fullabel, "%s%s", HSM_LABEL_PREFIX, label) == -1)
		return KC_ERR_NOMEM;
	if ((r = hsm_op_begin(s, 0)) != 0) {
		free(fullabel);
		return r;
	}

	hsm_caps_kt_get(h, type, &kt);
	if (!kt.offered) {
		log_warnx("hsm: token \"%s\" cannot make %s keys: %s", h->label,
		    hsm_keytypes[type].name, kt.why);
		r = KC_ERR_INVALID;
		goto out;
	}
	/* A token that needs it (hsm_release()) gets a new login before it is full. */
	at = __atomic_load_n(&h->release_at, __ATOMIC_RELAXED);
	if (at > 0 && __atomic_load_n(&h->login_made, __ATOMIC_RELAXED) + 1 >= at) {
		released = 1;
		r = hsm_release(s, __atomic_load_n(&h->login_gen, __ATOMIC_RELAXED),
		    "is near its limit of loaded objects");
		/* Not renewed while the token is up (the others kept the module): try anyway. */
		if (r != 0 && (hsm_get_state(h) != HSM_STATE_OK ||
		    (r = hsm_op_begin(s, 0)) != 0)) {
			free(fullabel);
			return r;
		}
	}
	for (retried = 0;;) {
		epoch = hsm_epoch(h);
		/* From here on a failure may leave a pair behind, whatever rv says. */
		*maybe_made = 1;
		rv = hsm_generate(s, type, id, fullabel, kt.minimal_pub, &pub, &priv);
		if (rv == CKR_OK)
			break;
		/*
		 * The optional public attributes go, once; the token keeps the bare template.
		 * tpm2-pkcs11 says CKR_GENERAL_ERROR to an attribute it disagrees with: an
		 * ambiguous error from a token that still answers is taken as a refusal of
		 * the template too, unless the token already took this template (then it
		 * refused the operation: hsm_op_result() below).
		 */
		if (!kt.minimal_pub && (hsm_ckr_is_template(rv) || (!kt.full_ok &&
		    hsm_ckr_is_ambiguous(rv) && hsm_session_answers(s)))) {
			log_info("hsm: token \"%s\" refused the public %s template (%s); "
			    "using the attributes PKCS#11 requires only", h->label,
			    hsm_keytypes[type].name, hsm_ckr_name(rv));
			kt.minimal_pub = 1;
			pthread_mutex_lock(&h->lock);
			h->caps.kt[type].minimal_pub = 1;
			pthread_mutex_unlock(&h->lock);
			continue;
		}
		/*
		 * The second failure in a row of a token that answers, in a login that made
		 * pairs: it may be out of room for loaded objects (hsm_release()). Once, log
		 * in again and retry, provided the failed call left no object with this id.
		 */
		if (!released && hsm_ckr_is_ambiguous(rv) &&
		    (made_before = __atomic_load_n(&h->login_made, __ATOMIC_RELAXED)) > 0 &&
		    hsm_session_answers(s)) {
			gen = __atomic_load_n(&h->login_gen, __ATOMIC_RELAXED);
			if (__atomic_exchange_n(&h->release_due, 1, __ATOMIC_RELAXED) &&
			    hsm_id_absent(s, id)) {
				released = 1;
				if ((r = hsm_release(s, gen, "failed two key generations in a "
				    "row")) != 0) {
					/* s is outside the module, and nothing was made. */
					*maybe_made = 0;
					free(fullabel);
					return r;
				}
				continue;
			}
		}
		if (retried || !hsm_session_recover(s, rv))
			break;
		retried = 1;
	}
	if (rv != CKR_OK && (hsm_ckr_is_template(rv) || hsm_ckr_is_unsupported(rv))) {
		/* Nothing was made: a refused template or mechanism makes no object. */
		*maybe_made = 0;
		if (hsm_ckr_is_template(rv))
			hsm_caps_refuse(h, type, "C_GenerateKeyPair: %s: the token refuses a "
			    "private key that is sensitive, not extractable and sign-only",
			    hsm_ckr_name(rv));
		else
			hsm_caps_refuse(h, type, "C_GenerateKeyPair: %s", hsm_ckr_name(rv));
		r = KC_ERR_INVALID;
		goto out;
	}
	if (rv != CKR_OK) {
		r = hsm_op_result(s, rv, "C_GenerateKeyPair");
		goto out;
	}
	made = 1;
	__atomic_add_fetch(&h->login_made, 1, __ATOMIC_RELAXED);
	if (__atomic_exchange_n(&h->release_due, 0, __ATOMIC_RELAXED) && released &&
	    made_before > 0) {
		/* A new login cured it: renew it before this many pairs from now on. */
		at = __atomic_load_n(&h->release_at, __ATOMIC_RELAXED);
		if (at == 0 || made_before < at) {
			__atomic_store_n(&h->release_at, made_before, __ATOMIC_RELAXED);
			log_info("hsm: token \"%s\": renewing the login every %u key pairs",
			    h->label, made_before);
		}
	}
	if (!kt.minimal_pub && !kt.full_ok) {
		pthread_mutex_lock(&h->lock);
		h->caps.kt[type].full_ok = 1;
		pthread_mutex_unlock(&h->lock);
	}

	for (retried = 0;; retried = 1) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
		rv = hsm_check_private(s, priv);
		if (rv == CKR_OK)
			rv = hsm_read_public(s, pub, &got, &pkey);
		if (rv == CKR_OK && got != type)
			rv = HSM_CKR_BAD_KEY;
		if (rv == CKR_OK || retried || !hsm_session_recover(s, rv))
			break;
	}
	if (rv != CKR_OK) {
		r = hsm_op_result(s, rv, "checking a new key pair");
		goto out;
	}
	/* The client was told "timed out": the pair must not outlive the request. */
	if (hsm_late(s, "C_GenerateKeyPair")) {
		r = KC_ERR_TIMEOUT;
		goto out;
	}

	if ((k = calloc(1, sizeof(*k))) == NULL) {
		r = KC_ERR_NOMEM;
		goto out;
	}
	memcpy(k->id, id, HSM_KEY_ID_LEN);
	k->priv = priv;
	k->pub = pub;
	k->type = type;
	k->pkey = pkey;
	k->epoch = epoch;
	pkey = NULL;
	if ((r = hsm_map_put(h, k)) != 0)
		goto out;
	log_debug("hsm: generated %s key pair \"%s\"", hsm_keytypes[type].name, fullabel);
	*kp = k;
	k = NULL;
	made = 0;
	r = 0;
 out:
	if (made && hsm_destroy_pair(s, priv, pub) == 0)
		*maybe_made = 0;
	if (r == 0)
		*maybe_made = 0;
	hsm_op_end(s);
	hsm_key_free(k);
	EVP_PKEY_free(pkey);
	free(fullabel);
	return r;
}

/*
 * Find objects of a class by CKA_ID, under the search lock. Up to max handles are
 * returned in o; *n is how many were found (capped).
 */
static CK_RV
hsm_find_by_id(struct hsm_session *s, CK_OBJECT_CLASS cls, const uint8_t *id,
    CK_OBJECT_HANDLE *o, CK_ULONG max, CK_ULONG *n)
{
	CK_FUNCTION_LIST_PTR f = s->h->f;
	CK_ATTRIBUTE	 t[2];
	CK_ULONG	 nt = 0;
	CK_RV		 rv, rv2;

	hsm_attr(t, &nt, CKA_CLASS, &cls, sizeof(cls));
	hsm_attr(t, &nt, CKA_ID, id, HSM_KEY_ID_LEN);
	*n = 0;
	pthread_rwlock_wrlock(&s->h->search_lock);
	if ((rv = f->C_FindObjectsInit(s->sh, t, nt)) == CKR_OK) {
		rv = f->C_FindObjects(s->sh, o, max, n);
		rv2 = f->C_FindObjectsFinal(s->sh);
		if (rv == CKR_OK)
			rv = rv2;
	}
	pthread_rwlock_unlock(&s->h->search_lock);
	return rv;
}

/* Search the token for the pair with this id and read its public key. */
static CK_RV
hsm_key_search(struct hsm_session *s, const uint8_t *id, struct hsm_key *k)
{
	CK_OBJECT_HANDLE	o[2];
	CK_ULONG		n;
	CK_RV			rv;
	unsigned int		epoch = hsm_epoch(s->h);

	hsm_stat_inc(s->h, searches);
	if ((rv = hsm_find_by_id(s, CKO_PRIVATE_KEY, id, o, 2, &n)) != CKR_OK)
		return rv;
	if (n == 0)
		return HSM_CKR_NOT_FOUND;
	if (n > 1)
		log_warnx("hsm: several private keys share one CKA_ID; using the first");
	k->priv = o[0];
	k->epoch = epoch;
	if ((rv = hsm_find_by_id(s, CKO_PUBLIC_KEY, id, o, 2, &n)) != CKR_OK)
		return rv;
	if (n == 0) {
		log_warnx("hsm: a private key has no public key object");
		return HSM_CKR_NOT_FOUND;
	}
	k->pub = o[0];
	memcpy(k->id, id, HSM_KEY_ID_LEN);
	EVP_PKEY_free(k->pkey);
	k->pkey = NULL;
	return hsm_read_public(s, k->pub, &k->type, &k->pkey);
}

/* Find every object of class cls, under the search lock; *o grows, *n counts. */
static CK_RV
hsm_find_class(struct hsm_session *s, CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE **o,
    size_t *n, size_t *cap)
{
	CK_FUNCTION_LIST_PTR f = s->h->f;
	CK_ATTRIBUTE	 t = { CKA_CLASS, &cls, sizeof(cls) };
	CK_OBJECT_HANDLE *no;
	CK_ULONG	 got;
	CK_RV		 rv, rv2;

	if ((rv = f->C_FindObjectsInit(s->sh, &t, 1)) != CKR_OK)
		return rv;
	for (;;) {
		if (*n + HSM_FIND_BATCH > *cap) {
			if ((no = reallocarray(*o, *cap ? *cap * 2 : 1024, sizeof(**o))) == NULL) {
				rv = HSM_CKR_NOMEM;
				break;
			}
			*o = no;
			*cap = *cap ? *cap * 2 : 1024;
		}
		rv = f->C_FindObjects(s->sh, *o + *n, HSM_FIND_BATCH, &got);
		if (rv != CKR_OK || got == 0)
			break;
		*n += got;
	}
	rv2 = f->C_FindObjectsFinal(s->sh);
	return rv != CKR_OK ? rv : rv2;
}

static void
hsm_hex(const uint8_t *p, size_t len, char *buf, size_t buflen)
{
	size_t	i;

	buf[0] = '\0';
	for (i = 0; i < len && 2 * i + 2 < buflen; i++)
		(void)snprintf(buf + 2 * i, 3, "%02x", p[i]);
}

struct hsm_scan_count {
	uint64_t	pairs, duplicates, incomplete, debris, foreign;
};

/*
 * Read one key object (one C_GetAttributeValue into fixed buffers) and enter it in the map
 * if it is ours. CKR_OBJECT_HANDLE_INVALID (destroyed since the search) is skipped.
 */
static CK_RV
hsm_scan_object(struct hsm_session *s, CK_OBJECT_HANDLE o, unsigned int epoch,
    struct hsm_scan_count *c)
{
	struct hsm		*h = s->h;
	struct hsm_map_entry	*e;
	CK_OBJECT_CLASS		 cls = (CK_OBJECT_CLASS)-1;
	CK_KEY_TYPE		 ckk = (CK_KEY_TYPE)-1;
	uint8_t			 label[HSM_SCAN_LABEL_MAX], id[HSM_SCAN_ID_MAX];
	uint8_t			*longlab = NULL;
	const uint8_t		*lab = label;
	CK_ATTRIBUTE		 t[4] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_KEY_TYPE, &ckk, sizeof(ckk) },
		{ CKA_LABEL, label, sizeof(label) },
		{ CKA_ID, id, sizeof(id) },
	};
	CK_ULONG		 lablen, idlen, plen = strlen(HSM_LABEL_PREFIX);
	CK_OBJECT_HANDLE	*slot;
	char			 hex[2 * HSM_SCAN_ID_MAX + 1];
	CK_RV			 rv;
	int			 made;

	rv = h->f->C_GetAttributeValue(s->sh, o, t, 4);
	if (rv == CKR_OBJECT_HANDLE_INVALID)
		return CKR_OK;
	if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL && rv != CKR_ATTRIBUTE_TYPE_INVALID &&
	    rv != CKR_ATTRIBUTE_SENSITIVE)
		return rv;
	lablen = t[2].ulValueLen == CK_UNAVAILABLE_INFORMATION ? 0 : t[2].ulValueLen;
	idlen = t[3].ulValueLen;
	if (t[2].ulValueLen == CK_UNAVAILABLE_INFORMATION && rv == CKR_BUFFER_TOO_SMALL) {
		/* A label longer than our buffer: read it alone (rare). */
		if ((rv = hsm_get_attr(s, o, CKA_LABEL, &longlab, &lablen)) != CKR_OK) {
			free(longlab);
			return rv == CKR_OBJECT_HANDLE_INVALID ? CKR_OK : rv;
		}
		lab = longlab;
	}
	if (lablen == 0 && (idlen == 0 || idlen == CK_UNAVAILABLE_INFORMATION)) {
		if (c->debris++ < HSM_SCAN_LOG_MAX)
			log_warnx("hsm: scan: debris: %s key object %lu (key type 0x%lx) has "
			    "neither label nor CKA_ID; left alone", cls == CKO_PRIVATE_KEY ?
			    "private" : "public", (unsigned long)o, (unsigned long)ckk);
		goto done;
	}
	if (lablen < plen || memcmp(lab, HSM_LABEL_PREFIX, plen) != 0) {
		c->foreign++;
		goto done;
	}
	if (idlen != HSM_KEY_ID_LEN) {
		log_warnx("hsm: a key labelled %.*s has a %ld-byte CKA_ID", (int)lablen,
		    (const char *)lab, idlen == CK_UNAVAILABLE_INFORMATION ? -1L : (long)idlen);
		c->foreign++;
		goto done;
	}
	pthread_mutex_lock(&h->lock);
	if (epoch != h->epoch) {
		pthread_mutex_unlock(&h->lock);
		goto done;
	}
	if ((e = hsm_map_insert(&h->map, id, &made)) == NULL) {
		pthread_mutex_unlock(&h->lock);
		free(longlab);
		return HSM_CKR_NOMEM;
	}
	__atomic_store_n(&h->stats.map_bytes, hsm_map_bytes(&h->map), __ATOMIC_RELAXED);
	slot = cls == CKO_PRIVATE_KEY ? &e->priv : &e->pub;
	if (*slot != CK_INVALID_HANDLE && *slot != o) {
		if (!(e->flags & HSM_MAP_DUP)) {
			e->flags |= HSM_MAP_DUP;
			hsm_hex(id, HSM_KEY_ID_LEN, hex, sizeof(hex));
			if (c->duplicates++ < HSM_SCAN_LOG_MAX)
				log_warnx("hsm: scan: duplicate: id %s has two %s keys labelled "
				    "%.*s (objects %lu and %lu); left alone", hex,
				    cls == CKO_PRIVATE_KEY ? "private" : "public", (int)lablen,
				    (const char *)lab, (unsigned long)*slot, (unsigned long)o);
		}
	} else
		*slot = o;
	pthread_mutex_unlock(&h->lock);
 done:
	free(longlab);
	return CKR_OK;
}

/*
 * Scan the token once: find every private and public key object (the only part under the
 * exclusive search lock), read each, and fill the map. The map is valid afterwards unless
 * it was flushed meanwhile. Called with scan_lock held exclusive.
 */
static CK_RV
hsm_scan_once(struct hsm_session *s)
{
	struct hsm		*h = s->h;
	struct hsm_scan_count	 c;
	struct hsm_map_entry	*e;
	CK_OBJECT_HANDLE	*o = NULL;
	size_t			 n = 0, npriv, cap = 0, i;
	unsigned int		 epoch = hsm_epoch(h);
	char			 hex[2 * HSM_KEY_ID_LEN + 1];
	long long		 t0 = hsm_now_ms();
	CK_RV			 rv;

	memset(&c, 0, sizeof(c));
	pthread_rwlock_wrlock(&h->search_lock);
	rv = hsm_find_class(s, CKO_PRIVATE_KEY, &o, &n, &cap);
	npriv = n;
	if (rv == CKR_OK)
		rv = hsm_find_class(s, CKO_PUBLIC_KEY, &o, &n, &cap);
	pthread_rwlock_unlock(&h->search_lock);
	if (rv != CKR_OK)
		goto out;

	for (i = 0; i < n; i++)
		if ((rv = hsm_scan_object(s, o[i], epoch, &c)) != CKR_OK)
			goto out;

	pthread_mutex_lock(&h->lock);
	if (epoch != h->epoch) {
		pthread_mutex_unlock(&h->lock);
		goto out;	/* flushed meanwhile: the next use scans again */
	}
	for (i = 0; (e = hsm_map_next(&h->map, &i)) != NULL;) {
		if (e->priv != CK_INVALID_HANDLE && e->pub != CK_INVALID_HANDLE) {
			c.pairs++;
			continue;
		}
		hsm_hex(e->id, HSM_KEY_ID_LEN, hex, sizeof(hex));
		if (c.incomplete++ < HSM_SCAN_LOG_MAX)
			log_warnx("hsm: scan: incomplete pair: id %s has a %s key and no %s "
			    "key; left alone", hex, e->priv ? "private" : "public",
			    e->priv ? "public" : "private");
	}
	__atomic_store_n(&h->map_valid, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&h->lock);

	hsm_stat_inc(h, scans);
	__atomic_store_n(&h->stats.token_pairs, c.pairs, __ATOMIC_RELAXED);
	__atomic_store_n(&h->stats.token_duplicates, c.duplicates, __ATOMIC_RELAXED);
	__atomic_store_n(&h->stats.token_incomplete, c.incomplete, __ATOMIC_RELAXED);
	__atomic_store_n(&h->stats.token_debris, c.debris, __ATOMIC_RELAXED);
	__atomic_store_n(&h->stats.scan_ms, (uint64_t)(hsm_now_ms() - t0),
	    __ATOMIC_RELAXED);
	log_info("hsm: scanned token \"%s\" in %lld ms: %zu private and %zu public key "
	    "objects; %llu pairs of ours, %llu duplicate, %llu incomplete, %llu debris, "
	    "%llu others'", h->label, hsm_now_ms() - t0, npriv, n - npriv,
	    (unsigned long long)c.pairs, (unsigned long long)c.duplicates,
	    (unsigned long long)c.incomplete, (unsigned long long)c.debris,
	    (unsigned long long)c.foreign);
 out:
	free(o);
	return rv;
}

/*
 * Make the map valid: scan the token if this epoch has not been scanned. One thread scans;
 * the others wait for it rather than each searching. A per-session failure is repaired and
 * the scan retried once.
 */
static CK_RV
hsm_map_ensure(struct hsm_session *s)
{
	struct hsm	*h = s->h;
	CK_RV		 rv = CKR_OK;
	int		 retried;

	if (hsm_map_is_valid(h))
		return CKR_OK;
	pthread_rwlock_wrlock(&h->scan_lock);
	for (retried = 0; !hsm_map_is_valid(h); retried = 1) {
		rv = hsm_scan_once(s);
		if (rv == CKR_OK || retried || !hsm_session_recover(s, rv))
			break;
	}
	pthread_rwlock_unlock(&h->scan_lock);
	return rv;
}

/*
 * Fill k for this id: from the map (the public key read from its handle on first use),
 * else from a token search (then entered in the map). A per-session failure is repaired
 * and the search retried once.
 */
static CK_RV
hsm_key_lookup(struct hsm_session *s, const uint8_t *id, struct hsm_key *k)
{
	CK_RV	rv;
	int	retried;

	/* A failed scan leaves the search below to answer. */
	(void)hsm_map_ensure(s);
	switch (hsm_map_get(s->h, id, k)) {
	case HSM_MAP_HIT:
		return CKR_OK;
	case HSM_MAP_NOKEY:
		for (retried = 0;; retried = 1) {
			rv = hsm_read_public(s, k->pub, &k->type, &k->pkey);
			if (rv == CKR_OK || retried || !hsm_session_recover(s, rv))
				break;
		}
		if (rv == CKR_OK) {
			hsm_map_set_pkey(s->h, k);
			return CKR_OK;
		}
		if (rv != CKR_OBJECT_HANDLE_INVALID)
			return rv;
		break;		/* stale: search */
	default:
		break;
	}
	for (retried = 0;; retried = 1) {
		rv = hsm_key_search(s, id, k);
		if (rv == CKR_OK || retried || !hsm_session_recover(s, rv))
			break;
	}
	if (rv != CKR_OK)
		return rv;
	return hsm_map_put(s->h, k) == 0 ? CKR_OK : HSM_CKR_NOMEM;
}

int
hsm_key_find(struct hsm_session *s, const uint8_t id[HSM_KEY_ID_LEN], struct hsm_key **kp)
{
	struct hsm_key	*k;
	CK_RV		 rv;
	int		 r;

	return_val_if_fail(s != NULL && s->h != NULL, KC_ERR_INVALID);
	return_val_if_fail(id != NULL && kp != NULL, KC_ERR_INVALID);
	*kp = NULL;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return KC_ERR_NOMEM;
	if ((r = hsm_op_begin(s, 0)) != 0) {
		hsm_key_free(k);
		return r;
	}
	if ((rv = hsm_key_lookup(s, id, k)) != CKR_OK) {
		r = hsm_op_result(s, rv, "finding a key");
		hsm_op_end(s);
		hsm_key_free(k);
		return r;
	}
	hsm_op_end(s);
	*kp = k;
	return 0;
}

struct evp_pkey_st *
hsm_key_public(const struct hsm_key *k)
{
	return k->pkey;
}

enum hsm_keytype
hsm_key_type(const struct hsm_key *k)
{
	return k->type;
}

void
hsm_key_free(struct hsm_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

/* C_SignInit + the two-call C_Sign. */
static CK_RV
hsm_sign_once(struct hsm_session *s, CK_OBJECT_HANDLE priv, CK_MECHANISM *mp,
    const uint8_t *data, size_t len, uint8_t **sig, CK_ULONG *siglen)
{
	CK_FUNCTION_LIST_PTR f = s->h->f;
	CK_MECHANISM	 mech = *mp;
	CK_ULONG	 n = 0;
	uint8_t		*buf;
	CK_RV		 rv;

	*sig = NULL;
	if ((rv = f->C_SignInit(s->sh, &mech, priv)) != CKR_OK)
		return rv;
	if ((rv = f->C_Sign(s->sh, (CK_BYTE_PTR)data, len, NULL, &n)) != CKR_OK)
		return rv;
	if ((buf = malloc(n ? n : 1)) == NULL) {
		/* The operation is still active: only closing the session ends it. */
		(void)f->C_CloseSession(s->sh);
		(void)hsm_session_recover(s, CKR_SESSION_CLOSED);
		return HSM_CKR_NOMEM;
	}
	if ((rv = f->C_Sign(s->sh, (CK_BYTE_PTR)data, len, buf, &n)) != CKR_OK) {
		free(buf);
		return rv;
	}
	*sig = buf;
	*siglen = n;
	return CKR_OK;
}

/* DER of DigestInfo's AlgorithmIdentifier for SHA-256 and the digest's OCTET STRING header. */
static const uint8_t	 hsm_sha256_prefix[] = {
	0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
	0x01, 0x05, 0x00, 0x04, 0x20
};

/* Turn a raw r || s into a DER Ecdsa-Sig-Value. */
static int
hsm_ecdsa_der(const uint8_t *raw, size_t rawlen, uint8_t **der, size_t *derlen)
{
	ECDSA_SIG	*es = NULL;
	BIGNUM		*br = NULL, *bs = NULL;
	unsigned char	*p = NULL;
	int		 len, r = KC_ERR_CRYPTO;

	if (rawlen == 0 || rawlen % 2 != 0)
		return KC_ERR_HSM;
	if ((br = BN_bin2bn(raw, (int)(rawlen / 2), NULL)) == NULL ||
	    (bs = BN_bin2bn(raw + rawlen / 2, (int)(rawlen / 2), NULL)) == NULL ||
	    (es = ECDSA_SIG_new()) == NULL ||
	    !ECDSA_SIG_set0(es, br, bs))
		goto out;
	br = bs = NULL;			/* owned by es */
	if ((len = i2d_ECDSA_SIG(es, NULL)) <= 0)
		goto out;
	if ((p = malloc((size_t)len)) == NULL) {
		r = KC_ERR_NOMEM;
		goto out;
	}
	*der = p;
	if (i2d_ECDSA_SIG(es, &p) != len) {
		free(*der);
		*der = NULL;
		goto out;
	}
	*derlen = (size_t)len;
	r = 0;
 out:
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(es);
	if (r != 0)
		ERR_clear_error();
	return r;
}

/*
 * C_Sign with mech on the pair's private key, inside an operation (hsm_op_begin()): at
 * most one session repair and one handle refresh, the handle in k refreshed when the
 * token may have renumbered its objects since k was made, or says the handle is invalid.
 */
static int
hsm_sign_mech(struct hsm_session *s, const struct hsm_key *k, CK_MECHANISM *mech,
    const uint8_t *data, size_t len, uint8_t **raw, CK_ULONG *rawlen)
{
	struct hsm		*h = s->h;
	struct hsm_key		 fresh;
	CK_OBJECT_HANDLE	 priv;
	CK_RV			 rv;
	int			 refresh, refreshed = 0, recovered = 0;

	priv = k->priv;
	refresh = k->epoch != hsm_epoch(h);
	for (;;) {
		if (refresh) {
			refresh = 0;
			refreshed = 1;
			memset(&fresh, 0, sizeof(fresh));
			rv = hsm_key_lookup(s, k->id, &fresh);
			EVP_PKEY_free(fresh.pkey);
			if (rv != CKR_OK)
				break;
			priv = fresh.priv;
		}
		rv = hsm_sign_once(s, priv, mech, data, len, raw, rawlen);
		if (rv == CKR_OK)
			break;
		if (!recovered && hsm_session_recover(s, rv)) {
			recovered = 1;
			refresh = k->epoch != hsm_epoch(h);
			continue;
		}
		if (!refreshed && (rv == CKR_KEY_HANDLE_INVALID ||
		    rv == CKR_OBJECT_HANDLE_INVALID)) {
			refresh = 1;
			continue;
		}
		break;
	}
	if (rv != CKR_OK)
		return hsm_op_result(s, rv, "C_Sign");
	if (hsm_late(s, "C_Sign")) {
		free(*raw);
		*raw = NULL;
		return KC_ERR_TIMEOUT;
	}
	return 0;
}

int
hsm_sign(struct hsm_session *s, const struct hsm_key *k, const uint8_t *tbs, size_t tbslen,
    uint8_t **sig, size_t *siglen)
{
	struct hsm		*h;
	uint8_t			 md[EVP_MAX_MD_SIZE], *raw = NULL;
	unsigned int		 mdlen = 0;
	const uint8_t		*data;
	size_t			 len;
	CK_MECHANISM_TYPE	 m;
	CK_MECHANISM		 mech = { 0, NULL, 0 };
	CK_ULONG		 rawlen = 0;
	struct hsm_caps_kt	 kt;
	uint8_t			 di[sizeof(hsm_sha256_prefix) + EVP_MAX_MD_SIZE];
	int			 r;

	return_val_if_fail(s != NULL && s->h != NULL && k != NULL, KC_ERR_INVALID);
	return_val_if_fail(tbs != NULL && sig != NULL && siglen != NULL, KC_ERR_INVALID);
	h = s->h;
	*sig = NULL;
	*siglen = 0;
	if ((r = hsm_op_begin(s, 0)) != 0)
		return r;

	/* The mechanism negotiated with the token (hsm_caps_kt_derive()). */
	hsm_caps_kt_get(h, k->type, &kt);
	if (!kt.can_sign) {
		log_warnx("hsm: token \"%s\" cannot sign with %s keys: %s", h->label,
		    hsm_keytypes[k->type].name, kt.why);
		r = KC_ERR_HSM;
		goto out;
	}
	m = kt.sign;
	data = tbs;
	len = tbslen;
	if (kt.prehash) {
		/* CKM_ECDSA and CKM_RSA_PKCS sign a digest: hash here, sign there. */
		if (!EVP_Digest(tbs, tbslen, md, &mdlen, EVP_sha256(), NULL)) {
			ERR_clear_error();
			r = KC_ERR_CRYPTO;
			goto out;
		}
		data = md;
		len = mdlen;
		if (m == CKM_RSA_PKCS) {
			/* PKCS#1 v1.5 signs DigestInfo { sha256, digest } (RFC 8017 9.2). */
			memcpy(di, hsm_sha256_prefix, sizeof(hsm_sha256_prefix));
			memcpy(di + sizeof(hsm_sha256_prefix), md, mdlen);
			data = di;
			len = sizeof(hsm_sha256_prefix) + mdlen;
		}
	}

	mech.mechanism = m;
	if ((r = hsm_sign_mech(s, k, &mech, data, len, &raw, &rawlen)) != 0)
		goto out;
	if (hsm_keytypes[k->type].ckk == CKK_EC) {
		if ((r = hsm_ecdsa_der(raw, rawlen, sig, siglen)) != 0)
			goto out;
	} else {
		*sig = raw;
		*siglen = rawlen;
		raw = NULL;
	}
	r = 0;
 out:
	hsm_op_end(s);
	free(raw);
	return r;
}

/* A PSS hash's CKM_ and CKG_MGF1_ values. */
static int
hsm_pss_hash(enum hsm_hash hash, CK_MECHANISM_TYPE *m, CK_RSA_PKCS_MGF_TYPE *mgf)
{
	static const struct {
		enum hsm_hash		 hash;
		CK_MECHANISM_TYPE	 m;
		CK_RSA_PKCS_MGF_TYPE	 mgf;
	} t[] = {
		{ HSM_SHA1, CKM_SHA_1, CKG_MGF1_SHA1 },
		{ HSM_SHA224, CKM_SHA224, CKG_MGF1_SHA224 },
		{ HSM_SHA256, CKM_SHA256, CKG_MGF1_SHA256 },
		{ HSM_SHA384, CKM_SHA384, CKG_MGF1_SHA384 },
		{ HSM_SHA512, CKM_SHA512, CKG_MGF1_SHA512 },
	};
	size_t	 i;

	for (i = 0; i < nitems(t); i++)
		if (t[i].hash == hash) {
			if (m != NULL)
				*m = t[i].m;
			if (mgf != NULL)
				*mgf = t[i].mgf;
			return 0;
		}
	return KC_ERR_INVALID;
}

int
hsm_sign_digest(struct hsm_session *s, const struct hsm_key *k, enum hsm_sign_mech m,
    const struct hsm_pss *pss, const uint8_t *data, size_t len, uint8_t **sig,
    size_t *siglen)
{
	CK_RSA_PKCS_PSS_PARAMS	 pp;
	CK_MECHANISM		 mech = { 0, NULL, 0 };
	CK_ULONG		 rawlen = 0;
	uint8_t			*raw = NULL;
	int			 ec, r;

	return_val_if_fail(s != NULL && s->h != NULL && k != NULL, KC_ERR_INVALID);
	return_val_if_fail(data != NULL && sig != NULL && siglen != NULL, KC_ERR_INVALID);
	*sig = NULL;
	*siglen = 0;
	ec = hsm_keytypes[k->type].ckk == CKK_EC;
	switch (m) {
	case HSM_SIGN_ECDSA:
		if (!ec)
			return KC_ERR_INVALID;
		mech.mechanism = CKM_ECDSA;
		break;
	case HSM_SIGN_RSA_PKCS:
		if (ec)
			return KC_ERR_INVALID;
		mech.mechanism = CKM_RSA_PKCS;
		break;
	case HSM_SIGN_RSA_PSS:
		if (ec || pss == NULL)
			return KC_ERR_INVALID;
		memset(&pp, 0, sizeof(pp));
		if (hsm_pss_hash(pss->hash, &pp.hashAlg, NULL) != 0 ||
		    hsm_pss_hash(pss->mgf_hash, NULL, &pp.mgf) != 0)
			return KC_ERR_INVALID;
		pp.sLen = pss->salt_len;
		mech.mechanism = CKM_RSA_PKCS_PSS;
		mech.pParameter = &pp;
		mech.ulParameterLen = sizeof(pp);
		break;
	default:
		return KC_ERR_INVALID;
	}
	if ((r = hsm_op_begin(s, 0)) != 0)
		return r;
	if ((r = hsm_sign_mech(s, k, &mech, data, len, &raw, &rawlen)) == 0) {
		*sig = raw;
		*siglen = rawlen;
	}
	hsm_op_end(s);
	return r;
}

int
hsm_engine_key(struct hsm_session *s, const struct hsm_key *k, struct evp_pkey_st **pkey)
{
	struct hsm	*h;
	struct hsm_caps_kt kt;
	char		*uri;
	char		 errs[512];
	int		 r;

	return_val_if_fail(s != NULL && s->h != NULL && k != NULL, KC_ERR_INVALID);
	return_val_if_fail(pkey != NULL, KC_ERR_INVALID);
	h = s->h;
	*pkey = NULL;
	if (h->signer != HSM_SIGNER_ENGINE)
		return KC_ERR_INVALID;
	/* libp11 signs with CKM_RSA_PKCS or CKM_ECDSA: the negotiation required them. */
	hsm_caps_kt_get(h, k->type, &kt);
	if (!kt.can_sign) {
		log_warnx("hsm: token \"%s\" cannot sign %s keys through the engine",
		    h->label, hsm_keytypes[k->type].name);
		return KC_ERR_HSM;
	}
	if ((uri = hsm_key_uri(h, k->id)) == NULL)
		return KC_ERR_NOMEM;
	/* Shared hold: recovery replaces h->engine. */
	if ((r = hsm_op_begin(s, 0)) != 0) {
		free(uri);
		return r;
	}
	if (h->engine == NULL) {
		hsm_op_end(s);
		free(uri);
		return KC_ERR_UNAVAILABLE;
	}
	/* libp11 searches the token on every load. */
	pthread_rwlock_wrlock(&h->search_lock);
	*pkey = ENGINE_load_private_key(h->engine, uri, NULL, NULL);
	/*
	 * libp11 hands out the EVP_PKEY it caches for the key and ties it to the engine with a
	 * functional reference; that reference, held by its own cache, would keep
	 * ENGINE_finish() in hsm_close() from ever releasing libp11 (which must finalize the
	 * module before we do). The key's RSA/EC method is libp11's either way, so signing
	 * does not need the tie.
	 * XXX the EVP_PKEY is libp11's shared cache entry: another thread signing with the
	 * same key meanwhile sees the tie come and go (both states sign correctly).
	 */
	if (*pkey != NULL && !EVP_PKEY_set1_engine(*pkey, NULL)) {
		EVP_PKEY_free(*pkey);
		*pkey = NULL;
	}
	pthread_rwlock_unlock(&h->search_lock);
	if (*pkey == NULL) {
		hsm_ossl_errors(errs, sizeof(errs));
		log_warnx("hsm: engine cannot load %s: %s", uri, errs);
		r = KC_ERR_HSM;
	}
	hsm_op_end(s);
	free(uri);
	return r;
}

/*
 * Destroy the pair the map knew, by its handles: each is proven ours first (its CKA_ID is
 * id), so that a handle the token reused is never destroyed. Only the two C_DestroyObject
 * calls hold the search lock. Sets *stale when a handle was gone or not ours.
 */
static CK_RV
hsm_destroy_known(struct hsm_session *s, const uint8_t *id, const CK_OBJECT_HANDLE *o,
    int *stale)
{
	CK_OBJECT_HANDLE	 ok[2];
	uint8_t			 got[HSM_KEY_ID_LEN];
	CK_ATTRIBUTE		 t = { CKA_ID, got, sizeof(got) };
	size_t			 i, n = 0;
	CK_RV			 rv;

	*stale = 0;
	for (i = 0; i < 2; i++) {
		if (o[i] == CK_INVALID_HANDLE)
			continue;
		t.ulValueLen = sizeof(got);
		rv = s->h->f->C_GetAttributeValue(s->sh, o[i], &t, 1);
		if (rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_BUFFER_TOO_SMALL ||
		    (rv == CKR_OK && (t.ulValueLen != HSM_KEY_ID_LEN ||
		    memcmp(got, id, HSM_KEY_ID_LEN) != 0))) {
			*stale = 1;
			continue;
		}
		if (rv != CKR_OK)
			return rv;
		ok[n++] = o[i];
	}
	return hsm_destroy_handles(s, ok, n);
}

int
hsm_key_destroy(struct hsm_session *s, const uint8_t id[HSM_KEY_ID_LEN])
{
	struct hsm		*h;
	CK_OBJECT_HANDLE	 o[2 * HSM_FIND_BATCH];
	CK_ULONG		 n1, n2;
	CK_RV			 rv;
	int			 r, retried, dup = 0, stale = 0, known = 0;

	return_val_if_fail(s != NULL && s->h != NULL && id != NULL, KC_ERR_INVALID);
	h = s->h;
	if ((r = hsm_op_begin(s, 1)) != 0)
		return r;

	/* A failed scan leaves the search below to find the pair. */
	(void)hsm_map_ensure(s);
	pthread_rwlock_rdlock(&h->scan_lock);
	if (hsm_map_del(h, id, &o[0], &o[1], &dup)) {
		for (retried = 0;; retried = 1) {
			rv = hsm_destroy_known(s, id, o, &stale);
			if (rv == CKR_OK || retried || !hsm_session_recover(s, rv))
				break;
		}
		if (rv != CKR_OK) {
			pthread_rwlock_unlock(&h->scan_lock);
			r = hsm_op_result(s, rv, "C_DestroyObject");
			hsm_op_end(s);
			return r;
		}
		known = !dup && !stale;
		/* The scan's findings count what is still there: this one is gone. */
		if (o[0] == CK_INVALID_HANDLE || o[1] == CK_INVALID_HANDLE)
			hsm_stat_dec(h, token_incomplete);
	}
	pthread_rwlock_unlock(&h->scan_lock);
	if (known) {
		hsm_op_end(s);
		return 0;
	}

	/*
	 * Search: the map missed the id (a pair made by another daemon, or by a generation
	 * whose reply was lost), or knew a stale handle, or the scan saw duplicates of it.
	 * XXX a pair whose id is shared by more than HSM_FIND_BATCH objects takes several
	 * calls.
	 */
	hsm_stat_inc(h, searches);
	for (retried = 0;; retried = 1) {
		rv = hsm_find_by_id(s, CKO_PRIVATE_KEY, id, o, HSM_FIND_BATCH, &n1);
		if (rv == CKR_OK)
			rv = hsm_find_by_id(s, CKO_PUBLIC_KEY, id, o + n1,
			    HSM_FIND_BATCH, &n2);
		if (rv == CKR_OK)
			rv = hsm_destroy_handles(s, o, n1 + n2);
		if (rv == CKR_OK || retried || !hsm_session_recover(s, rv))
			break;
	}
	if (rv == CKR_OK && dup)
		hsm_stat_dec(h, token_duplicates);
	r = hsm_op_result(s, rv, "destroying a key pair");
	hsm_op_end(s);
	return r;
}

/* The ids of our private keys, from the map. */
static CK_RV
hsm_key_list_map(struct hsm *h, uint8_t **ids, size_t *n)
{
	struct hsm_map_entry	*e;
	uint8_t			*out;
	size_t			 i, nids = 0;

	pthread_mutex_lock(&h->lock);
	if ((out = calloc(h->map.n ? h->map.n : 1, HSM_KEY_ID_LEN)) == NULL) {
		pthread_mutex_unlock(&h->lock);
		return HSM_CKR_NOMEM;
	}
	for (i = 0; (e = hsm_map_next(&h->map, &i)) != NULL;)
		if (e->priv != CK_INVALID_HANDLE)
			memcpy(out + nids++ * HSM_KEY_ID_LEN, e->id, HSM_KEY_ID_LEN);
	pthread_mutex_unlock(&h->lock);
	*ids = out;
	*n = nids;
	return CKR_OK;
}

int
hsm_key_list(struct hsm_session *s, uint8_t **ids, size_t *n)
{
	CK_RV	rv;
	int	r;

	return_val_if_fail(s != NULL && s->h != NULL, KC_ERR_INVALID);
	return_val_if_fail(ids != NULL && n != NULL, KC_ERR_INVALID);
	*ids = NULL;
	*n = 0;
	if ((r = hsm_op_begin(s, 0)) != 0)
		return r;
	if ((rv = hsm_map_ensure(s)) == CKR_OK)
		rv = hsm_key_list_map(s->h, ids, n);
	r = hsm_op_result(s, rv, "listing keys");
	hsm_op_end(s);
	return r;
}

size_t
hsm_key_uri_size(const struct hsm *h)
{
	return kc_p11_key_uri_size(h->label, HSM_KEY_ID_LEN);
}

void
hsm_key_uri_write(const struct hsm *h, const uint8_t id[HSM_KEY_ID_LEN], char *buf)
{
	kc_p11_key_uri(h->label, id, HSM_KEY_ID_LEN, buf);
}

char *
hsm_key_uri(const struct hsm *h, const uint8_t id[HSM_KEY_ID_LEN])
{
	char	*uri;

	return_val_if_fail(h != NULL && id != NULL, NULL);
	if ((uri = malloc(hsm_key_uri_size(h))) == NULL)
		return NULL;
	hsm_key_uri_write(h, id, uri);
	return uri;
}

/*
 * The audit log's MAC key (issue 12): one HMAC-SHA256 secret generated in the token
 * (CKM_GENERIC_SECRET_KEY_GEN), sensitive, never extractable, usable for C_Sign only. It is
 * a CKO_SECRET_KEY with its own label and a CKA_ID of another length than a key pair's, so
 * neither hsm_key_list() (private keys labelled HSM_LABEL_PREFIX) nor hsm_key_destroy()
 * (key pairs by a 16-byte CKA_ID) can ever see it: reconciliation never counts it as an
 * orphan or destroys it.
 */
static const CK_BYTE	 hsm_mac_id[] = "keycustody-audit-mac-v1";
#define HSM_MAC_ID_LEN	(sizeof(hsm_mac_id) - 1)

/* Find the MAC key by class, label and id: *n is how many match (capped at 2). */
static CK_RV
hsm_mac_find(struct hsm_session *s, CK_OBJECT_HANDLE *o, CK_ULONG *n)
{
	CK_FUNCTION_LIST_PTR f = s->h->f;
	CK_OBJECT_CLASS	 cls = CKO_SECRET_KEY;
	CK_ATTRIBUTE	 t[3];
	CK_ULONG	 nt = 0;
	CK_RV		 rv, rv2;

	hsm_attr(t, &nt, CKA_CLASS, &cls, sizeof(cls));
	hsm_attr(t, &nt, CKA_LABEL, HSM_AUDIT_MAC_LABEL, strlen(HSM_AUDIT_MAC_LABEL));
	hsm_attr(t, &nt, CKA_ID, hsm_mac_id, HSM_MAC_ID_LEN);
	*n = 0;
	pthread_rwlock_wrlock(&s->h->search_lock);
	if ((rv = f->C_FindObjectsInit(s->sh, t, nt)) == CKR_OK) {
		rv = f->C_FindObjects(s->sh, o, 2, n);
		rv2 = f->C_FindObjectsFinal(s->sh);
		if (rv == CKR_OK)
			rv = rv2;
	}
	pthread_rwlock_unlock(&s->h->search_lock);
	return rv;
}

/* Generate the MAC key in the token. */
static CK_RV
hsm_mac_generate(struct hsm_session *s, CK_OBJECT_HANDLE *o)
{
	CK_BBOOL	 yes = CK_TRUE, no = CK_FALSE;
	CK_OBJECT_CLASS	 cls = CKO_SECRET_KEY;
	CK_KEY_TYPE	 ckk = CKK_GENERIC_SECRET;
	CK_ULONG	 len = HSM_MAC_LEN, n = 0;
	CK_MECHANISM	 mech = { CKM_GENERIC_SECRET_KEY_GEN, NULL, 0 };
	CK_ATTRIBUTE	 t[20];
	CK_RV		 rv;

	hsm_attr(t, &n, CKA_CLASS, &cls, sizeof(cls));
	hsm_attr(t, &n, CKA_KEY_TYPE, &ckk, sizeof(ckk));
	hsm_attr(t, &n, CKA_VALUE_LEN, &len, sizeof(len));
	hsm_attr(t, &n, CKA_TOKEN, &yes, sizeof(yes));
	hsm_attr(t, &n, CKA_PRIVATE, &yes, sizeof(yes));
	hsm_attr(t, &n, CKA_SENSITIVE, &yes, sizeof(yes));
	hsm_attr(t, &n, CKA_EXTRACTABLE, &no, sizeof(no));
	hsm_attr(t, &n, CKA_MODIFIABLE, &no, sizeof(no));
	hsm_attr(t, &n, CKA_SIGN, &yes, sizeof(yes));
	hsm_attr(t, &n, CKA_VERIFY, &no, sizeof(no));
	hsm_attr(t, &n, CKA_ENCRYPT, &no, sizeof(no));
	hsm_attr(t, &n, CKA_DECRYPT, &no, sizeof(no));
	hsm_attr(t, &n, CKA_WRAP, &no, sizeof(no));
	hsm_attr(t, &n, CKA_UNWRAP, &no, sizeof(no));
	hsm_attr(t, &n, CKA_DERIVE, &no, sizeof(no));
	hsm_attr(t, &n, CKA_ID, hsm_mac_id, HSM_MAC_ID_LEN);
	hsm_attr(t, &n, CKA_LABEL, HSM_AUDIT_MAC_LABEL, strlen(HSM_AUDIT_MAC_LABEL));
	pthread_rwlock_rdlock(&s->h->search_lock);
	rv = s->h->f->C_GenerateKey(s->sh, &mech, t, n, o);
	pthread_rwlock_unlock(&s->h->search_lock);
	return rv;
}

/* The MAC key must be sensitive, never extractable, generated in the token, sign-only. */
static CK_RV
hsm_mac_check(struct hsm_session *s, CK_OBJECT_HANDLE o, char **cause)
{
	static const struct hsm_flag_check checks[] = {
		{ CKA_TOKEN, "CKA_TOKEN", CK_TRUE, 1 },
		{ CKA_PRIVATE, "CKA_PRIVATE", CK_TRUE, 1 },
		{ CKA_SENSITIVE, "CKA_SENSITIVE", CK_TRUE, 1 },
		{ CKA_ALWAYS_SENSITIVE, "CKA_ALWAYS_SENSITIVE", CK_TRUE, HSM_FLAG_HISTORY },
		{ CKA_EXTRACTABLE, "CKA_EXTRACTABLE", CK_FALSE, 1 },
		{ CKA_NEVER_EXTRACTABLE, "CKA_NEVER_EXTRACTABLE", CK_TRUE, HSM_FLAG_HISTORY },
		{ CKA_LOCAL, "CKA_LOCAL", CK_TRUE, 1 },
		{ CKA_SIGN, "CKA_SIGN", CK_TRUE, 1 },
		{ CKA_ENCRYPT, "CKA_ENCRYPT", CK_FALSE, 0 },
		{ CKA_DECRYPT, "CKA_DECRYPT", CK_FALSE, 0 },
		{ CKA_WRAP, "CKA_WRAP", CK_FALSE, 0 },
		{ CKA_UNWRAP, "CKA_UNWRAP", CK_FALSE, 0 },
		{ CKA_DERIVE, "CKA_DERIVE", CK_FALSE, 0 },
	};
	CK_KEY_TYPE	 ckk = (CK_KEY_TYPE)-1;
	CK_ATTRIBUTE	 t = { CKA_KEY_TYPE, &ckk, sizeof(ckk) };
	char		 why[128];
	CK_RV		 rv;

	rv = s->h->f->C_GetAttributeValue(s->sh, o, &t, 1);
	if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID)
		return rv;
	if (t.ulValueLen != sizeof(ckk) ||
	    (ckk != CKK_GENERIC_SECRET && ckk != CKK_SHA256_HMAC)) {
		kc_cause(cause, "the audit MAC key \"%s\" is not a generic secret or "
		    "HMAC-SHA256 key", HSM_AUDIT_MAC_LABEL);
		return HSM_CKR_UNSAFE;
	}
	if ((rv = hsm_check_flags(s, o, checks, nitems(checks), why, sizeof(why))) ==
	    HSM_CKR_UNSAFE)
		kc_cause(cause, "the audit MAC key \"%s\": %s: it could leave the token or "
		    "serve another purpose; it is not used", HSM_AUDIT_MAC_LABEL, why);
	return rv;
}

/* Find (or, when create, make) the MAC key and keep its handle in s. */
static CK_RV
hsm_mac_key_once(struct hsm_session *s, int create, int *created, char **cause)
{
	CK_OBJECT_HANDLE	 o[2];
	CK_ULONG		 n;
	CK_RV			 rv;
	int			 gen;

	if ((rv = hsm_mac_find(s, o, &n)) != CKR_OK)
		return rv;
	if (n > 1) {
		kc_cause(cause, "the token holds more than one audit MAC key \"%s\"",
		    HSM_AUDIT_MAC_LABEL);
		return HSM_CKR_UNSAFE;
	}
	/*
	 * No HMAC in the token, no audit log sealed by it: a MAC key held in the daemon
	 * would let whoever reads its memory rewrite history, so such a token is refused
	 * (docs/COMPATIBILITY.md).
	 */
	if (!hsm_mac_offered(s->h)) {
		kc_cause(cause, "the token \"%s\" cannot sign with CKM_SHA256_HMAC: the audit "
		    "log needs its MAC key in the token", s->h->label);
		return HSM_CKR_UNSUPPORTED;
	}
	if (n == 0) {
		if (!create)
			return HSM_CKR_NOT_FOUND;
		pthread_mutex_lock(&s->h->lock);
		gen = s->h->caps.mac_gen;
		pthread_mutex_unlock(&s->h->lock);
		if (!gen) {
			kc_cause(cause, "the token \"%s\" offers no CKM_GENERIC_SECRET_KEY_GEN: "
			    "the audit MAC key \"%s\" cannot be made in it", s->h->label,
			    HSM_AUDIT_MAC_LABEL);
			return HSM_CKR_UNSUPPORTED;
		}
		if ((rv = hsm_mac_generate(s, &o[0])) != CKR_OK)
			return rv;
		*created = 1;
	}
	if ((rv = hsm_mac_check(s, o[0], cause)) != CKR_OK)
		return rv;
	s->mac_key = o[0];
	s->mac_epoch = hsm_epoch(s->h) + 1;
	return CKR_OK;
}

int
hsm_mac_key_open(struct hsm_session *s, int create, char **cause)
{
	CK_RV	 rv;
	int	 r, retried, created = 0;

	return_val_if_fail(s != NULL && s->h != NULL && cause != NULL, KC_ERR_INVALID);
	*cause = NULL;
	if ((r = hsm_op_begin(s, 0)) != 0)
		return r;
	for (retried = 0;; retried = 1) {
		free(*cause);
		*cause = NULL;
		rv = hsm_mac_key_once(s, create, &created, cause);
		if (rv == CKR_OK || retried || !hsm_session_recover(s, rv))
			break;
	}
	if (rv == HSM_CKR_NOT_FOUND) {
		kc_cause(cause, "the token \"%s\" has no audit MAC key \"%s\"", s->h->label,
		    HSM_AUDIT_MAC_LABEL);
		r = KC_ERR_NOT_FOUND;
	} else if (rv == HSM_CKR_UNSAFE)
		r = KC_ERR_KEY_UNSAFE;
	else if ((r = hsm_result(s->h, rv, "the audit MAC key")) != 0 && *cause == NULL)
		kc_cause(cause, "the audit MAC key \"%s\": %s (%s)", HSM_AUDIT_MAC_LABEL,
		    kc_strerror(r), hsm_ckr_name(rv));
	hsm_op_end(s);
	if (r == 0 && created)
		log_info("hsm: generated the audit MAC key \"%s\" in the token",
		    HSM_AUDIT_MAC_LABEL);
	return r;
}

/* C_Sign with CKM_SHA256_HMAC on the session's MAC key, found again in a new epoch. */
static CK_RV
hsm_mac_once(struct hsm_session *s, const void *data, size_t len, uint8_t *out)
{
	CK_FUNCTION_LIST_PTR f = s->h->f;
	CK_MECHANISM	 mech = { CKM_SHA256_HMAC, NULL, 0 };
	CK_ULONG	 n = HSM_MAC_LEN;
	char		*cause = NULL;
	int		 created = 0;
	CK_RV		 rv;

	if (s->mac_epoch != hsm_epoch(s->h) + 1) {
		rv = hsm_mac_key_once(s, 0, &created, &cause);
		if (cause != NULL)
			log_warnx("hsm: %s", cause);
		free(cause);
		if (rv != CKR_OK)
			return rv;
	}
	if ((rv = f->C_SignInit(s->sh, &mech, s->mac_key)) != CKR_OK)
		return rv;
	if ((rv = f->C_Sign(s->sh, (CK_BYTE_PTR)data, len, out, &n)) != CKR_OK)
		return rv;
	return n == HSM_MAC_LEN ? CKR_OK : HSM_CKR_CRYPTO;
}

int
hsm_mac(struct hsm_session *s, const void *data, size_t len, uint8_t out[HSM_MAC_LEN])
{
	CK_RV	 rv;
	int	 r, retried;

	return_val_if_fail(s != NULL && s->h != NULL && out != NULL, KC_ERR_INVALID);
	return_val_if_fail(data != NULL || len == 0, KC_ERR_INVALID);
	if ((r = hsm_op_begin(s, 0)) != 0)
		return r;
	for (retried = 0;; retried = 1) {
		rv = hsm_mac_once(s, data, len, out);
		if (rv == CKR_OK || retried || !hsm_session_recover(s, rv))
			break;
		s->mac_epoch = 0;	/* the session was reopened: look the key up again */
	}
	if (rv == HSM_CKR_NOT_FOUND || rv == HSM_CKR_UNSAFE)
		r = KC_ERR_KEY_UNSAFE;
	else
		r = hsm_op_result(s, rv, "the audit MAC");
	hsm_op_end(s);
	if (r != 0)
		OPENSSL_cleanse(out, HSM_MAC_LEN);
	return r;
}
