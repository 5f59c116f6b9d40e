/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * csr.c: PKCS#10 requests: subject, SAN extension request, public key, signature (from a
 * callback or an engine key), the self-check, PEM. The only code using X509_REQ/X509_NAME.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "kc-err.h"
#include "kc-util.h"
#include "csr.h"


/*
 * An OpenSSL call failed: drain the error queue into *cause and tell an allocation failure
 * (KC_ERR_NOMEM) from any other (KC_ERR_CRYPTO).
 */
static int
csr_ossl_fail(char **cause, const char *what)
{
	unsigned long	 e;
	char		 buf[512], one[256];
	size_t		 used = 0;
	int		 nomem = 0;

	buf[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)
			nomem = 1;
		ERR_error_string_n(e, one, sizeof(one));
		if (used < sizeof(buf)) {
			snprintf(buf + used, sizeof(buf) - used, "%s%s",
			    used ? "; " : "", one);
			used = strlen(buf);
		}
	}
	kc_cause(cause, "%s: %s", what, buf[0] != '\0' ? buf :
	    "no OpenSSL error recorded");
	return nomem ? KC_ERR_NOMEM : KC_ERR_CRYPTO;
}

/* Append one subject attribute; absent (NULL or "") values are skipped. */
static int
csr_name_add(X509_NAME *name, int nid, const char *value, char **cause)
{
	if (value == NULL || *value == '\0')
		return 0;
	if (!X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8,
	    (const unsigned char *)value, -1, -1, 0))
		return csr_ossl_fail(cause, OBJ_nid2sn(nid));
	return 0;
}

/* The subjectAltName extension request: one dNSName per SAN, no config-string parsing. */
static int
csr_add_sans(X509_REQ *req, const struct csr_subject *subj, char **cause)
{
	GENERAL_NAMES			*gens = NULL;
	GENERAL_NAME			*gn = NULL;
	ASN1_IA5STRING			*ia5 = NULL;
	X509_EXTENSION			*ext = NULL;
	STACK_OF(X509_EXTENSION)	*exts = NULL;
	size_t				 i;
	int				 r;

	if (subj->nsans == 0)
		return 0;
	if ((gens = sk_GENERAL_NAME_new_null()) == NULL)
		goto fail;
	for (i = 0; i < subj->nsans; i++) {
		if (subj->sans[i] == NULL) {
			r = KC_ERR_INVALID;
			kc_cause(cause, "SAN %zu is missing", i);
			goto out;
		}
		if ((gn = GENERAL_NAME_new()) == NULL ||
		    (ia5 = ASN1_IA5STRING_new()) == NULL ||
		    !ASN1_STRING_set(ia5, subj->sans[i], (int)strlen(subj->sans[i])))
			goto fail;
		GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
		ia5 = NULL;
		if (!sk_GENERAL_NAME_push(gens, gn))
			goto fail;
		gn = NULL;
	}
	if ((ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens)) == NULL ||
	    (exts = sk_X509_EXTENSION_new_null()) == NULL ||
	    !sk_X509_EXTENSION_push(exts, ext))
		goto fail;
	ext = NULL;
	if (!X509_REQ_add_extensions(req, exts))
		goto fail;
	r = 0;
	goto out;
 fail:
	r = csr_ossl_fail(cause, "subjectAltName");
 out:
	ASN1_IA5STRING_free(ia5);
	GENERAL_NAME_free(gn);
	GENERAL_NAMES_free(gens);
	X509_EXTENSION_free(ext);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return r;
}

/* Everything but the signature: version, subject, extension request, public key. */
static int
csr_build(const struct csr_subject *subj, EVP_PKEY *pub, X509_REQ **reqp, char **cause)
{
	X509_REQ	*req = NULL;
	X509_NAME	*name;
	int		 r;

	*reqp = NULL;
	if (subj == NULL || pub == NULL || subj->country == NULL ||
	    subj->organization == NULL || subj->common_name == NULL ||
	    (subj->nsans > 0 && subj->sans == NULL)) {
		kc_cause(cause, "incomplete subject");
		return KC_ERR_INVALID;
	}
	if ((req = X509_REQ_new()) == NULL) {
		r = csr_ossl_fail(cause, "X509_REQ_new");
		goto out;
	}
	/* Version 1, encoded as 0. */
	if (!X509_REQ_set_version(req, 0)) {
		r = csr_ossl_fail(cause, "X509_REQ_set_version");
		goto out;
	}
	name = X509_REQ_get_subject_name(req);
	if ((r = csr_name_add(name, NID_countryName, subj->country, cause)) != 0 ||
	    (r = csr_name_add(name, NID_stateOrProvinceName, subj->state, cause)) != 0 ||
	    (r = csr_name_add(name, NID_localityName, subj->locality, cause)) != 0 ||
	    (r = csr_name_add(name, NID_organizationName, subj->organization,
	    cause)) != 0 ||
	    (r = csr_name_add(name, NID_organizationalUnitName,
	    subj->organizational_unit, cause)) != 0 ||
	    (r = csr_name_add(name, NID_commonName, subj->common_name, cause)) != 0 ||
	    (r = csr_add_sans(req, subj, cause)) != 0)
		goto out;
	if (!X509_REQ_set_pubkey(req, pub)) {
		r = csr_ossl_fail(cause, "X509_REQ_set_pubkey");
		goto out;
	}
	*reqp = req;
	req = NULL;
	r = 0;
 out:
	X509_REQ_free(req);
	return r;
}

/* Check the signature against pub, then write PEM into a malloc'ed string. */
static int
csr_finish(X509_REQ *req, EVP_PKEY *pub, char **pem, char **cause)
{
	BIO	*bio = NULL;
	char	*data, *p = NULL;
	long	 len;
	int	 r;

	ERR_clear_error();
	if (X509_REQ_verify(req, pub) != 1) {
		r = csr_ossl_fail(cause, "the signed request does not verify");
		if (r != KC_ERR_NOMEM)
			r = KC_ERR_CRYPTO;
		goto out;
	}
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_X509_REQ(bio, req) ||
	    (len = BIO_get_mem_data(bio, &data)) <= 0) {
		r = csr_ossl_fail(cause, "PEM_write_bio_X509_REQ");
		goto out;
	}
	if ((p = malloc((size_t)len + 1)) == NULL) {
		r = KC_ERR_NOMEM;
		goto out;
	}
	memcpy(p, data, (size_t)len);
	p[len] = '\0';
	*pem = p;
	r = 0;
 out:
	BIO_free(bio);
	return r;
}

int
csr_make(const struct csr_subject *subj, struct evp_pkey_st *pub, csr_sign_fn sign,
    void *arg, char **pem, char **cause)
{
	X509_REQ	*req = NULL;
	X509_ALGOR	*alg = NULL;
	ASN1_BIT_STRING	*bits = NULL;
	unsigned char	*tbs = NULL;
	uint8_t		*sig = NULL;
	size_t		 siglen = 0;
	int		 tbslen, nid, ptype, r;

	if (cause != NULL)
		*cause = NULL;
	if (pem == NULL || sign == NULL) {
		kc_cause(cause, "csr_make: missing argument");
		return KC_ERR_INVALID;
	}
	*pem = NULL;
	ERR_clear_error();
	if ((r = csr_build(subj, pub, &req, cause)) != 0)
		goto out;

	if (EVP_PKEY_is_a(pub, "RSA")) {
		nid = NID_sha256WithRSAEncryption;
		ptype = V_ASN1_NULL;		/* RFC 4055: parameters NULL */
	} else if (EVP_PKEY_is_a(pub, "EC")) {
		nid = NID_ecdsa_with_SHA256;
		ptype = V_ASN1_UNDEF;		/* RFC 5758: parameters absent */
	} else {
		r = KC_ERR_INVALID;
		kc_cause(cause, "unsupported key type %s", EVP_PKEY_get0_type_name(pub));
		goto out;
	}
	if ((alg = X509_ALGOR_new()) == NULL ||
	    !X509_ALGOR_set0(alg, OBJ_nid2obj(nid), ptype, NULL)) {
		r = csr_ossl_fail(cause, "signature algorithm");
		goto out;
	}

	/* The CertificationRequestInfo, freshly encoded, is what gets signed. */
	if ((tbslen = i2d_re_X509_REQ_tbs(req, &tbs)) <= 0) {
		r = csr_ossl_fail(cause, "i2d_re_X509_REQ_tbs");
		goto out;
	}
	if ((r = sign(arg, tbs, (size_t)tbslen, &sig, &siglen)) != 0) {
		kc_cause(cause, "signing the request failed (error %d)", r);
		goto out;
	}
	if (sig == NULL || siglen == 0 || siglen > INT32_MAX) {
		r = KC_ERR_CRYPTO;
		kc_cause(cause, "the signer returned no signature");
		goto out;
	}

	if ((bits = ASN1_BIT_STRING_new()) == NULL ||
	    !ASN1_BIT_STRING_set(bits, sig, (int)siglen)) {
		r = csr_ossl_fail(cause, "signature");
		goto out;
	}
	/* Whole bytes: 0 unused bits, not guessed from trailing zeros. */
	bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
	bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	X509_REQ_set0_signature(req, bits);
	bits = NULL;
	if (!X509_REQ_set1_signature_algo(req, alg)) {
		r = csr_ossl_fail(cause, "X509_REQ_set1_signature_algo");
		goto out;
	}

	r = csr_finish(req, pub, pem, cause);
 out:
	ERR_clear_error();
	ASN1_BIT_STRING_free(bits);
	X509_ALGOR_free(alg);
	OPENSSL_free(tbs);
	free(sig);
	X509_REQ_free(req);
	return r;
}

int
csr_make_with_key(const struct csr_subject *subj, struct evp_pkey_st *pub,
    struct evp_pkey_st *signkey, char **pem, char **cause)
{
	X509_REQ	*req = NULL;
	int		 r;

	if (cause != NULL)
		*cause = NULL;
	if (pem == NULL || signkey == NULL) {
		kc_cause(cause, "csr_make_with_key: missing argument");
		return KC_ERR_INVALID;
	}
	*pem = NULL;
	ERR_clear_error();
	if ((r = csr_build(subj, pub, &req, cause)) != 0)
		goto out;
	if (X509_REQ_sign(req, signkey, EVP_sha256()) <= 0) {
		r = csr_ossl_fail(cause, "X509_REQ_sign");
		goto out;
	}
	r = csr_finish(req, pub, pem, cause);
 out:
	ERR_clear_error();
	X509_REQ_free(req);
	return r;
}

int
csr_pubkey_der(struct evp_pkey_st *pub, uint8_t **der, size_t *len)
{
	unsigned char	*p;
	int		 n;

	if (pub == NULL || der == NULL || len == NULL)
		return KC_ERR_INVALID;
	*der = NULL;
	*len = 0;
	if ((n = i2d_PUBKEY(pub, NULL)) <= 0) {
		ERR_clear_error();
		return KC_ERR_CRYPTO;
	}
	if ((*der = malloc((size_t)n)) == NULL)
		return KC_ERR_NOMEM;
	p = *der;
	if (i2d_PUBKEY(pub, &p) != n) {
		ERR_clear_error();
		free(*der);
		*der = NULL;
		return KC_ERR_CRYPTO;
	}
	*len = (size_t)n;
	return 0;
}
