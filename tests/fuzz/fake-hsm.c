/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * fake-hsm.c: daemon/hsm.h without PKCS#11, for the fuzz targets: every key pair is the
 * fixed software key of fuzz_key(), the "token" is a small table of CKA_IDs, and faults
 * (keygen or sign failing, the token down, the engine signer) are chosen by the input.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "fake-hsm.h"
#include "fuzz.h"
#include "hsm.h"
#include "kc-err.h"
#include "kc-util.h"
#include "xmalloc.h"

#define FAKE_MAX_KEYS	64	/* the token is "full" beyond this: KC_ERR_HSM */

struct hsm {
	char		 label[33];
	enum hsm_signer	 signer;
	struct hsm_stats stats;
};

struct hsm_session {
	struct hsm	*h;
};

struct hsm_key {
	uint8_t		 id[HSM_KEY_ID_LEN];
	enum hsm_keytype type;
	EVP_PKEY	*pub;
};

static const char *const fake_keytypes[HSM_KEY_NTYPES] = {
	[HSM_KEY_RSA2048] = "rsa2048",
	[HSM_KEY_P256] = "p256v1",
	[HSM_KEY_RSA3072] = "rsa3072",
	[HSM_KEY_RSA4096] = "rsa4096",
	[HSM_KEY_P384] = "p384v1",
};

static unsigned int	 fake_faults;
static uint8_t		 fake_ids[FAKE_MAX_KEYS][HSM_KEY_ID_LEN];
static size_t		 fake_nids;

void
fake_hsm_set_faults(unsigned int faults)
{
	fake_faults = faults;
}

void
fake_hsm_reset(void)
{
	fake_nids = 0;
	fake_faults = 0;
}

static int
fake_find(const uint8_t id[HSM_KEY_ID_LEN])
{
	size_t	 i;

	for (i = 0; i < fake_nids; i++)
		if (memcmp(fake_ids[i], id, HSM_KEY_ID_LEN) == 0)
			return (int)i;
	return -1;
}

static int
fake_down(void)
{
	return (fake_faults & FAKE_HSM_DOWN) != 0;
}

int
hsm_open(const struct hsm_config *cfg, const char *pin, size_t pinlen, struct hsm **hp,
    char **cause)
{
	struct hsm	*h = xcalloc(1, sizeof(*h));

	(void)snprintf(h->label, sizeof(h->label), "%s",
	    cfg->token_label != NULL ? cfg->token_label : "fuzz");
	h->signer = cfg->signer;
	*hp = h;
	return 0;
}

void
hsm_close(struct hsm *h)
{
	free(h);
}

enum hsm_state
hsm_get_state(const struct hsm *h)
{
	if (h == NULL || fake_down())
		return HSM_STATE_DOWN;
	return HSM_STATE_OK;
}

int
hsm_recover(struct hsm *h)
{
	return fake_down() ? KC_ERR_UNAVAILABLE : 0;
}

unsigned int
hsm_retry_after(struct hsm *h)
{
	return fake_down() ? 1 : 0;
}

void
hsm_probe(struct hsm *h)
{
}

int
hsm_session_probe(struct hsm_session *s)
{
	return fake_down() ? KC_ERR_UNAVAILABLE : 0;
}

void
hsm_get_stats(const struct hsm *h, struct hsm_stats *st)
{
	*st = h->stats;
}

size_t
hsm_ckr_errors(struct hsm_ckr_count *v, size_t max)
{
	(void)v;
	(void)max;
	return 0;	/* the fake never sees a CKR_* code */
}

const char *
hsm_token_label(const struct hsm *h)
{
	return h->label;
}

enum hsm_signer
hsm_get_signer(const struct hsm *h)
{
	return (fake_faults & FAKE_HSM_ENGINE) ? HSM_SIGNER_ENGINE : h->signer;
}

int
hsm_session_new(struct hsm *h, struct hsm_session **sp)
{
	struct hsm_session	*s = xcalloc(1, sizeof(*s));

	s->h = h;
	*sp = s;
	return 0;
}

void
hsm_session_free(struct hsm_session *s)
{
	free(s);
}

void
hsm_session_set_deadline(struct hsm_session *s, unsigned int ms)
{
}

/* The fake keeps no deadline. */
unsigned int
hsm_session_time_left(const struct hsm_session *s)
{
	return UINT_MAX;
}

static struct hsm_key *
fake_key_new(const uint8_t id[HSM_KEY_ID_LEN], enum hsm_keytype type)
{
	struct hsm_key	*k = xcalloc(1, sizeof(*k));

	memcpy(k->id, id, HSM_KEY_ID_LEN);
	k->type = type;
	k->pub = fuzz_key();
	if (EVP_PKEY_up_ref(k->pub) != 1)
		abort();
	return k;
}

int
hsm_keygen(struct hsm_session *s, enum hsm_keytype type, const uint8_t id[HSM_KEY_ID_LEN],
    const char *label, struct hsm_key **kp, int *maybe_made)
{
	*kp = NULL;
	*maybe_made = 0;
	if ((unsigned int)type >= HSM_KEY_NTYPES || label == NULL)
		return KC_ERR_INVALID;
	if (fake_down())
		return KC_ERR_UNAVAILABLE;
	*maybe_made = 1;
	if ((fake_faults & FAKE_HSM_KEYGEN) || fake_nids >= FAKE_MAX_KEYS)
		return KC_ERR_HSM;
	if (fake_find(id) >= 0)
		return KC_ERR_CONFLICT;
	memcpy(fake_ids[fake_nids++], id, HSM_KEY_ID_LEN);
	/* The reply was lost: the pair is in the token all the same. */
	if (fake_faults & FAKE_HSM_KEYGEN_LOST)
		return KC_ERR_UNAVAILABLE;
	*maybe_made = 0;
	*kp = fake_key_new(id, type);
	return 0;
}

int
hsm_key_find(struct hsm_session *s, const uint8_t id[HSM_KEY_ID_LEN], struct hsm_key **kp)
{
	*kp = NULL;
	if (fake_down())
		return KC_ERR_UNAVAILABLE;
	if (fake_find(id) < 0)
		return KC_ERR_NOT_FOUND;
	*kp = fake_key_new(id, HSM_KEY_P256);
	return 0;
}

EVP_PKEY *
hsm_key_public(const struct hsm_key *k)
{
	return k->pub;
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
	EVP_PKEY_free(k->pub);
	free(k);
}

int
hsm_sign(struct hsm_session *s, const struct hsm_key *k, const uint8_t *tbs, size_t tbslen,
    uint8_t **sig, size_t *siglen)
{
	EVP_MD_CTX	*ctx;
	size_t		 n = 0;
	int		 r = KC_ERR_CRYPTO;

	*sig = NULL;
	*siglen = 0;
	if (fake_down())
		return KC_ERR_UNAVAILABLE;
	if (fake_faults & FAKE_HSM_SIGN)
		return KC_ERR_HSM;
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return KC_ERR_NOMEM;
	if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, fuzz_key()) == 1 &&
	    EVP_DigestSign(ctx, NULL, &n, tbs, tbslen) == 1) {
		*sig = xmalloc(n);
		if (EVP_DigestSign(ctx, *sig, &n, tbs, tbslen) == 1) {
			*siglen = n;
			r = 0;
		} else {
			free(*sig);
			*sig = NULL;
		}
	}
	EVP_MD_CTX_free(ctx);
	return r;
}

/* The signer's path: the fixed key is P-256, so ECDSA only, as the real one refuses RSA. */
int
hsm_sign_digest(struct hsm_session *s, const struct hsm_key *k, enum hsm_sign_mech m,
    const struct hsm_pss *pss, const uint8_t *data, size_t len, uint8_t **sig,
    size_t *siglen)
{
	EVP_PKEY_CTX	*ctx;
	size_t		 n = 0;
	int		 r = KC_ERR_CRYPTO;

	(void)s;
	(void)k;
	(void)pss;
	*sig = NULL;
	*siglen = 0;
	if (fake_down())
		return KC_ERR_UNAVAILABLE;
	if (fake_faults & FAKE_HSM_SIGN)
		return KC_ERR_HSM;
	if (m != HSM_SIGN_ECDSA)
		return KC_ERR_INVALID;
	if ((ctx = EVP_PKEY_CTX_new(fuzz_key(), NULL)) == NULL)
		return KC_ERR_NOMEM;
	if (EVP_PKEY_sign_init(ctx) == 1 && EVP_PKEY_sign(ctx, NULL, &n, data, len) == 1) {
		*sig = xmalloc(n);
		if (EVP_PKEY_sign(ctx, *sig, &n, data, len) == 1) {
			*siglen = n;
			r = 0;
		} else {
			free(*sig);
			*sig = NULL;
		}
	}
	EVP_PKEY_CTX_free(ctx);
	return r;
}

int
hsm_engine_key(struct hsm_session *s, const struct hsm_key *k, EVP_PKEY **pkey)
{
	*pkey = NULL;
	if (hsm_get_signer(s->h) != HSM_SIGNER_ENGINE)
		return KC_ERR_INVALID;
	if (fake_faults & FAKE_HSM_SIGN)
		return KC_ERR_HSM;
	*pkey = fuzz_key();
	if (EVP_PKEY_up_ref(*pkey) != 1)
		abort();
	return 0;
}

int
hsm_key_destroy(struct hsm_session *s, const uint8_t id[HSM_KEY_ID_LEN])
{
	int	 i;

	if (fake_faults & FAKE_HSM_DESTROY)
		return KC_ERR_HSM;
	if ((i = fake_find(id)) >= 0) {
		memmove(fake_ids[i], fake_ids[i + 1],
		    (fake_nids - (size_t)i - 1) * HSM_KEY_ID_LEN);
		fake_nids--;
	}
	return 0;
}

int
hsm_key_list(struct hsm_session *s, uint8_t **ids, size_t *n)
{
	*ids = NULL;
	*n = 0;
	if (fake_down())
		return KC_ERR_UNAVAILABLE;
	if (fake_nids > 0) {
		*ids = xcalloc(fake_nids, HSM_KEY_ID_LEN);
		memcpy(*ids, fake_ids, fake_nids * HSM_KEY_ID_LEN);
		*n = fake_nids;
	}
	return 0;
}

char *
hsm_key_uri(const struct hsm *h, const uint8_t id[HSM_KEY_ID_LEN])
{
	char	 hex[3 * HSM_KEY_ID_LEN + 1], *uri;
	size_t	 i;

	for (i = 0; i < HSM_KEY_ID_LEN; i++)
		(void)snprintf(hex + 3 * i, 4, "%%%02x", id[i]);
	xasprintf(&uri, "pkcs11:token=%s;id=%s;type=private", h->label, hex);
	return uri;
}

size_t
hsm_key_uri_size(const struct hsm *h)
{
	/* The fake's label needs no encoding. */
	return strlen("pkcs11:token=;id=;type=private") + strlen(h->label) +
	    3 * HSM_KEY_ID_LEN + 1;
}

void
hsm_key_uri_write(const struct hsm *h, const uint8_t id[HSM_KEY_ID_LEN], char *buf)
{
	char	*uri = hsm_key_uri(h, id);

	memcpy(buf, uri, strlen(uri) + 1);
	free(uri);
}

const char *
hsm_keytype_name(enum hsm_keytype t)
{
	if ((unsigned int)t >= HSM_KEY_NTYPES)
		return NULL;
	return fake_keytypes[t];
}

int
hsm_keytype_parse(const char *name, enum hsm_keytype *t)
{
	size_t	 i;

	if (name == NULL)
		return KC_ERR_INVALID;
	for (i = 0; i < nitems(fake_keytypes); i++) {
		if (strcmp(name, fake_keytypes[i]) == 0) {
			*t = (enum hsm_keytype)i;
			return 0;
		}
	}
	return KC_ERR_INVALID;
}

/* The fake token offers every key type, signed as SoftHSM2 would. */
int
hsm_keytype_offered(const struct hsm *h, enum hsm_keytype t)
{
	return h != NULL && (unsigned int)t < HSM_KEY_NTYPES;
}

int
hsm_keytype_info(const struct hsm *h, enum hsm_keytype t, char *buf, size_t len)
{
	if (!hsm_keytype_offered(h, t)) {
		snprintf(buf, len, "no such key type");
		return 0;
	}
	snprintf(buf, len, "%s", t == HSM_KEY_P256 || t == HSM_KEY_P384 ?
	    "CKM_ECDSA over SHA-256" : "CKM_SHA256_RSA_PKCS");
	return 1;
}

const char *
hsm_history_missing(const struct hsm *h)
{
	return NULL;
}

int
hsm_mac_offered(const struct hsm *h)
{
	return h != NULL;
}
