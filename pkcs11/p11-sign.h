/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * p11-sign.h: keycustody-pkcs11.so's mechanisms: which mechanism fits which key, their
 * parameters, the hashing of CKM_ECDSA_SHA256 and CKM_SHA256_RSA_PKCS, and the checks of
 * the data before it goes to the daemon as a SignRequest. Pure: no I/O, no locks.
 */
#ifndef P11_SIGN_H
#define P11_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "keycustody.pb-c.h"

/* Raw data of a single-part mechanism: the longest is a SHA-512 DigestInfo (83 bytes). */
#define P11_SIGN_MAX_INPUT	512

struct p11_mech_info {
	CK_MECHANISM_TYPE	 mech;
	CK_KEY_TYPE		 key_type;
	CK_ULONG		 min_bits, max_bits;
	CK_FLAGS		 flags;
};

/** The mechanisms the module offers, and their count. */
extern const struct p11_mech_info p11_mechs[];
extern const size_t p11_nmechs;

/** The entry of mech, or NULL. */
const struct p11_mech_info *p11_mech_find(CK_MECHANISM_TYPE mech);

/* A signing operation, from C_SignInit to the end of C_Sign or C_SignFinal. */
struct p11_sign {
	CK_MECHANISM_TYPE		 mech;
	Keycustody__SignMechanism	 wire_mech;
	Keycustody__SignHash		 pss_hash, pss_mgf_hash;
	CK_ULONG			 pss_salt_len;
	size_t				 pss_hlen;
	CK_ULONG			 sig_len;
	void				*md;		/* EVP_MD_CTX: hashed here */
	uint8_t				 buf[P11_SIGN_MAX_INPUT];
	size_t				 buflen;
};

/**
 * Begin an operation with mechanism m on a key of type key_type whose signatures are
 * sig_len bytes.
 * @retval CKR_OK (end it with p11_sign_uninit()), CKR_MECHANISM_INVALID,
 *	CKR_MECHANISM_PARAM_INVALID, CKR_KEY_TYPE_INCONSISTENT, CKR_HOST_MEMORY
 */
CK_RV	 p11_sign_init(struct p11_sign *s, const CK_MECHANISM *m, CK_KEY_TYPE key_type,
	    CK_ULONG sig_len);

/** More data. @retval CKR_OK, CKR_DATA_LEN_RANGE (too long for a raw mechanism), ... */
CK_RV	 p11_sign_update(struct p11_sign *s, const uint8_t *data, size_t len);

/**
 * What the daemon is to sign, from the data so far: the digest (ECDSA, PSS) or the
 * DigestInfo (RSA PKCS #1 v1.5), checked.
 * @param out at least P11_SIGN_MAX_INPUT bytes
 * @retval CKR_OK, CKR_DATA_LEN_RANGE, CKR_DATA_INVALID, CKR_GENERAL_ERROR
 */
CK_RV	 p11_sign_input(struct p11_sign *s, uint8_t *out, size_t *outlen);

/** End the operation. */
void	 p11_sign_uninit(struct p11_sign *s);

#endif /* P11_SIGN_H */
