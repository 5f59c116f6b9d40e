/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * signer.c: the choice of CSR signer, behind signer_csr(). Each signer is a row of one
 * table; csr.c owns X509_REQ and hsm.c owns PKCS#11, this file only joins them.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "csr.h"
#include "hsm.h"
#include "kc-err.h"
#include "log.h"
#include "signer.h"

/* The direct signer's callback for csr_make(): C_Sign on the session that made the key. */
struct signer_direct_ctx {
	struct hsm_session	*s;
	const struct hsm_key	*key;
};

static int
signer_direct_sign(void *arg, const uint8_t *tbs, size_t tbslen, uint8_t **sig,
    size_t *siglen)
{
	struct signer_direct_ctx	*ctx = arg;

	return hsm_sign(ctx->s, ctx->key, tbs, tbslen, sig, siglen);
}

static int
signer_direct(struct hsm_session *s, const struct hsm_key *key,
    const struct csr_subject *subject, char **pem, char **cause)
{
	struct signer_direct_ctx	 ctx = { s, key };

	return csr_make(subject, hsm_key_public(key), signer_direct_sign, &ctx, pem, cause);
}

static int
signer_engine(struct hsm_session *s, const struct hsm_key *key,
    const struct csr_subject *subject, char **pem, char **cause)
{
	EVP_PKEY	*pkey = NULL;
	int		 r;

	if ((r = hsm_engine_key(s, key, &pkey)) == 0)
		r = csr_make_with_key(subject, hsm_key_public(key), pkey, pem, cause);
	/*
	 * libp11 turns a PKCS#11 failure into an OpenSSL error: whether the token is still
	 * there decides between an outage and a refusal (both answered 1503, retry later).
	 */
	if (r == KC_ERR_CRYPTO || r == KC_ERR_HSM)
		r = hsm_session_probe(s) == KC_ERR_UNAVAILABLE ? KC_ERR_UNAVAILABLE :
		    KC_ERR_HSM;
	EVP_PKEY_free(pkey);
	return r;
}

static const struct signer {
	enum hsm_signer	 which;
	int		(*make)(struct hsm_session *, const struct hsm_key *,
			    const struct csr_subject *, char **, char **);
} signers[] = {
	{ HSM_SIGNER_DIRECT, signer_direct },
	{ HSM_SIGNER_ENGINE, signer_engine },
};

int
signer_csr(const struct hsm *h, struct hsm_session *s, const struct hsm_key *key,
    const struct csr_subject *subject, char **pem)
{
	enum hsm_signer	 which = hsm_get_signer(h);
	char		*cause = NULL;
	size_t		 i;
	int		 r = KC_ERR_INTERNAL;

	*pem = NULL;
	for (i = 0; i < sizeof(signers) / sizeof(signers[0]); i++)
		if (signers[i].which == which) {
			r = signers[i].make(s, key, subject, pem, &cause);
			break;
		}
	if (r != 0)
		log_warnx("CSR signing failed: %s", cause != NULL ? cause : kc_strerror(r));
	free(cause);
	return r;
}
