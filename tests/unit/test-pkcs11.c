/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * test-pkcs11.c: unit tests of keycustody-pkcs11.so's pure parts with keys and certificates
 * made here: the attributes of each object from the public key and the certificate,
 * handles, template matching, C_GetAttributeValue's rules, what is skipped, and the
 * mechanisms' parameters, hashing and data checks.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <p11-kit/pkcs11.h>

#include "kc-err.h"
#include "p11-obj.h"
#include "p11-sign.h"

#define TEST_HOST	"shop.example.com"
#define TEST_HOST2	"www.example.com"

static const uint8_t test_key_id[16] = {
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
	0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f
};
/* ECParameters of P-256: the OID 1.2.840.10045.3.1.7. */
static const uint8_t test_p256_oid[] = {
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07
};

struct test_key {
	EVP_PKEY	*pkey;
	uint8_t		*spki, *cert;
	size_t		 spki_len, cert_len;
	long		 serial;
};

static struct test_key	test_ec, test_rsa, test_ec2;

/* A certificate for key, signed by itself, with a serial of its own. */
static void
test_key_make(struct test_key *k, EVP_PKEY *pkey, long serial)
{
	X509		*x;
	X509_NAME	*name;
	int		 n;

	k->pkey = pkey;
	k->serial = serial;
	assert_non_null(pkey);
	k->spki = NULL;
	n = i2d_PUBKEY(pkey, &k->spki);
	assert_true(n > 0);
	k->spki_len = (size_t)n;
	assert_non_null(x = X509_new());
	assert_true(X509_set_version(x, 2));
	assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), serial));
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	name = X509_get_subject_name(x);
	assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)TEST_HOST, -1, -1, 0));
	assert_true(X509_set_issuer_name(x, name));
	assert_true(X509_set_pubkey(x, pkey));
	assert_true(X509_sign(x, pkey, EVP_sha256()) > 0);
	k->cert = NULL;
	n = i2d_X509(x, &k->cert);
	assert_true(n > 0);
	k->cert_len = (size_t)n;
	X509_free(x);
}

static int
test_setup(void **state)
{
	test_key_make(&test_ec, EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), 4242);
	test_key_make(&test_ec2, EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"), 7);
	test_key_make(&test_rsa, EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048), 99);
	return 0;
}

static void
test_key_free(struct test_key *k)
{
	EVP_PKEY_free(k->pkey);
	OPENSSL_free(k->spki);
	OPENSSL_free(k->cert);
}

static int
test_teardown(void **state)
{
	test_key_free(&test_ec);
	test_key_free(&test_ec2);
	test_key_free(&test_rsa);
	return 0;
}

static struct p11_objset *
test_set_new(void)
{
	struct p11_objset	*set;

	assert_non_null(set = calloc(1, sizeof(*set)));
	return set;
}

static int
test_add(struct p11_objset *set, const struct test_key *k, const struct test_key *certk,
    const char *host)
{
	return p11_objset_add(set, test_key_id, sizeof(test_key_id), k->spki, k->spki_len,
	    host, certk->cert, certk->cert_len);
}

/* The object of class klass in set (the first one). */
static const struct p11_obj *
test_obj(const struct p11_objset *set, CK_OBJECT_CLASS klass)
{
	size_t	 i;

	for (i = 0; i < set->n; i++)
		if (set->objs[i].klass == klass)
			return &set->objs[i];
	fail_msg("no object of class %lu", (unsigned long)klass);
	return NULL;
}

static void
test_attr_eq(const struct p11_obj *obj, CK_ATTRIBUTE_TYPE type, const void *v, size_t len)
{
	const struct p11_attr	*a;

	assert_non_null(a = p11_obj_attr(obj, type));
	assert_int_equal(a->len, len);
	assert_memory_equal(a->value, v, len);
}

static void
test_attr_bool(const struct p11_obj *obj, CK_ATTRIBUTE_TYPE type, CK_BBOOL v)
{
	test_attr_eq(obj, type, &v, sizeof(v));
}

static void
test_attr_ulong(const struct p11_obj *obj, CK_ATTRIBUTE_TYPE type, CK_ULONG v)
{
	test_attr_eq(obj, type, &v, sizeof(v));
}

static void
test_ec_objects(void **state)
{
	struct p11_objset	*set = test_set_new();
	const struct p11_obj	*priv, *pub, *cert;
	const struct p11_attr	*point;
	uint8_t			 q[65];
	size_t			 qlen;

	assert_int_equal(test_add(set, &test_ec, &test_ec, TEST_HOST), 0);
	assert_int_equal(set->n, 3);
	priv = test_obj(set, CKO_PRIVATE_KEY);
	pub = test_obj(set, CKO_PUBLIC_KEY);
	cert = test_obj(set, CKO_CERTIFICATE);

	test_attr_ulong(priv, CKA_CLASS, CKO_PRIVATE_KEY);
	test_attr_ulong(priv, CKA_KEY_TYPE, CKK_EC);
	test_attr_eq(priv, CKA_ID, test_key_id, sizeof(test_key_id));
	test_attr_eq(priv, CKA_LABEL, TEST_HOST, strlen(TEST_HOST));
	test_attr_bool(priv, CKA_SIGN, CK_TRUE);
	test_attr_bool(priv, CKA_SENSITIVE, CK_TRUE);
	test_attr_bool(priv, CKA_EXTRACTABLE, CK_FALSE);
	test_attr_bool(priv, CKA_ALWAYS_AUTHENTICATE, CK_FALSE);
	test_attr_bool(priv, CKA_PRIVATE, CK_FALSE);
	test_attr_bool(priv, CKA_DECRYPT, CK_FALSE);
	test_attr_eq(priv, CKA_EC_PARAMS, test_p256_oid, sizeof(test_p256_oid));
	test_attr_eq(priv, CKA_PUBLIC_KEY_INFO, test_ec.spki, test_ec.spki_len);
	assert_int_equal(priv->sig_len, 64);
	assert_int_equal(priv->key_bits, 256);

	/* CKA_EC_POINT: a DER OCTET STRING around the uncompressed point. */
	assert_true(EVP_PKEY_get_octet_string_param(test_ec.pkey, OSSL_PKEY_PARAM_PUB_KEY, q,
	    sizeof(q), &qlen));
	assert_int_equal(qlen, 65);
	assert_non_null(point = p11_obj_attr(priv, CKA_EC_POINT));
	assert_int_equal(point->len, 67);
	assert_int_equal(((uint8_t *)point->value)[0], 0x04);
	assert_int_equal(((uint8_t *)point->value)[1], 65);
	assert_memory_equal((uint8_t *)point->value + 2, q, 65);

	test_attr_ulong(pub, CKA_KEY_TYPE, CKK_EC);
	test_attr_bool(pub, CKA_VERIFY, CK_TRUE);
	test_attr_eq(pub, CKA_EC_POINT, point->value, point->len);
	test_attr_eq(pub, CKA_EC_PARAMS, test_p256_oid, sizeof(test_p256_oid));
	assert_null(p11_obj_attr(pub, CKA_SIGN));

	test_attr_ulong(cert, CKA_CERTIFICATE_TYPE, CKC_X_509);
	test_attr_eq(cert, CKA_VALUE, test_ec.cert, test_ec.cert_len);
	test_attr_eq(cert, CKA_LABEL, TEST_HOST, strlen(TEST_HOST));
	test_attr_eq(cert, CKA_ID, test_key_id, sizeof(test_key_id));
	/* 4242 as a DER INTEGER. */
	test_attr_eq(cert, CKA_SERIAL_NUMBER, "\x02\x02\x10\x92", 4);
	assert_non_null(p11_obj_attr(cert, CKA_SUBJECT));
	assert_non_null(p11_obj_attr(cert, CKA_ISSUER));

	/* Handles: three different ones, each as p11_obj_handle() says. */
	assert_int_equal(priv->handle, p11_obj_handle(CKO_PRIVATE_KEY, test_key_id,
	    sizeof(test_key_id), TEST_HOST));
	assert_int_not_equal(priv->handle, pub->handle);
	assert_int_not_equal(priv->handle, cert->handle);
	assert_int_not_equal(pub->handle, cert->handle);
	assert_ptr_equal(p11_objset_find(set, cert->handle), cert);
	assert_null(p11_objset_find(set, 0));
	p11_objset_free(set);
}

static void
test_rsa_objects(void **state)
{
	struct p11_objset	*set = test_set_new();
	const struct p11_obj	*priv, *cert;
	BIGNUM			*n = NULL;
	uint8_t			 nbuf[256], *subject = NULL, *issuer = NULL;
	const unsigned char	*p;
	X509			*x;
	int			 len;

	assert_int_equal(test_add(set, &test_rsa, &test_rsa, TEST_HOST), 0);
	priv = test_obj(set, CKO_PRIVATE_KEY);
	cert = test_obj(set, CKO_CERTIFICATE);
	test_attr_ulong(priv, CKA_KEY_TYPE, CKK_RSA);
	assert_true(EVP_PKEY_get_bn_param(test_rsa.pkey, OSSL_PKEY_PARAM_RSA_N, &n));
	assert_int_equal(BN_bn2binpad(n, nbuf, sizeof(nbuf)), 256);
	BN_free(n);
	test_attr_eq(priv, CKA_MODULUS, nbuf, sizeof(nbuf));
	test_attr_eq(priv, CKA_PUBLIC_EXPONENT, "\x01\x00\x01", 3);
	test_attr_ulong(priv, CKA_MODULUS_BITS, 2048);
	assert_null(p11_obj_attr(priv, CKA_EC_POINT));
	assert_int_equal(priv->sig_len, 256);
	assert_int_equal(priv->key_type, CKK_RSA);

	p = test_rsa.cert;
	assert_non_null(x = d2i_X509(NULL, &p, (long)test_rsa.cert_len));
	len = i2d_X509_NAME(X509_get_subject_name(x), &subject);
	test_attr_eq(cert, CKA_SUBJECT, subject, (size_t)len);
	test_attr_eq(priv, CKA_SUBJECT, subject, (size_t)len);
	len = i2d_X509_NAME(X509_get_issuer_name(x), &issuer);
	test_attr_eq(cert, CKA_ISSUER, issuer, (size_t)len);
	test_attr_eq(cert, CKA_SERIAL_NUMBER, "\x02\x01\x63", 3);
	OPENSSL_free(subject);
	OPENSSL_free(issuer);
	X509_free(x);
	p11_objset_free(set);
}

/* A key bound to two hostnames: two of each object, sharing the id, told apart by label. */
static void
test_two_hostnames(void **state)
{
	struct p11_objset	*set = test_set_new();
	CK_OBJECT_CLASS		 klass = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE		 tmpl[2] = {
		{ CKA_CLASS, &klass, sizeof(klass) },
		{ CKA_LABEL, (void *)TEST_HOST2, sizeof(TEST_HOST2) - 1 },
	};
	size_t			 i, j, matched = 0;

	assert_int_equal(test_add(set, &test_ec, &test_ec, TEST_HOST), 0);
	assert_int_equal(test_add(set, &test_ec, &test_ec, TEST_HOST2), 0);
	assert_int_equal(set->n, 6);
	for (i = 0; i < set->n; i++) {
		for (j = i + 1; j < set->n; j++)
			assert_int_not_equal(set->objs[i].handle, set->objs[j].handle);
		if (p11_obj_match(&set->objs[i], tmpl, 2)) {
			matched++;
			assert_int_equal(set->objs[i].klass, CKO_PRIVATE_KEY);
			assert_int_equal(set->objs[i].handle, p11_obj_handle(CKO_PRIVATE_KEY,
			    test_key_id, sizeof(test_key_id), TEST_HOST2));
		}
		assert_true(p11_obj_match(&set->objs[i], tmpl, 0));
	}
	assert_int_equal(matched, 1);
	/* One class alone: both private keys; one label alone: a hostname's three. */
	for (i = 0, matched = 0; i < set->n; i++)
		matched += p11_obj_match(&set->objs[i], tmpl, 1);
	assert_int_equal(matched, 2);
	for (i = 0, matched = 0; i < set->n; i++)
		matched += p11_obj_match(&set->objs[i], tmpl + 1, 1);
	assert_int_equal(matched, 3);
	p11_objset_free(set);
}

static void
test_match_rules(void **state)
{
	struct p11_objset	*set = test_set_new();
	const struct p11_obj	*priv;
	CK_BBOOL		 yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG		 klass = CKO_PRIVATE_KEY;
	uint32_t		 short_class = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE		 t;

	assert_int_equal(test_add(set, &test_ec, &test_ec, TEST_HOST), 0);
	priv = test_obj(set, CKO_PRIVATE_KEY);
	t = (CK_ATTRIBUTE){ CKA_SIGN, &yes, sizeof(yes) };
	assert_true(p11_obj_match(priv, &t, 1));
	t = (CK_ATTRIBUTE){ CKA_SIGN, &no, sizeof(no) };
	assert_false(p11_obj_match(priv, &t, 1));
	/* Same value, wrong length: no match. */
	t = (CK_ATTRIBUTE){ CKA_CLASS, &short_class, sizeof(short_class) };
	assert_false(p11_obj_match(priv, &t, 1));
	t = (CK_ATTRIBUTE){ CKA_CLASS, &klass, sizeof(klass) };
	assert_true(p11_obj_match(priv, &t, 1));
	/* An attribute the object lacks, or a NULL value: no match, no crash. */
	t = (CK_ATTRIBUTE){ CKA_MODULUS, &klass, sizeof(klass) };
	assert_false(p11_obj_match(priv, &t, 1));
	t = (CK_ATTRIBUTE){ CKA_ID, NULL, sizeof(test_key_id) };
	assert_false(p11_obj_match(priv, &t, 1));
	t = (CK_ATTRIBUTE){ CKA_ID, (void *)test_key_id, sizeof(test_key_id) - 1 };
	assert_false(p11_obj_match(priv, &t, 1));
	p11_objset_free(set);
}

static void
test_get_attrs(void **state)
{
	struct p11_objset	*set = test_set_new();
	const struct p11_obj	*priv, *cert;
	uint8_t			 buf[512], small[4];
	CK_ULONG		 kt = 0;
	CK_ATTRIBUTE		 t[4];

	assert_int_equal(test_add(set, &test_ec, &test_ec, TEST_HOST), 0);
	priv = test_obj(set, CKO_PRIVATE_KEY);
	cert = test_obj(set, CKO_CERTIFICATE);

	/* The length alone, then the value. */
	t[0] = (CK_ATTRIBUTE){ CKA_LABEL, NULL, 0 };
	assert_int_equal(p11_obj_get_attrs(priv, t, 1), CKR_OK);
	assert_int_equal(t[0].ulValueLen, strlen(TEST_HOST));
	t[0] = (CK_ATTRIBUTE){ CKA_LABEL, buf, sizeof(buf) };
	t[1] = (CK_ATTRIBUTE){ CKA_KEY_TYPE, &kt, sizeof(kt) };
	assert_int_equal(p11_obj_get_attrs(priv, t, 2), CKR_OK);
	assert_int_equal(t[0].ulValueLen, strlen(TEST_HOST));
	assert_memory_equal(buf, TEST_HOST, strlen(TEST_HOST));
	assert_int_equal(kt, CKK_EC);

	/* Every attribute is processed; the others are still filled. */
	t[0] = (CK_ATTRIBUTE){ CKA_VALUE, buf, sizeof(buf) };
	t[1] = (CK_ATTRIBUTE){ CKA_KEY_TYPE, &kt, sizeof(kt) };
	t[2] = (CK_ATTRIBUTE){ CKA_PRIME_1, buf, sizeof(buf) };
	kt = 0;
	assert_int_equal(p11_obj_get_attrs(priv, t, 3), CKR_ATTRIBUTE_SENSITIVE);
	assert_int_equal(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	assert_int_equal(t[2].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	assert_int_equal(kt, CKK_EC);

	t[0] = (CK_ATTRIBUTE){ CKA_MODULUS, buf, sizeof(buf) };
	assert_int_equal(p11_obj_get_attrs(priv, t, 1), CKR_ATTRIBUTE_TYPE_INVALID);
	assert_int_equal(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);

	t[0] = (CK_ATTRIBUTE){ CKA_VALUE, small, sizeof(small) };
	assert_int_equal(p11_obj_get_attrs(cert, t, 1), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	/* A certificate's CKA_VALUE is not secret. */
	t[0] = (CK_ATTRIBUTE){ CKA_VALUE, buf, sizeof(buf) };
	assert_int_equal(p11_obj_get_attrs(cert, t, 1), CKR_OK);
	assert_int_equal(t[0].ulValueLen, test_ec.cert_len);
	assert_memory_equal(buf, test_ec.cert, test_ec.cert_len);
	p11_objset_free(set);
}

/* What does not fit is refused, and adds nothing. */
static void
test_rejected(void **state)
{
	struct p11_objset	*set = test_set_new();
	uint8_t			 junk[64];

	memset(junk, 0x30, sizeof(junk));
	/* Another key's certificate. */
	assert_int_equal(test_add(set, &test_ec, &test_rsa, TEST_HOST), KC_ERR_INVALID);
	assert_int_equal(test_add(set, &test_ec, &test_ec2, TEST_HOST), KC_ERR_INVALID);
	assert_int_equal(p11_objset_add(set, test_key_id, sizeof(test_key_id), junk,
	    sizeof(junk), TEST_HOST, test_ec.cert, test_ec.cert_len), KC_ERR_INVALID);
	assert_int_equal(p11_objset_add(set, test_key_id, sizeof(test_key_id), test_ec.spki,
	    test_ec.spki_len, TEST_HOST, junk, sizeof(junk)), KC_ERR_INVALID);
	/* Trailing bytes after the DER. */
	assert_int_equal(p11_objset_add(set, test_key_id, sizeof(test_key_id), test_ec.spki,
	    test_ec.spki_len - 1, TEST_HOST, test_ec.cert, test_ec.cert_len), KC_ERR_INVALID);
	assert_int_equal(p11_objset_add(set, test_key_id, 0, test_ec.spki, test_ec.spki_len,
	    TEST_HOST, test_ec.cert, test_ec.cert_len), KC_ERR_INVALID);
	assert_int_equal(p11_objset_add(set, test_key_id, sizeof(test_key_id), test_ec.spki,
	    test_ec.spki_len, "", test_ec.cert, test_ec.cert_len), KC_ERR_INVALID);
	assert_int_equal(set->n, 0);
	p11_objset_free(set);
}

/* A response as the daemon sends it: the bad entries skipped, the good ones kept. */
static void
test_from_response(void **state)
{
	Keycustody__SignerKeysResponse	 resp = KEYCUSTODY__SIGNER_KEYS_RESPONSE__INIT;
	Keycustody__SignerKey		 k1 = KEYCUSTODY__SIGNER_KEY__INIT;
	Keycustody__SignerKey		 k2 = KEYCUSTODY__SIGNER_KEY__INIT;
	Keycustody__SignerKey		 k3 = KEYCUSTODY__SIGNER_KEY__INIT;
	Keycustody__SignerCertificate	 c1 = KEYCUSTODY__SIGNER_CERTIFICATE__INIT;
	Keycustody__SignerCertificate	 c2 = KEYCUSTODY__SIGNER_CERTIFICATE__INIT;
	Keycustody__SignerCertificate	 c3 = KEYCUSTODY__SIGNER_CERTIFICATE__INIT;
	Keycustody__SignerKey		*keys[3] = { &k1, &k2, &k3 };
	Keycustody__SignerCertificate	*certs1[2] = { &c1, &c2 }, *certs2[1] = { &c3 };
	struct p11_objset		*set;
	static uint8_t			 id2[16] = { 2 };

	k1.key_id.data = (uint8_t *)test_key_id;
	k1.key_id.len = sizeof(test_key_id);
	k1.public_key.data = test_rsa.spki;
	k1.public_key.len = test_rsa.spki_len;
	k1.n_certificates = 2;
	k1.certificates = certs1;
	c1.hostname = (char *)TEST_HOST;
	c1.certificate.data = test_rsa.cert;
	c1.certificate.len = test_rsa.cert_len;
	c2.hostname = (char *)TEST_HOST2;
	c2.certificate.data = test_ec.cert;	/* not this key's: skipped */
	c2.certificate.len = test_ec.cert_len;
	k2.key_id.data = id2;
	k2.key_id.len = sizeof(id2);
	k2.public_key.data = test_ec.spki;
	k2.public_key.len = test_ec.spki_len;
	k2.n_certificates = 1;
	k2.certificates = certs2;
	c3.hostname = (char *)TEST_HOST2;
	c3.certificate.data = test_ec.cert;
	c3.certificate.len = test_ec.cert_len;
	/* A key without a hostname: nothing to present. */
	k3.key_id.data = id2;
	k3.key_id.len = sizeof(id2);
	k3.public_key.data = test_ec2.spki;
	k3.public_key.len = test_ec2.spki_len;
	resp.n_keys = 3;
	resp.keys = keys;

	assert_int_equal(p11_objset_new(&resp, &set), 0);
	assert_int_equal(set->n, 6);
	assert_int_equal(set->skipped, 1);
	assert_non_null(p11_objset_find(set, p11_obj_handle(CKO_CERTIFICATE, id2, sizeof(id2),
	    TEST_HOST2)));
	assert_non_null(p11_objset_find(set, p11_obj_handle(CKO_PRIVATE_KEY, test_key_id,
	    sizeof(test_key_id), TEST_HOST)));
	assert_null(p11_objset_find(set, p11_obj_handle(CKO_PRIVATE_KEY, test_key_id,
	    sizeof(test_key_id), TEST_HOST2)));
	p11_objset_free(set);

	resp.n_keys = 0;
	assert_int_equal(p11_objset_new(&resp, &set), 0);
	assert_int_equal(set->n, 0);
	p11_objset_free(set);
	p11_objset_free(NULL);
}

static void
test_handles(void **state)
{
	CK_OBJECT_HANDLE	 h, h2;

	h = p11_obj_handle(CKO_PRIVATE_KEY, test_key_id, sizeof(test_key_id), TEST_HOST);
	assert_true(h > 0 && h <= 0x7fffffffUL);
	/* The same in every process: a function of its inputs only. */
	assert_int_equal(h, p11_obj_handle(CKO_PRIVATE_KEY, test_key_id, sizeof(test_key_id),
	    TEST_HOST));
	h2 = p11_obj_handle(CKO_PRIVATE_KEY, test_key_id, sizeof(test_key_id) - 1, TEST_HOST);
	assert_int_not_equal(h, h2);
	h2 = p11_obj_handle(CKO_CERTIFICATE, test_key_id, sizeof(test_key_id), TEST_HOST);
	assert_int_not_equal(h, h2);
	h2 = p11_obj_handle(CKO_PRIVATE_KEY, test_key_id, sizeof(test_key_id), TEST_HOST2);
	assert_int_not_equal(h, h2);
}

/* --- mechanisms --- */

static void
test_mech_init(void **state)
{
	struct p11_sign		 s;
	CK_RSA_PKCS_PSS_PARAMS	 pss = { CKM_SHA256, CKG_MGF1_SHA256, 32 };
	CK_MECHANISM		 m = { CKM_ECDSA, NULL, 0 };

	assert_int_equal(p11_sign_init(&s, &m, CKK_EC, 64), CKR_OK);
	assert_int_equal(s.wire_mech, KEYCUSTODY__SIGN_MECHANISM__SIGN_ECDSA);
	p11_sign_uninit(&s);
	assert_int_equal(p11_sign_init(&s, &m, CKK_RSA, 256), CKR_KEY_TYPE_INCONSISTENT);
	m.mechanism = CKM_RSA_PKCS;
	assert_int_equal(p11_sign_init(&s, &m, CKK_EC, 64), CKR_KEY_TYPE_INCONSISTENT);
	m.mechanism = CKM_RSA_X_509;	/* raw RSA: never */
	assert_int_equal(p11_sign_init(&s, &m, CKK_RSA, 256), CKR_MECHANISM_INVALID);
	m.mechanism = CKM_SHA384_RSA_PKCS;
	assert_int_equal(p11_sign_init(&s, &m, CKK_RSA, 256), CKR_MECHANISM_INVALID);
	m = (CK_MECHANISM){ CKM_RSA_PKCS, &pss, sizeof(pss) };
	assert_int_equal(p11_sign_init(&s, &m, CKK_RSA, 256), CKR_MECHANISM_PARAM_INVALID);

	m.mechanism = CKM_RSA_PKCS_PSS;
	assert_int_equal(p11_sign_init(&s, &m, CKK_RSA, 256), CKR_OK);
	assert_int_equal(s.wire_mech, KEYCUSTODY__SIGN_MECHANISM__SIGN_RSA_PKCS_PSS);
	assert_int_equal(s.pss_hash, KEYCUSTODY__SIGN_HASH__SIGN_SHA256);
	assert_int_equal(s.pss_mgf_hash, KEYCUSTODY__SIGN_HASH__SIGN_SHA256);
	assert_int_equal(s.pss_salt_len, 32);
	p11_sign_uninit(&s);
	/* The largest salt a 2048-bit key takes with SHA-256: 256 - 32 - 2. */
	pss.sLen = 222;
	assert_int_equal(p11_sign_init(&s, &m, CKK_RSA, 256), CKR_OK);
	p11_sign_uninit(&s);
	pss.sLen = 223;
	assert_int_equal(p11_sign_init(&s, &m, CKK_RSA, 256), CKR_MECHANISM_PARAM_INVALID);
	pss = (CK_RSA_PKCS_PSS_PARAMS){ CKM_MD5, CKG_MGF1_SHA256, 16 };
	assert_int_equal(p11_sign_init(&s, &m, CKK_RSA, 256), CKR_MECHANISM_PARAM_INVALID);
	pss = (CK_RSA_PKCS_PSS_PARAMS){ CKM_SHA384, 0x77, 48 };
	assert_int_equal(p11_sign_init(&s, &m, CKK_RSA, 256), CKR_MECHANISM_PARAM_INVALID);
	m.ulParameterLen = sizeof(pss) - 1;
	assert_int_equal(p11_sign_init(&s, &m, CKK_RSA, 256), CKR_MECHANISM_PARAM_INVALID);
	m = (CK_MECHANISM){ CKM_RSA_PKCS_PSS, NULL, 0 };
	assert_int_equal(p11_sign_init(&s, &m, CKK_RSA, 256), CKR_MECHANISM_PARAM_INVALID);
	assert_null(p11_mech_find(CKM_RSA_X_509));
	assert_non_null(p11_mech_find(CKM_SHA256_RSA_PKCS));
}

/* Sign init, data in parts, then what the daemon gets. */
static CK_RV
test_input(CK_MECHANISM_TYPE mech, CK_KEY_TYPE kt, const void *data, size_t len,
    uint8_t *out, size_t *outlen)
{
	struct p11_sign	 s;
	CK_MECHANISM	 m = { mech, NULL, 0 };
	CK_RV		 rv;

	assert_int_equal(p11_sign_init(&s, &m, kt, kt == CKK_EC ? 64 : 256), CKR_OK);
	if ((rv = p11_sign_update(&s, data, len / 2)) == CKR_OK &&
	    (rv = p11_sign_update(&s, (const uint8_t *)data + len / 2, len - len / 2)) == CKR_OK)
		rv = p11_sign_input(&s, out, outlen);
	p11_sign_uninit(&s);
	return rv;
}

static void
test_mech_input(void **state)
{
	static const uint8_t	 di_prefix[19] = {
		0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
		0x02, 0x01, 0x05, 0x00, 0x04, 0x20
	};
	uint8_t			 data[600], out[P11_SIGN_MAX_INPUT], md[32], di[51];
	size_t			 outlen, i;
	static const size_t	 ec_ok[] = { 20, 28, 32, 48, 64 };

	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)i;
	for (i = 0; i < sizeof(ec_ok) / sizeof(ec_ok[0]); i++) {
		assert_int_equal(test_input(CKM_ECDSA, CKK_EC, data, ec_ok[i], out, &outlen),
		    CKR_OK);
		assert_int_equal(outlen, ec_ok[i]);
		assert_memory_equal(out, data, outlen);
	}
	assert_int_equal(test_input(CKM_ECDSA, CKK_EC, data, 33, out, &outlen),
	    CKR_DATA_LEN_RANGE);
	assert_int_equal(test_input(CKM_ECDSA, CKK_EC, data, 0, out, &outlen),
	    CKR_DATA_LEN_RANGE);
	assert_int_equal(test_input(CKM_ECDSA, CKK_EC, data, sizeof(data), out, &outlen),
	    CKR_DATA_LEN_RANGE);

	/* Hashed here: SHA-256 of the data, in any number of parts. */
	assert_true(EVP_Digest(data, sizeof(data), md, NULL, EVP_sha256(), NULL));
	assert_int_equal(test_input(CKM_ECDSA_SHA256, CKK_EC, data, sizeof(data), out,
	    &outlen), CKR_OK);
	assert_int_equal(outlen, 32);
	assert_memory_equal(out, md, 32);
	assert_int_equal(test_input(CKM_SHA256_RSA_PKCS, CKK_RSA, data, sizeof(data), out,
	    &outlen), CKR_OK);
	assert_int_equal(outlen, 51);
	assert_memory_equal(out, di_prefix, sizeof(di_prefix));
	assert_memory_equal(out + 19, md, 32);

	/* CKM_RSA_PKCS: a DigestInfo of a known hash, nothing else. */
	memcpy(di, di_prefix, sizeof(di_prefix));
	memcpy(di + 19, md, 32);
	assert_int_equal(test_input(CKM_RSA_PKCS, CKK_RSA, di, sizeof(di), out, &outlen),
	    CKR_OK);
	assert_int_equal(outlen, sizeof(di));
	assert_int_equal(test_input(CKM_RSA_PKCS, CKK_RSA, di, sizeof(di) - 1, out, &outlen),
	    CKR_DATA_INVALID);
	assert_int_equal(test_input(CKM_RSA_PKCS, CKK_RSA, md, sizeof(md), out, &outlen),
	    CKR_DATA_INVALID);
	di[8] ^= 1;
	assert_int_equal(test_input(CKM_RSA_PKCS, CKK_RSA, di, sizeof(di), out, &outlen),
	    CKR_DATA_INVALID);
	assert_int_equal(test_input(CKM_RSA_PKCS, CKK_RSA, data, sizeof(data), out, &outlen),
	    CKR_DATA_LEN_RANGE);
}

static void
test_mech_pss_input(void **state)
{
	struct p11_sign		 s;
	CK_RSA_PKCS_PSS_PARAMS	 pss = { CKM_SHA384, CKG_MGF1_SHA384, 48 };
	CK_MECHANISM		 m = { CKM_RSA_PKCS_PSS, &pss, sizeof(pss) };
	uint8_t			 data[64] = { 0 }, out[P11_SIGN_MAX_INPUT];
	size_t			 outlen;

	assert_int_equal(p11_sign_init(&s, &m, CKK_RSA, 256), CKR_OK);
	assert_int_equal(p11_sign_update(&s, data, 48), CKR_OK);
	assert_int_equal(p11_sign_input(&s, out, &outlen), CKR_OK);
	assert_int_equal(outlen, 48);
	p11_sign_uninit(&s);
	assert_int_equal(p11_sign_init(&s, &m, CKK_RSA, 256), CKR_OK);
	assert_int_equal(p11_sign_update(&s, data, 32), CKR_OK);
	assert_int_equal(p11_sign_input(&s, out, &outlen), CKR_DATA_LEN_RANGE);
	p11_sign_uninit(&s);
}

int
main(void)
{
	const struct CMUnitTest	 tests[] = {
		cmocka_unit_test(test_ec_objects),
		cmocka_unit_test(test_rsa_objects),
		cmocka_unit_test(test_two_hostnames),
		cmocka_unit_test(test_match_rules),
		cmocka_unit_test(test_get_attrs),
		cmocka_unit_test(test_rejected),
		cmocka_unit_test(test_from_response),
		cmocka_unit_test(test_handles),
		cmocka_unit_test(test_mech_init),
		cmocka_unit_test(test_mech_input),
		cmocka_unit_test(test_mech_pss_input),
	};

	return cmocka_run_group_tests(tests, test_setup, test_teardown);
}
