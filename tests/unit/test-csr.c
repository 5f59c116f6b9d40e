/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * test-csr.c: unit tests of csr.c with software keys (no token): subject order, SANs,
 * signature algorithms, the self-check, PEM layout, error propagation from the signer.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "kc-err.h"
#include "csr.h"

struct test_keys {
	EVP_PKEY	*rsa;
	EVP_PKEY	*ec;
	EVP_PKEY	*ec384;
	EVP_PKEY	*other;		/* a key that does not match any public key above */
};

static const char *const test_sans[] = { "shop.acme-corp.co.uk", "*.acme-corp.co.uk",
    "www.acme-corp.co.uk" };

static const struct csr_subject test_subject = {
	.country = "GB",
	.state = "England",
	.locality = "London",
	.organization = "Acme Corp",
	.organizational_unit = "Web",
	.common_name = "shop.acme-corp.co.uk",
	.sans = test_sans,
	.nsans = 3,
};

/* Sign callback: SHA-256 with the software private key in arg (RSA PKCS#1 v1.5 or ECDSA). */
static int
test_sign_soft(void *arg, const uint8_t *tbs, size_t tbslen, uint8_t **sig, size_t *siglen)
{
	EVP_PKEY	*key = arg;
	EVP_MD_CTX	*md;
	size_t		 len = 0;
	int		 r = KC_ERR_CRYPTO;

	*sig = NULL;
	if ((md = EVP_MD_CTX_new()) == NULL)
		return KC_ERR_NOMEM;
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, NULL, &len, tbs, tbslen) != 1 ||
	    (*sig = malloc(len)) == NULL ||
	    EVP_DigestSign(md, *sig, &len, tbs, tbslen) != 1)
		goto out;
	*siglen = len;
	r = 0;
 out:
	if (r != 0) {
		free(*sig);
		*sig = NULL;
	}
	EVP_MD_CTX_free(md);
	return r;
}

static int
test_sign_fail(void *arg, const uint8_t *tbs, size_t tbslen, uint8_t **sig, size_t *siglen)
{
	*sig = NULL;
	return KC_ERR_UNAVAILABLE;
}

static int
test_setup(void **state)
{
	struct test_keys	*k;

	if ((k = calloc(1, sizeof(*k))) == NULL)
		return -1;
	k->rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	k->ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "prime256v1");
	k->ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp384r1");
	k->other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "prime256v1");
	if (k->rsa == NULL || k->ec == NULL || k->ec384 == NULL || k->other == NULL)
		return -1;
	*state = k;
	return 0;
}

static int
test_teardown(void **state)
{
	struct test_keys	*k = *state;

	EVP_PKEY_free(k->rsa);
	EVP_PKEY_free(k->ec);
	EVP_PKEY_free(k->ec384);
	EVP_PKEY_free(k->other);
	free(k);
	return 0;
}

/* The public half of a key, as hsm.c would hand it over. */
static EVP_PKEY *
test_public(EVP_PKEY *key)
{
	unsigned char	*der = NULL;
	const unsigned char *p;
	EVP_PKEY	*pub;
	int		 n;

	n = i2d_PUBKEY(key, &der);
	assert_true(n > 0);
	p = der;
	pub = d2i_PUBKEY(NULL, &p, n);
	assert_non_null(pub);
	OPENSSL_free(der);
	return pub;
}

static X509_REQ *
test_parse(const char *pem)
{
	BIO		*bio;
	X509_REQ	*req;

	bio = BIO_new_mem_buf(pem, -1);
	assert_non_null(bio);
	req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	assert_non_null(req);
	BIO_free(bio);
	return req;
}

/* PEM: header, base64 lines of exactly 64 characters but the last, footer, '\n' ends. */
static void
test_check_pem(const char *pem)
{
	static const char	 begin[] = "-----BEGIN CERTIFICATE REQUEST-----\n";
	static const char	 end[] = "-----END CERTIFICATE REQUEST-----\n";
	const char		*p, *nl;
	size_t			 len, body, last = 64;

	assert_memory_equal(pem, begin, strlen(begin));
	len = strlen(pem);
	assert_true(len > strlen(begin) + strlen(end));
	assert_string_equal(pem + len - strlen(end), end);
	assert_null(strchr(pem, '\r'));
	p = pem + strlen(begin);
	body = 0;
	while (strncmp(p, "-----END", 8) != 0) {
		nl = strchr(p, '\n');
		assert_non_null(nl);
		/* Only the last body line may be short. */
		assert_int_equal(last, 64);
		last = (size_t)(nl - p);
		assert_true(last > 0 && last <= 64);
		assert_int_equal(strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789+/="), last);
		body++;
		p = nl + 1;
	}
	assert_true(body > 1);
}

/* Subject entries in order, with their string types. */
static void
test_check_subject(X509_REQ *req, const struct csr_subject *s)
{
	const X509_NAME		*name = X509_REQ_get_subject_name(req);
	const int		 nids[] = { NID_countryName, NID_stateOrProvinceName,
	    NID_localityName, NID_organizationName, NID_organizationalUnitName,
	    NID_commonName };
	const char		*vals[] = { s->country, s->state, s->locality,
	    s->organization, s->organizational_unit, s->common_name };
	const X509_NAME_ENTRY	*e;
	const ASN1_STRING	*v;
	int			 i, at = 0;

	for (i = 0; i < 6; i++) {
		if (vals[i] == NULL || *vals[i] == '\0')
			continue;
		e = X509_NAME_get_entry(name, at++);
		assert_non_null(e);
		assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)), nids[i]);
		v = X509_NAME_ENTRY_get_data(e);
		assert_int_equal(ASN1_STRING_length(v), (int)strlen(vals[i]));
		assert_memory_equal(ASN1_STRING_get0_data(v), vals[i], strlen(vals[i]));
		assert_int_equal(ASN1_STRING_type(v), nids[i] == NID_countryName ?
		    V_ASN1_PRINTABLESTRING : V_ASN1_UTF8STRING);
	}
	assert_int_equal(X509_NAME_entry_count(name), at);
}

/* The extension request carries exactly the SANs, as dNSNames, in order. */
static void
test_check_sans(X509_REQ *req, const struct csr_subject *s)
{
	STACK_OF(X509_EXTENSION)	*exts;
	GENERAL_NAMES			*gens;
	const GENERAL_NAME		*gn;
	const ASN1_IA5STRING		*ia5;
	int				 i, crit = -1;

	exts = X509_REQ_get_extensions(req);
	assert_non_null(exts);
	assert_int_equal(sk_X509_EXTENSION_num(exts), 1);
	gens = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);
	assert_non_null(gens);
	assert_int_equal(crit, 0);
	assert_int_equal(sk_GENERAL_NAME_num(gens), (int)s->nsans);
	for (i = 0; i < (int)s->nsans; i++) {
		gn = sk_GENERAL_NAME_value(gens, i);
		assert_int_equal(gn->type, GEN_DNS);
		ia5 = gn->d.dNSName;
		assert_int_equal(ASN1_STRING_length(ia5), (int)strlen(s->sans[i]));
		assert_memory_equal(ASN1_STRING_get0_data(ia5), s->sans[i],
		    strlen(s->sans[i]));
	}
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
}

/* Build with the callback, then check everything a CA would look at. */
static void
test_one(EVP_PKEY *key, const struct csr_subject *s, int signid)
{
	EVP_PKEY	*pub = test_public(key), *rpub;
	X509_REQ	*req;
	char		*pem = NULL, *cause = NULL;
	int		 r;

	r = csr_make(s, pub, test_sign_soft, key, &pem, &cause);
	if (r != 0)
		fail_msg("csr_make: %d %s", r, cause ? cause : "");
	assert_null(cause);
	assert_non_null(pem);
	test_check_pem(pem);

	req = test_parse(pem);
	assert_int_equal(X509_REQ_get_version(req), 0);
	assert_int_equal(X509_REQ_get_signature_nid(req), signid);
	rpub = X509_REQ_get0_pubkey(req);
	assert_non_null(rpub);
	assert_int_equal(EVP_PKEY_eq(rpub, pub), 1);
	assert_int_equal(X509_REQ_verify(req, pub), 1);
	test_check_subject(req, s);
	test_check_sans(req, s);

	X509_REQ_free(req);
	free(pem);
	EVP_PKEY_free(pub);
}

static void
test_csr_rsa(void **state)
{
	struct test_keys	*k = *state;

	test_one(k->rsa, &test_subject, NID_sha256WithRSAEncryption);
}

static void
test_csr_ec(void **state)
{
	struct test_keys	*k = *state;

	test_one(k->ec, &test_subject, NID_ecdsa_with_SHA256);
	test_one(k->ec384, &test_subject, NID_ecdsa_with_SHA256);
}

/* The RSA signature algorithm carries NULL parameters, ECDSA none (RFC 4055, 5758). */
static void
test_csr_sigalg_params(void **state)
{
	struct test_keys	*k = *state;
	EVP_PKEY		*pub;
	X509_REQ		*req;
	const X509_ALGOR	*alg;
	const void		*pval;
	int			 ptype;
	char			*pem = NULL, *cause = NULL;

	pub = test_public(k->rsa);
	assert_int_equal(csr_make(&test_subject, pub, test_sign_soft, k->rsa, &pem,
	    &cause), 0);
	req = test_parse(pem);
	X509_REQ_get0_signature(req, NULL, &alg);
	X509_ALGOR_get0(NULL, &ptype, &pval, alg);
	assert_int_equal(ptype, V_ASN1_NULL);
	X509_REQ_free(req);
	free(pem);
	EVP_PKEY_free(pub);

	pub = test_public(k->ec);
	assert_int_equal(csr_make(&test_subject, pub, test_sign_soft, k->ec, &pem,
	    &cause), 0);
	req = test_parse(pem);
	X509_REQ_get0_signature(req, NULL, &alg);
	X509_ALGOR_get0(NULL, &ptype, &pval, alg);
	assert_int_equal(ptype, V_ASN1_UNDEF);
	X509_REQ_free(req);
	free(pem);
	EVP_PKEY_free(pub);
}

static void
test_csr_no_ou(void **state)
{
	struct test_keys	*k = *state;
	struct csr_subject	 s = test_subject;

	s.organizational_unit = "";
	test_one(k->ec, &s, NID_ecdsa_with_SHA256);
	s.organizational_unit = NULL;
	test_one(k->rsa, &s, NID_sha256WithRSAEncryption);
}

/* Commas and "DNS:" in a SAN are data, never syntax; non-ASCII subject text is UTF-8. */
static void
test_csr_no_injection(void **state)
{
	struct test_keys	*k = *state;
	static const char *const sans[] = { "a.acme-corp.co.uk,DNS:evil.example",
	    "b.acme-corp.co.uk" };
	struct csr_subject	 s = test_subject;

	s.sans = sans;
	s.nsans = 2;
	s.organization = "Acme, Inc./CN=evil";
	s.locality = "K\xc3\xb8" "benhavn";
	test_one(k->ec, &s, NID_ecdsa_with_SHA256);
}

static void
test_csr_one_san(void **state)
{
	struct test_keys	*k = *state;
	struct csr_subject	 s = test_subject;

	s.nsans = 1;
	test_one(k->ec, &s, NID_ecdsa_with_SHA256);
}

/* The signer's error comes back unchanged, with a cause and no PEM. */
static void
test_csr_sign_error(void **state)
{
	struct test_keys	*k = *state;
	EVP_PKEY		*pub = test_public(k->ec);
	char			*pem = NULL, *cause = NULL;

	assert_int_equal(csr_make(&test_subject, pub, test_sign_fail, NULL, &pem, &cause),
	    KC_ERR_UNAVAILABLE);
	assert_null(pem);
	assert_non_null(cause);
	free(cause);
	EVP_PKEY_free(pub);
}

/* A signature by the wrong key never leaves: KC_ERR_CRYPTO. */
static void
test_csr_wrong_key(void **state)
{
	struct test_keys	*k = *state;
	EVP_PKEY		*pub = test_public(k->ec);
	char			*pem = NULL, *cause = NULL;

	assert_int_equal(csr_make(&test_subject, pub, test_sign_soft, k->other, &pem,
	    &cause), KC_ERR_CRYPTO);
	assert_null(pem);
	assert_non_null(cause);
	free(cause);
	/* The error queue was drained at the boundary. */
	assert_int_equal(ERR_peek_error(), 0);

	/* An RSA key signing for an EC public key: also refused. */
	assert_int_equal(csr_make(&test_subject, pub, test_sign_soft, k->rsa, &pem,
	    &cause), KC_ERR_CRYPTO);
	assert_null(pem);
	free(cause);
	EVP_PKEY_free(pub);
}

static void
test_csr_with_key(void **state)
{
	struct test_keys	*k = *state;
	EVP_PKEY		*pub, *keys[2] = { k->rsa, k->ec };
	X509_REQ		*req;
	char			*pem = NULL, *cause = NULL;
	int			 i, nids[2] = { NID_sha256WithRSAEncryption,
	    NID_ecdsa_with_SHA256 };

	for (i = 0; i < 2; i++) {
		pub = test_public(keys[i]);
		assert_int_equal(csr_make_with_key(&test_subject, pub, keys[i], &pem,
		    &cause), 0);
		test_check_pem(pem);
		req = test_parse(pem);
		assert_int_equal(X509_REQ_get_signature_nid(req), nids[i]);
		assert_int_equal(X509_REQ_verify(req, pub), 1);
		test_check_subject(req, &test_subject);
		test_check_sans(req, &test_subject);
		X509_REQ_free(req);
		free(pem);
		pem = NULL;
		EVP_PKEY_free(pub);
	}

	pub = test_public(k->ec);
	assert_int_equal(csr_make_with_key(&test_subject, pub, k->other, &pem, &cause),
	    KC_ERR_CRYPTO);
	assert_null(pem);
	free(cause);
	EVP_PKEY_free(pub);
}

static void
test_csr_invalid(void **state)
{
	struct test_keys	*k = *state;
	struct csr_subject	 s = test_subject;
	EVP_PKEY		*pub = test_public(k->ec);
	char			*pem = NULL, *cause = NULL;

	s.common_name = NULL;
	assert_int_equal(csr_make(&s, pub, test_sign_soft, k->ec, &pem, &cause),
	    KC_ERR_INVALID);
	assert_null(pem);
	free(cause);
	cause = NULL;
	assert_int_equal(csr_make(&test_subject, pub, NULL, NULL, &pem, &cause),
	    KC_ERR_INVALID);
	free(cause);
	EVP_PKEY_free(pub);
}

static void
test_csr_pubkey_der(void **state)
{
	struct test_keys	*k = *state;
	EVP_PKEY		*pub, *back, *keys[2] = { k->rsa, k->ec };
	const unsigned char	*p;
	uint8_t			*der;
	size_t			 len;
	int			 i;

	for (i = 0; i < 2; i++) {
		pub = test_public(keys[i]);
		assert_int_equal(csr_pubkey_der(pub, &der, &len), 0);
		assert_true(len > 0);
		p = der;
		back = d2i_PUBKEY(NULL, &p, (long)len);
		assert_non_null(back);
		assert_ptr_equal(p, der + len);
		assert_int_equal(EVP_PKEY_eq(back, pub), 1);
		EVP_PKEY_free(back);
		free(der);
		EVP_PKEY_free(pub);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csr_rsa),
		cmocka_unit_test(test_csr_ec),
		cmocka_unit_test(test_csr_sigalg_params),
		cmocka_unit_test(test_csr_no_ou),
		cmocka_unit_test(test_csr_no_injection),
		cmocka_unit_test(test_csr_one_san),
		cmocka_unit_test(test_csr_sign_error),
		cmocka_unit_test(test_csr_wrong_key),
		cmocka_unit_test(test_csr_with_key),
		cmocka_unit_test(test_csr_invalid),
		cmocka_unit_test(test_csr_pubkey_der),
	};

	return cmocka_run_group_tests(tests, test_setup, test_teardown);
}
