/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * signer.h: how a CSR gets its signature. The daemon has two signers (hsm_config.signer):
 * direct (C_Sign on the worker's session over the to-be-signed bytes that csr.c builds) and
 * engine (OpenSSL signs through libp11's engine with the key loaded by its URI). This is
 * the one place that chooses between them.
 */
#ifndef KC_SIGNER_H
#define KC_SIGNER_H

struct csr_subject;
struct hsm;
struct hsm_key;
struct hsm_session;

/**
 * A PEM CSR for subject, signed with key (made on session s of h) by h's signer and
 * verified against the key's public half before it is returned.
 * @param pem	out: caller frees with free()
 * @retval 0, a KC_ERR_* of hsm.c (the token failed) or of csr.c (building failed)
 */
int	signer_csr(const struct hsm *h, struct hsm_session *s, const struct hsm_key *key,
	    const struct csr_subject *subject, char **pem);

#endif /* KC_SIGNER_H */
