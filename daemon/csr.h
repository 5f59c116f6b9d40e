/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * csr.h: building PKCS#10 requests. csr.c is the only code that touches X509_REQ and
 * X509_NAME; the signature comes from a callback (hsm_sign) so no key is ever in memory here.
 */
#ifndef KC_CSR_H
#define KC_CSR_H

#include <stddef.h>
#include <stdint.h>

struct evp_pkey_st;

struct csr_subject {
	const char		*country;
	const char		*state;
	const char		*locality;
	const char		*organization;
	const char		*organizational_unit;	/* NULL or "" when absent */
	const char		*common_name;
	const char *const	*sans;
	size_t			 nsans;
};

/*
 * Produce a signature over tbs with SHA-256 (RSA PKCS#1 v1.5 or DER ECDSA) using the key
 * whose public half was given to csr_make(). *sig is allocated with malloc().
 */
typedef int (*csr_sign_fn)(void *arg, const uint8_t *tbs, size_t tbslen, uint8_t **sig,
    size_t *siglen);

/**
 * Build a request: subject C, ST, L, O, [OU], CN; a subjectAltName extension request with
 * the SANs as DNS names; signature algorithm sha256WithRSAEncryption or ecdsa-with-SHA256.
 * The signed request is verified against pub before it is returned.
 * @param pub public key of the pair (borrowed)
 * @param pem PEM text, 64-character lines, '\n' ends; caller frees with free()
 * @param cause on failure, a message (caller frees), may be NULL
 * @retval 0, KC_ERR_NOMEM, KC_ERR_CRYPTO, or what sign returned
 */
int	csr_make(const struct csr_subject *subj, struct evp_pkey_st *pub, csr_sign_fn sign,
	    void *arg, char **pem, char **cause);

/**
 * As csr_make(), but signed by OpenSSL with X509_REQ_sign() and signkey (an engine key).
 */
int	csr_make_with_key(const struct csr_subject *subj, struct evp_pkey_st *pub,
	    struct evp_pkey_st *signkey, char **pem, char **cause);

/**
 * DER SubjectPublicKeyInfo of a public key.
 * @param der caller frees with free()
 */
int	csr_pubkey_der(struct evp_pkey_st *pub, uint8_t **der, size_t *len);

#endif /* KC_CSR_H */
