/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * p11-obj.c: keycustody-pkcs11.so's objects: their attributes from a SubjectPublicKeyInfo
 * and a certificate, their stable handles, template matching and attribute reads.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <p11-kit/pkcs11.h>

#include "kc-err.h"
#include "p11-obj.h"

#define P11_OBJ_MAX_ATTRS	40

/* An object under construction: attributes are appended until it is complete. */
struct p11_obj_build {
	struct p11_obj	 obj;
	int		 failed;
};

/* What the public key gives every object of a key. */
struct p11_obj_key {
	CK_KEY_TYPE	 key_type;
	CK_ULONG	 bits;
	CK_ULONG	 sig_len;
	uint8_t		*n, *e;		/* RSA */
	size_t		 n_len, e_len;
	uint8_t		*params, *point;	/* EC: ECParameters, DER OCTET STRING of Q */
	size_t		 params_len, point_len;
};

static void
p11_obj_key_uninit(struct p11_obj_key *k)
{
	OPENSSL_free(k->n);
	OPENSSL_free(k->e);
	OPENSSL_free(k->params);
	OPENSSL_free(k->point);
	memset(k, 0, sizeof(*k));
}

/* A BIGNUM parameter of pkey as unsigned big-endian bytes (OPENSSL_malloc'd). */
static int
p11_obj_bn_param(const EVP_PKEY *pkey, const char *name, uint8_t **out, size_t *len)
{
	BIGNUM	*bn = NULL;
	int	 n;

	if (!EVP_PKEY_get_bn_param(pkey, name, &bn))
		return KC_ERR_INVALID;
	n = BN_num_bytes(bn);
	if (n <= 0 || (*out = OPENSSL_malloc((size_t)n)) == NULL) {
		BN_free(bn);
		return n <= 0 ? KC_ERR_INVALID : KC_ERR_NOMEM;
	}
	BN_bn2bin(bn, *out);
	*len = (size_t)n;
	BN_free(bn);
	return 0;
}

/* Parse a SubjectPublicKeyInfo into what PKCS#11 says of an RSA or EC key. */
static int
p11_obj_key_parse(const uint8_t *spki, size_t len, struct p11_obj_key *k)
{
	const unsigned char	*p = spki;
	X509_PUBKEY		*xpk = NULL;
	EVP_PKEY		*pkey = NULL;
	ASN1_OBJECT		*alg = NULL;
	ASN1_OCTET_STRING	*os = NULL;
	const unsigned char	*pk;
	const void		*pval;
	X509_ALGOR		*algor;
	int			 pklen, ptype, r = KC_ERR_INVALID, n;

	memset(k, 0, sizeof(*k));
	if (len > INT32_MAX ||
	    (xpk = d2i_X509_PUBKEY(NULL, &p, (long)len)) == NULL || p != spki + len ||
	    !X509_PUBKEY_get0_param(&alg, &pk, &pklen, &algor, xpk) ||
	    (pkey = X509_PUBKEY_get(xpk)) == NULL)
		goto out;
	switch (OBJ_obj2nid(alg)) {
	case NID_rsaEncryption:
		k->key_type = CKK_RSA;
		if ((r = p11_obj_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &k->n, &k->n_len)) != 0 ||
		    (r = p11_obj_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &k->e, &k->e_len)) != 0)
			goto out;
		k->bits = (CK_ULONG)EVP_PKEY_get_bits(pkey);
		k->sig_len = (CK_ULONG)k->n_len;
		break;
	case NID_X9_62_id_ecPublicKey:
		/* Named curves only: the parameters are the curve's OID, as CKA_EC_PARAMS wants. */
		X509_ALGOR_get0(NULL, &ptype, &pval, algor);
		if (ptype != V_ASN1_OBJECT || pklen <= 0)
			goto out;
		k->key_type = CKK_EC;
		k->bits = (CK_ULONG)EVP_PKEY_get_bits(pkey);
		k->sig_len = 2 * ((k->bits + 7) / 8);
		if ((n = i2d_ASN1_OBJECT(pval, &k->params)) <= 0) {
			r = KC_ERR_NOMEM;
			goto out;
		}
		k->params_len = (size_t)n;
		if ((os = ASN1_OCTET_STRING_new()) == NULL ||
		    !ASN1_OCTET_STRING_set(os, pk, pklen) ||
		    (n = i2d_ASN1_OCTET_STRING(os, &k->point)) <= 0) {
			r = KC_ERR_NOMEM;
			goto out;
		}
		k->point_len = (size_t)n;
		break;
	default:
		goto out;
	}
	r = k->bits > 0 ? 0 : KC_ERR_INVALID;
 out:
	if (r != 0)
		p11_obj_key_uninit(k);
	ASN1_OCTET_STRING_free(os);
	EVP_PKEY_free(pkey);
	X509_PUBKEY_free(xpk);
	return r;
}

/* Append an attribute (value copied) to b; a failure marks b failed. */
static void
p11_obj_put(struct p11_obj_build *b, CK_ATTRIBUTE_TYPE type, const void *value, size_t len)
{
	struct p11_attr	*a;

	if (b->failed)
		return;
	if (b->obj.nattrs >= P11_OBJ_MAX_ATTRS) {
		b->failed = 1;
		return;
	}
	a = &b->obj.attrs[b->obj.nattrs];
	if ((a->value = malloc(len ? len : 1)) == NULL) {
		b->failed = 1;
		return;
	}
	if (len)
		memcpy(a->value, value, len);
	a->type = type;
	a->len = (CK_ULONG)len;
	b->obj.nattrs++;
}

static void
p11_obj_put_ulong(struct p11_obj_build *b, CK_ATTRIBUTE_TYPE type, CK_ULONG v)
{
	p11_obj_put(b, type, &v, sizeof(v));
}

static void
p11_obj_put_bool(struct p11_obj_build *b, CK_ATTRIBUTE_TYPE type, CK_BBOOL v)
{
	p11_obj_put(b, type, &v, sizeof(v));
}

/* A DER encoding by i2d (any i2d_* of const input) as an attribute. */
static void
p11_obj_put_der(struct p11_obj_build *b, CK_ATTRIBUTE_TYPE type, uint8_t *der, int len)
{
	if (len <= 0)
		b->failed = 1;
	else
		p11_obj_put(b, type, der, (size_t)len);
	OPENSSL_free(der);
}

static void
p11_obj_uninit(struct p11_obj *obj)
{
	size_t	 i;

	for (i = 0; i < obj->nattrs; i++)
		free(obj->attrs[i].value);
	free(obj->attrs);
	obj->attrs = NULL;
	obj->nattrs = 0;
}

CK_OBJECT_HANDLE
p11_obj_handle(CK_OBJECT_CLASS klass, const uint8_t *key_id, size_t key_id_len,
    const char *hostname)
{
	uint8_t		 md[EVP_MAX_MD_SIZE], c = (uint8_t)klass;
	unsigned int	 mdlen = 0;
	EVP_MD_CTX	*ctx;
	uint32_t	 h = 0;

	/* SHA-256 is what we have at hand; any hash stable across processes would do. */
	if ((ctx = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	    EVP_DigestUpdate(ctx, &c, 1) &&
	    EVP_DigestUpdate(ctx, key_id, key_id_len) &&
	    EVP_DigestUpdate(ctx, "", 1) &&
	    EVP_DigestUpdate(ctx, hostname, strlen(hostname)) &&
	    EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen >= 4)
		h = (uint32_t)md[0] << 24 | (uint32_t)md[1] << 16 | (uint32_t)md[2] << 8 | md[3];
	EVP_MD_CTX_free(ctx);
	h &= 0x7fffffffU;
	return h == 0 ? 1 : h;
}

/* Start an object of class klass with the attributes every object has. */
static int
p11_obj_begin(struct p11_obj_build *b, CK_OBJECT_CLASS klass, const uint8_t *key_id,
    size_t key_id_len, const char *hostname)
{
	memset(b, 0, sizeof(*b));
	if ((b->obj.attrs = calloc(P11_OBJ_MAX_ATTRS, sizeof(*b->obj.attrs))) == NULL)
		return KC_ERR_NOMEM;
	b->obj.klass = klass;
	b->obj.handle = p11_obj_handle(klass, key_id, key_id_len, hostname);
	memcpy(b->obj.key_id, key_id, key_id_len);
	b->obj.key_id_len = key_id_len;
	p11_obj_put_ulong(b, CKA_CLASS, klass);
	p11_obj_put_bool(b, CKA_TOKEN, CK_TRUE);
	p11_obj_put_bool(b, CKA_PRIVATE, CK_FALSE);
	p11_obj_put_bool(b, CKA_MODIFIABLE, CK_FALSE);
	p11_obj_put_bool(b, CKA_COPYABLE, CK_FALSE);
	p11_obj_put_bool(b, CKA_DESTROYABLE, CK_FALSE);
	p11_obj_put(b, CKA_LABEL, hostname, strlen(hostname));
	p11_obj_put(b, CKA_ID, key_id, key_id_len);
	return 0;
}

/* The attributes of a public or private key that come from the public key. */
static void
p11_obj_put_key(struct p11_obj_build *b, const struct p11_obj_key *k, const uint8_t *spki,
    size_t spki_len, const uint8_t *subject, size_t subject_len)
{
	b->obj.key_type = k->key_type;
	b->obj.key_bits = k->bits;
	b->obj.sig_len = k->sig_len;
	p11_obj_put_ulong(b, CKA_KEY_TYPE, k->key_type);
	p11_obj_put_bool(b, CKA_LOCAL, CK_TRUE);
	p11_obj_put_bool(b, CKA_DERIVE, CK_FALSE);
	p11_obj_put_ulong(b, CKA_KEY_GEN_MECHANISM, k->key_type == CKK_RSA ?
	    CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN);
	p11_obj_put(b, CKA_SUBJECT, subject, subject_len);
	p11_obj_put(b, CKA_PUBLIC_KEY_INFO, spki, spki_len);
	if (k->key_type == CKK_RSA) {
		p11_obj_put(b, CKA_MODULUS, k->n, k->n_len);
		p11_obj_put(b, CKA_PUBLIC_EXPONENT, k->e, k->e_len);
		p11_obj_put_ulong(b, CKA_MODULUS_BITS, k->bits);
	} else {
		p11_obj_put(b, CKA_EC_PARAMS, k->params, k->params_len);
		p11_obj_put(b, CKA_EC_POINT, k->point, k->point_len);
	}
}

/* Append b's object to set (taking it), or drop it if b failed. */
static int
p11_obj_end(struct p11_objset *set, struct p11_obj_build *b)
{
	size_t	 i;

	if (b->failed) {
		p11_obj_uninit(&b->obj);
		return KC_ERR_NOMEM;
	}
	/*
	 * Two hashes colliding (odds of about n^2 / 2^32): the later object takes the next
	 * free handle. Deterministic for one reply, which is all a collision can ask.
	 */
	for (i = 0; i < set->n; i++) {
		if (set->objs[i].handle == b->obj.handle) {
			b->obj.handle = b->obj.handle % 0x7fffffffU + 1;
			i = (size_t)-1;
		}
	}
	set->objs[set->n++] = b->obj;
	return 0;
}

int
p11_objset_add(struct p11_objset *set, const uint8_t *key_id, size_t key_id_len,
    const uint8_t *spki, size_t spki_len, const char *hostname, const uint8_t *cert,
    size_t cert_len)
{
	struct p11_obj_key	 k;
	struct p11_obj_build	 b;
	struct p11_obj		*objs;
	X509			*x = NULL;
	const unsigned char	*p = cert;
	uint8_t			*der, *subject = NULL, *spki_cert = NULL;
	size_t			 n0 = set->n;
	int			 r, subject_len = 0, n;

	if (key_id_len == 0 || key_id_len > P11_KEY_ID_MAX || hostname[0] == '\0' ||
	    cert_len > INT32_MAX)
		return KC_ERR_INVALID;
	if ((r = p11_obj_key_parse(spki, spki_len, &k)) != 0)
		return r;
	r = KC_ERR_INVALID;
	if ((x = d2i_X509(NULL, &p, (long)cert_len)) == NULL || p != cert + cert_len)
		goto out;
	/* The certificate must be of this key: the daemon says so, and we check. */
	n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki_cert);
	if (n <= 0 || (size_t)n != spki_len || memcmp(spki_cert, spki, spki_len) != 0)
		goto out;
	if ((subject_len = i2d_X509_NAME(X509_get_subject_name(x), &subject)) <= 0)
		goto out;

	r = KC_ERR_NOMEM;
	if ((objs = reallocarray(set->objs, set->n + 3, sizeof(*objs))) == NULL)
		goto out;
	set->objs = objs;

	if ((r = p11_obj_begin(&b, CKO_PRIVATE_KEY, key_id, key_id_len, hostname)) != 0)
		goto out;
	p11_obj_put_key(&b, &k, spki, spki_len, subject, (size_t)subject_len);
	p11_obj_put_bool(&b, CKA_SIGN, CK_TRUE);
	p11_obj_put_bool(&b, CKA_SIGN_RECOVER, CK_FALSE);
	p11_obj_put_bool(&b, CKA_DECRYPT, CK_FALSE);
	p11_obj_put_bool(&b, CKA_UNWRAP, CK_FALSE);
	p11_obj_put_bool(&b, CKA_SENSITIVE, CK_TRUE);
	p11_obj_put_bool(&b, CKA_ALWAYS_SENSITIVE, CK_TRUE);
	p11_obj_put_bool(&b, CKA_EXTRACTABLE, CK_FALSE);
	p11_obj_put_bool(&b, CKA_NEVER_EXTRACTABLE, CK_TRUE);
	p11_obj_put_bool(&b, CKA_ALWAYS_AUTHENTICATE, CK_FALSE);
	p11_obj_put_bool(&b, CKA_WRAP_WITH_TRUSTED, CK_FALSE);
	if ((r = p11_obj_end(set, &b)) != 0)
		goto out;

	if ((r = p11_obj_begin(&b, CKO_PUBLIC_KEY, key_id, key_id_len, hostname)) != 0)
		goto out;
	p11_obj_put_key(&b, &k, spki, spki_len, subject, (size_t)subject_len);
	p11_obj_put_bool(&b, CKA_VERIFY, CK_TRUE);
	p11_obj_put_bool(&b, CKA_VERIFY_RECOVER, CK_FALSE);
	p11_obj_put_bool(&b, CKA_ENCRYPT, CK_FALSE);
	p11_obj_put_bool(&b, CKA_WRAP, CK_FALSE);
	p11_obj_put_bool(&b, CKA_TRUSTED, CK_FALSE);
	if ((r = p11_obj_end(set, &b)) != 0)
		goto out;

	if ((r = p11_obj_begin(&b, CKO_CERTIFICATE, key_id, key_id_len, hostname)) != 0)
		goto out;
	p11_obj_put_ulong(&b, CKA_CERTIFICATE_TYPE, CKC_X_509);
	p11_obj_put_bool(&b, CKA_TRUSTED, CK_FALSE);
	p11_obj_put_ulong(&b, CKA_CERTIFICATE_CATEGORY, 0);	/* unspecified */
	p11_obj_put(&b, CKA_VALUE, cert, cert_len);
	p11_obj_put(&b, CKA_SUBJECT, subject, (size_t)subject_len);
	der = NULL;
	p11_obj_put_der(&b, CKA_ISSUER, der, i2d_X509_NAME(X509_get_issuer_name(x), &der));
	der = NULL;
	p11_obj_put_der(&b, CKA_SERIAL_NUMBER, der,
	    i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &der));
	r = p11_obj_end(set, &b);
 out:
	/* All three or none: a private key without its certificate would find no use. */
	while (r != 0 && set->n > n0)
		p11_obj_uninit(&set->objs[--set->n]);
	OPENSSL_free(subject);
	OPENSSL_free(spki_cert);
	X509_free(x);
	p11_obj_key_uninit(&k);
	return r;
}

int
p11_objset_new(const Keycustody__SignerKeysResponse *resp, struct p11_objset **setp)
{
	struct p11_objset		*set;
	const Keycustody__SignerKey	*key;
	const Keycustody__SignerCertificate *sc;
	size_t				 i, j;
	int				 r;

	*setp = NULL;
	if ((set = calloc(1, sizeof(*set))) == NULL)
		return KC_ERR_NOMEM;
	for (i = 0; i < resp->n_keys; i++) {
		key = resp->keys[i];
		for (j = 0; j < key->n_certificates; j++) {
			sc = key->certificates[j];
			r = p11_objset_add(set, key->key_id.data, key->key_id.len,
			    key->public_key.data, key->public_key.len, sc->hostname,
			    sc->certificate.data, sc->certificate.len);
			if (r == KC_ERR_INVALID)
				set->skipped++;
			else if (r != 0) {
				p11_objset_free(set);
				return r;
			}
		}
	}
	*setp = set;
	return 0;
}

void
p11_objset_free(struct p11_objset *set)
{
	size_t	 i;

	if (set == NULL)
		return;
	for (i = 0; i < set->n; i++)
		p11_obj_uninit(&set->objs[i]);
	free(set->objs);
	free(set);
}

const struct p11_obj *
p11_objset_find(const struct p11_objset *set, CK_OBJECT_HANDLE h)
{
	size_t	 i;

	if (set == NULL)
		return NULL;
	for (i = 0; i < set->n; i++)
		if (set->objs[i].handle == h)
			return &set->objs[i];
	return NULL;
}

const struct p11_attr *
p11_obj_attr(const struct p11_obj *obj, CK_ATTRIBUTE_TYPE type)
{
	size_t	 i;

	for (i = 0; i < obj->nattrs; i++)
		if (obj->attrs[i].type == type)
			return &obj->attrs[i];
	return NULL;
}

int
p11_obj_match(const struct p11_obj *obj, const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	const struct p11_attr	*a;
	CK_ULONG		 i;

	for (i = 0; i < n; i++) {
		if ((a = p11_obj_attr(obj, tmpl[i].type)) == NULL ||
		    a->len != tmpl[i].ulValueLen ||
		    (a->len > 0 && (tmpl[i].pValue == NULL ||
		    memcmp(a->value, tmpl[i].pValue, a->len) != 0)))
			return 0;
	}
	return 1;
}

/* Attributes a private key has but never shows. */
static int
p11_obj_sensitive(const struct p11_obj *obj, CK_ATTRIBUTE_TYPE type)
{
	if (obj->klass != CKO_PRIVATE_KEY)
		return 0;
	switch (type) {
	case CKA_VALUE:
	case CKA_PRIVATE_EXPONENT:
	case CKA_PRIME_1:
	case CKA_PRIME_2:
	case CKA_EXPONENT_1:
	case CKA_EXPONENT_2:
	case CKA_COEFFICIENT:
		return 1;
	default:
		return 0;
	}
}

CK_RV
p11_obj_get_attrs(const struct p11_obj *obj, CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	const struct p11_attr	*a;
	CK_RV			 rv = CKR_OK;
	CK_ULONG		 i;

	for (i = 0; i < n; i++) {
		if (p11_obj_sensitive(obj, tmpl[i].type)) {
			tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = CKR_ATTRIBUTE_SENSITIVE;
		} else if ((a = p11_obj_attr(obj, tmpl[i].type)) == NULL) {
			tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = CKR_ATTRIBUTE_TYPE_INVALID;
		} else if (tmpl[i].pValue == NULL)
			tmpl[i].ulValueLen = a->len;
		else if (tmpl[i].ulValueLen < a->len) {
			tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = CKR_BUFFER_TOO_SMALL;
		} else {
			memcpy(tmpl[i].pValue, a->value, a->len);
			tmpl[i].ulValueLen = a->len;
		}
	}
	return rv;
}
