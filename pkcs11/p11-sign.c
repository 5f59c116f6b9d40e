/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * p11-sign.c: keycustody-pkcs11.so's mechanisms, their parameters and the data checks that
 * come before a SignRequest.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include <p11-kit/pkcs11.h>

#include "p11-sign.h"

#define P11_EC_FLAGS	(CKF_SIGN | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS)

/* The daemon's key types (API.md): rsa2048 to rsa4096, P-256 and P-384. */
const struct p11_mech_info p11_mechs[] = {
	{ CKM_ECDSA,		CKK_EC,		256, 384,	P11_EC_FLAGS },
	{ CKM_ECDSA_SHA256,	CKK_EC,		256, 384,	P11_EC_FLAGS },
	{ CKM_RSA_PKCS,		CKK_RSA,	2048, 4096,	CKF_SIGN },
	{ CKM_SHA256_RSA_PKCS,	CKK_RSA,	2048, 4096,	CKF_SIGN },
	{ CKM_RSA_PKCS_PSS,	CKK_RSA,	2048, 4096,	CKF_SIGN },
};
const size_t p11_nmechs = sizeof(p11_mechs) / sizeof(p11_mechs[0]);

/* A hash as PKCS#11, the protocol and a DigestInfo (RFC 8017 section 9.2 note 1) name it. */
struct p11_hash {
	CK_MECHANISM_TYPE	 mech;
	CK_RSA_PKCS_MGF_TYPE	 mgf;
	Keycustody__SignHash	 wire;
	size_t			 len;
	const uint8_t		*prefix;	/* DigestInfo up to the digest */
	size_t			 prefix_len;
};

static const uint8_t p11_di_sha1[] = {
	0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14
};
#define P11_DI_SHA2(name, total, last, len)						\
	static const uint8_t name[] = {							\
		0x30, total, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65,	\
		0x03, 0x04, 0x02, last, 0x05, 0x00, 0x04, len				\
	}
P11_DI_SHA2(p11_di_sha224, 0x2d, 0x04, 0x1c);
P11_DI_SHA2(p11_di_sha256, 0x31, 0x01, 0x20);
P11_DI_SHA2(p11_di_sha384, 0x41, 0x02, 0x30);
P11_DI_SHA2(p11_di_sha512, 0x51, 0x03, 0x40);

static const struct p11_hash p11_hashes[] = {
	{ CKM_SHA_1, CKG_MGF1_SHA1, KEYCUSTODY__SIGN_HASH__SIGN_SHA1, 20,
	    p11_di_sha1, sizeof(p11_di_sha1) },
	{ CKM_SHA224, CKG_MGF1_SHA224, KEYCUSTODY__SIGN_HASH__SIGN_SHA224, 28,
	    p11_di_sha224, sizeof(p11_di_sha224) },
	{ CKM_SHA256, CKG_MGF1_SHA256, KEYCUSTODY__SIGN_HASH__SIGN_SHA256, 32,
	    p11_di_sha256, sizeof(p11_di_sha256) },
	{ CKM_SHA384, CKG_MGF1_SHA384, KEYCUSTODY__SIGN_HASH__SIGN_SHA384, 48,
	    p11_di_sha384, sizeof(p11_di_sha384) },
	{ CKM_SHA512, CKG_MGF1_SHA512, KEYCUSTODY__SIGN_HASH__SIGN_SHA512, 64,
	    p11_di_sha512, sizeof(p11_di_sha512) },
};
#define P11_NHASHES	(sizeof(p11_hashes) / sizeof(p11_hashes[0]))
#define P11_SHA256	(&p11_hashes[2])

const struct p11_mech_info *
p11_mech_find(CK_MECHANISM_TYPE mech)
{
	size_t	 i;

	for (i = 0; i < p11_nmechs; i++)
		if (p11_mechs[i].mech == mech)
			return &p11_mechs[i];
	return NULL;
}

/* The hash of PKCS#11 mechanism mech, or of MGF1 variant mgf (the other one 0). */
static const struct p11_hash *
p11_hash_find(CK_MECHANISM_TYPE mech, CK_RSA_PKCS_MGF_TYPE mgf)
{
	size_t	 i;

	for (i = 0; i < P11_NHASHES; i++)
		if ((mech != 0 && p11_hashes[i].mech == mech) ||
		    (mgf != 0 && p11_hashes[i].mgf == mgf))
			return &p11_hashes[i];
	return NULL;
}

/* The PSS parameters: known hashes, and a salt that fits the modulus (RFC 8017 9.1.1). */
static CK_RV
p11_sign_pss_params(struct p11_sign *s, const CK_MECHANISM *m)
{
	const CK_RSA_PKCS_PSS_PARAMS	*pp = m->pParameter;
	const struct p11_hash		*h, *mgf;

	if (pp == NULL || m->ulParameterLen != sizeof(*pp) ||
	    (h = p11_hash_find(pp->hashAlg, 0)) == NULL ||
	    (mgf = p11_hash_find(0, pp->mgf)) == NULL ||
	    s->sig_len < h->len + 2 || pp->sLen > s->sig_len - h->len - 2)
		return CKR_MECHANISM_PARAM_INVALID;
	s->pss_hash = h->wire;
	s->pss_mgf_hash = mgf->wire;
	s->pss_salt_len = pp->sLen;
	s->pss_hlen = h->len;
	return CKR_OK;
}

CK_RV
p11_sign_init(struct p11_sign *s, const CK_MECHANISM *m, CK_KEY_TYPE key_type,
    CK_ULONG sig_len)
{
	const struct p11_mech_info	*mi;
	CK_RV				 rv;

	memset(s, 0, sizeof(*s));
	if ((mi = p11_mech_find(m->mechanism)) == NULL)
		return CKR_MECHANISM_INVALID;
	if (mi->key_type != key_type)
		return CKR_KEY_TYPE_INCONSISTENT;
	s->mech = m->mechanism;
	s->sig_len = sig_len;
	if (m->mechanism == CKM_RSA_PKCS_PSS) {
		s->wire_mech = KEYCUSTODY__SIGN_MECHANISM__SIGN_RSA_PKCS_PSS;
		return p11_sign_pss_params(s, m);
	}
	if (m->pParameter != NULL || m->ulParameterLen != 0)
		return CKR_MECHANISM_PARAM_INVALID;
	switch (m->mechanism) {
	case CKM_ECDSA:
	case CKM_ECDSA_SHA256:
		s->wire_mech = KEYCUSTODY__SIGN_MECHANISM__SIGN_ECDSA;
		break;
	default:
		s->wire_mech = KEYCUSTODY__SIGN_MECHANISM__SIGN_RSA_PKCS;
		break;
	}
	if (m->mechanism == CKM_ECDSA_SHA256 || m->mechanism == CKM_SHA256_RSA_PKCS) {
		rv = CKR_HOST_MEMORY;
		if ((s->md = EVP_MD_CTX_new()) == NULL ||
		    !EVP_DigestInit_ex(s->md, EVP_sha256(), NULL)) {
			p11_sign_uninit(s);
			return rv;
		}
	}
	return CKR_OK;
}

CK_RV
p11_sign_update(struct p11_sign *s, const uint8_t *data, size_t len)
{
	if (s->md != NULL)
		return EVP_DigestUpdate(s->md, data, len) ? CKR_OK : CKR_GENERAL_ERROR;
	if (len > sizeof(s->buf) - s->buflen)
		return CKR_DATA_LEN_RANGE;
	if (len > 0)
		memcpy(s->buf + s->buflen, data, len);
	s->buflen += len;
	return CKR_OK;
}

/* Whether data is the DigestInfo of a known hash. */
static int
p11_sign_is_digestinfo(const uint8_t *data, size_t len)
{
	const struct p11_hash	*h;
	size_t			 i;

	for (i = 0; i < P11_NHASHES; i++) {
		h = &p11_hashes[i];
		if (len == h->prefix_len + h->len &&
		    memcmp(data, h->prefix, h->prefix_len) == 0)
			return 1;
	}
	return 0;
}

CK_RV
p11_sign_input(struct p11_sign *s, uint8_t *out, size_t *outlen)
{
	unsigned int	 mdlen;
	size_t		 n = s->buflen;

	if (s->md != NULL) {
		/* SHA-256 here; the DigestInfo too for PKCS #1 v1.5. */
		n = s->mech == CKM_SHA256_RSA_PKCS ? P11_SHA256->prefix_len : 0;
		memcpy(out, P11_SHA256->prefix, n);
		if (!EVP_DigestFinal_ex(s->md, out + n, &mdlen))
			return CKR_GENERAL_ERROR;
		*outlen = n + mdlen;
		return CKR_OK;
	}
	switch (s->mech) {
	case CKM_ECDSA:
		if (n != 20 && n != 28 && n != 32 && n != 48 && n != 64)
			return CKR_DATA_LEN_RANGE;
		break;
	case CKM_RSA_PKCS:
		if (!p11_sign_is_digestinfo(s->buf, n))
			return CKR_DATA_INVALID;
		break;
	case CKM_RSA_PKCS_PSS:
		if (n != s->pss_hlen)
			return CKR_DATA_LEN_RANGE;
		break;
	default:
		return CKR_GENERAL_ERROR;
	}
	memcpy(out, s->buf, n);
	*outlen = n;
	return CKR_OK;
}

void
p11_sign_uninit(struct p11_sign *s)
{
	EVP_MD_CTX_free(s->md);
	memset(s, 0, sizeof(*s));
}
