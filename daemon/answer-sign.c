/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * answer-sign.c: the signer role's requests (issue 16): the keys a signer peer may use
 * with their hostnames' certificates (SignerKeys), and a signature over a digest that the
 * peer made (Sign). Only a key bound to a custom hostname inside the peer's scope signs,
 * checked in the store at each request: a hostname deleted stops its key at once. The
 * daemon signs digests only, never raw data: a sign-only key is no decryption oracle.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "answer.h"
#include "audit.h"
#include "conf.h"
#include "hsm.h"
#include "kc-api.h"
#include "kc-err.h"
#include "kc-util.h"
#include "kc-proto.h"
#include "kcd.h"
#include "log.h"
#include "peer.h"
#include "sign.h"
#include "store.h"
#include "xmalloc.h"

/* The DER DigestInfo prefixes (RFC 8017 9.2, note 1) and their digests' lengths. */
static const struct {
	uint8_t		 prefix[19];
	size_t		 prefix_len;
	size_t		 md_len;
} sign_digestinfo[] = {
	{ { 0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00,
	    0x04, 0x14 }, 15, 20 },
	{ { 0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
	    0x02, 0x04, 0x05, 0x00, 0x04, 0x1c }, 19, 28 },
	{ { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
	    0x02, 0x01, 0x05, 0x00, 0x04, 0x20 }, 19, 32 },
	{ { 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
	    0x02, 0x02, 0x05, 0x00, 0x04, 0x30 }, 19, 48 },
	{ { 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
	    0x02, 0x03, 0x05, 0x00, 0x04, 0x40 }, 19, 64 },
};

/* The digest length of a SignHash; 0 for none. */
static size_t
sign_hash_len(int h)
{
	switch (h) {
	case KEYCUSTODY__SIGN_HASH__SIGN_SHA1:
		return 20;
	case KEYCUSTODY__SIGN_HASH__SIGN_SHA224:
		return 28;
	case KEYCUSTODY__SIGN_HASH__SIGN_SHA256:
		return 32;
	case KEYCUSTODY__SIGN_HASH__SIGN_SHA384:
		return 48;
	case KEYCUSTODY__SIGN_HASH__SIGN_SHA512:
		return 64;
	}
	return 0;
}

static int
sign_refuse(struct kc_error *err, int status, const char *msg)
{
	kc_error_set(err, status, status == KC_STATUS_PERMISSION_DENIED ? KC_API_AUTH :
	    KC_API_DECODE, "%s", msg);
	return status == KC_STATUS_PERMISSION_DENIED ? KC_ERR_DENIED : KC_ERR_INVALID;
}

/*
 * What the request asks of the token, checked: a digest of a known length for ECDSA and
 * PSS, a DigestInfo of SHA-1 or SHA-2 for PKCS#1 v1.5, PSS parameters that make sense.
 */
static int
sign_check_data(const Keycustody__SignRequest *m, enum hsm_sign_mech *mech,
    struct hsm_pss *pss, struct kc_error *err)
{
	size_t	 len = m->data.len, i, hl;

	switch (m->mechanism) {
	case KEYCUSTODY__SIGN_MECHANISM__SIGN_ECDSA:
		if (len != 20 && len != 28 && len != 32 && len != 48 && len != 64)
			return sign_refuse(err, KC_STATUS_INVALID_ARGUMENT, "CKM_ECDSA signs a "
			    "digest of 20, 28, 32, 48 or 64 bytes");
		*mech = HSM_SIGN_ECDSA;
		return 0;
	case KEYCUSTODY__SIGN_MECHANISM__SIGN_RSA_PKCS:
		for (i = 0; i < nitems(sign_digestinfo); i++)
			if (len == sign_digestinfo[i].prefix_len + sign_digestinfo[i].md_len &&
			    memcmp(m->data.data, sign_digestinfo[i].prefix,
			    sign_digestinfo[i].prefix_len) == 0)
				break;
		if (i == nitems(sign_digestinfo))
			return sign_refuse(err, KC_STATUS_INVALID_ARGUMENT, "CKM_RSA_PKCS signs "
			    "a DER DigestInfo of SHA-1, SHA-224, SHA-256, SHA-384 or SHA-512 only");
		*mech = HSM_SIGN_RSA_PKCS;
		return 0;
	case KEYCUSTODY__SIGN_MECHANISM__SIGN_RSA_PKCS_PSS:
		hl = m->has_pss_hash ? sign_hash_len(m->pss_hash) : 0;
		if (hl == 0 || len != hl || !m->has_pss_mgf_hash ||
		    sign_hash_len(m->pss_mgf_hash) == 0 || !m->has_pss_salt_len ||
		    m->pss_salt_len > 64)
			return sign_refuse(err, KC_STATUS_INVALID_ARGUMENT, "CKM_RSA_PKCS_PSS "
			    "signs a digest of its hash (SHA-1 or SHA-2), with an MGF1 hash and "
			    "a salt of at most 64 bytes");
		*mech = HSM_SIGN_RSA_PSS;
		/* The protocol's SignHash numbers are hsm_hash's. */
		pss->hash = (enum hsm_hash)m->pss_hash;
		pss->mgf_hash = (enum hsm_hash)m->pss_mgf_hash;
		pss->salt_len = m->pss_salt_len;
		return 0;
	default:
		return sign_refuse(err, KC_STATUS_INVALID_ARGUMENT, "unknown signing "
		    "mechanism");
	}
}

/* store_key_hostnames(): stop at the first hostname in the peer's scope. */
static int
sign_in_scope(void *arg, const char *zone, const char *hostname)
{
	return sign_scope_allows(arg, zone, hostname) ? 1 : 0;
}

int
answer_sign(struct worker *w, const Keycustody__Request *req, Keycustody__Response *resp,
    struct kc_error *err)
{
	const Keycustody__SignRequest	*m = req->sign;
	const struct peer		*peer = w->peer;
	struct hsm_key			*k = NULL;
	struct hsm_pss			 pss;
	enum hsm_sign_mech		 mech;
	enum sign_outcome		 o = SIGN_REFUSED;
	const uint8_t			*kid = NULL;
	uint8_t				*sig = NULL;
	size_t				 siglen = 0;
	int				 r;

	memset(&pss, 0, sizeof(pss));
	if (peer == NULL || peer->scope == NULL) {
		r = sign_refuse(err, KC_STATUS_PERMISSION_DENIED, KC_API_AUTH_MSG
		    ": only the signer role signs");
		goto out;
	}
	if (m->key_id.len != SIGN_KEY_ID_LEN) {
		r = sign_refuse(err, KC_STATUS_INVALID_ARGUMENT, "a key id has 16 bytes");
		goto out;
	}
	kid = m->key_id.data;
	if ((r = sign_check_data(m, &mech, &pss, err)) != 0)
		goto out;
	/* Bound to a hostname in scope now, or not at all: deleting the hostname stops it. */
	if ((r = store_key_hostnames(w->st, kid, sign_in_scope,
	    (void *)peer->scope)) == 0) {
		r = sign_refuse(err, KC_STATUS_PERMISSION_DENIED, KC_API_AUTH_MSG
		    ": the key is not bound to a custom hostname in this signer's scope");
		goto out;
	}
	if (r != 1)
		goto failed;
	if ((r = hsm_key_find(w->hs, kid, &k)) == KC_ERR_NOT_FOUND) {
		kc_error_set(err, KC_STATUS_NOT_FOUND, KC_API_CSR_NOT_FOUND,
		    "the key is not in the token");
		goto failed;
	}
	if (r != 0)
		goto failed;
	if ((r = hsm_sign_digest(w->hs, k, mech, &pss, m->data.data, m->data.len, &sig,
	    &siglen)) == KC_ERR_INVALID) {
		r = sign_refuse(err, KC_STATUS_INVALID_ARGUMENT, "the mechanism is not for "
		    "this key's type");
		goto out;
	}
	if (r != 0)
		goto failed;
	resp->body_case = KEYCUSTODY__RESPONSE__BODY_SIGN;
	resp->sign = xcalloc(1, sizeof(*resp->sign));
	keycustody__sign_response__init(resp->sign);
	resp->sign->signature.data = sig;
	resp->sign->signature.len = siglen;
	o = SIGN_OK;
	goto out;
 failed:
	o = SIGN_FAILED;
 out:
	hsm_key_free(k);
	sign_stats_add(&w->kcd->sign_stats, kid, peer != NULL ? peer->uid : (uid_t)-1, o);
	return r;
}

/* SignerKeys as it is built: the keys so far, the last one being filled. */
struct signer_walk {
	const struct sign_scope		*scope;
	Keycustody__SignerKeysResponse	*resp;
	size_t				 cap;
	int				 failed;
};

/* The leaf of a stored chain (its first certificate), DER; NULL when it cannot be read. */
static uint8_t *
sign_leaf_der(const char *pem, size_t *len)
{
	BIO	*bio;
	X509	*x = NULL;
	uint8_t	*der = NULL;
	int	 n;

	*len = 0;
	if ((bio = BIO_new_mem_buf(pem, -1)) == NULL)
		return NULL;
	if ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL &&
	    (n = i2d_X509(x, &der)) > 0)
		*len = (size_t)n;
	X509_free(x);
	BIO_free(bio);
	ERR_clear_error();
	return der;
}

static int
signer_row(void *arg, const struct store_signer_row *row)
{
	struct signer_walk		*sw = arg;
	Keycustody__SignerKeysResponse	*l = sw->resp;
	Keycustody__SignerKey		*k;
	Keycustody__SignerCertificate	*c;
	uint8_t				*der, *p;
	size_t				 len;

	if (!sign_scope_allows(sw->scope, row->zone_id, row->hostname))
		return 0;
	if ((p = sign_leaf_der(row->certificate_pem, &len)) == NULL) {
		log_warnx("signer keys: hostname %s: its certificate cannot be read",
		    row->hostname);
		sw->failed++;
		return 0;
	}
	/* OpenSSL's buffer to ours: the response is freed with free(). */
	der = xmalloc(len);
	memcpy(der, p, len);
	OPENSSL_free(p);
	k = l->n_keys > 0 ? l->keys[l->n_keys - 1] : NULL;
	if (k == NULL || memcmp(k->key_id.data, row->key_id, SIGN_KEY_ID_LEN) != 0) {
		if (l->n_keys == sw->cap) {
			sw->cap = sw->cap ? sw->cap * 2 : 16;
			l->keys = xreallocarray(l->keys, sw->cap, sizeof(*l->keys));
		}
		k = xcalloc(1, sizeof(*k));
		keycustody__signer_key__init(k);
		k->key_id.data = xmalloc(SIGN_KEY_ID_LEN);
		memcpy(k->key_id.data, row->key_id, SIGN_KEY_ID_LEN);
		k->key_id.len = SIGN_KEY_ID_LEN;
		k->csr_id = xstrdup(row->csr_id);
		k->key_type = xstrdup(row->key_type);
		k->public_key.data = xmalloc(row->pubkey_len ? row->pubkey_len : 1);
		memcpy(k->public_key.data, row->pubkey, row->pubkey_len);
		k->public_key.len = row->pubkey_len;
		l->keys[l->n_keys++] = k;
	}
	c = xcalloc(1, sizeof(*c));
	keycustody__signer_certificate__init(c);
	c->hostname = xstrdup(row->hostname);
	c->zone_id = xstrdup(row->zone_id);
	c->hostname_id = xstrdup(row->hostname_id);
	c->certificate.data = der;
	c->certificate.len = len;
	k->certificates = xreallocarray(k->certificates, k->n_certificates + 1,
	    sizeof(*k->certificates));
	k->certificates[k->n_certificates++] = c;
	return 0;
}

int
answer_signer_keys(struct worker *w, const Keycustody__Request *req,
    Keycustody__Response *resp, struct kc_error *err)
{
	const struct peer	*peer = w->peer;
	struct signer_walk	 sw;
	size_t			 i, j;
	int			 r = 0;

	(void)req;
	if (peer == NULL || peer->scope == NULL)
		return sign_refuse(err, KC_STATUS_PERMISSION_DENIED, KC_API_AUTH_MSG
		    ": only the signer role lists signing keys");
	memset(&sw, 0, sizeof(sw));
	sw.scope = peer->scope;
	sw.resp = xcalloc(1, sizeof(*sw.resp));
	keycustody__signer_keys_response__init(sw.resp);
	resp->body_case = KEYCUSTODY__RESPONSE__BODY_SIGNER_KEYS;
	resp->signer_keys = sw.resp;
	/* A scope of zones reads those zones (in order, no zone twice); "*" reads all. */
	if (!sign_scope_zones_only(peer->scope))
		return store_signer_rows(w->st, NULL, signer_row, &sw);
	for (i = 0; r == 0 && i < peer->scope->n; i++) {
		for (j = 0; j < i; j++)
			if (strcmp(peer->scope->items[j].zone, peer->scope->items[i].zone) == 0)
				break;
		if (j == i)
			r = store_signer_rows(w->st, peer->scope->items[i].zone, signer_row,
			    &sw);
	}
	return r;
}

void
answer_sign_totals(struct kcd *kcd)
{
	struct audit_event	 ev;
	struct sign_count	*v;
	size_t			 n, i;

	sign_stats_snapshot(&kcd->sign_stats, true, &v, &n);
	for (i = 0; i < n; i++) {
		memset(&ev, 0, sizeof(ev));
		ev.op = "sign_totals";
		ev.uid = v[i].uid;
		ev.key_id = v[i].key_id;
		ev.key_id_len = SIGN_KEY_ID_LEN;
		ev.sign_counts = v[i].period;
		ev.period_s = kcd->conf->sign_audit_interval;
		if (audit_record(kcd->audit, &ev) != 0)
			log_warnx("audit: the sign totals of uid %ld could not be written",
			    (long)v[i].uid);
	}
	free(v);
}
