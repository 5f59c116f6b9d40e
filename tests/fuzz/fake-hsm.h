/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * fake-hsm.h: the fuzz targets' controls of fake-hsm.c (which implements daemon/hsm.h).
 */
#ifndef KC_FAKE_HSM_H
#define KC_FAKE_HSM_H

#define FAKE_HSM_DOWN		0x01	/* the token is down: KC_ERR_UNAVAILABLE */
#define FAKE_HSM_KEYGEN		0x02	/* hsm_keygen() fails */
#define FAKE_HSM_SIGN		0x04	/* hsm_sign() and hsm_engine_key() fail */
#define FAKE_HSM_DESTROY	0x08	/* hsm_key_destroy() fails */
#define FAKE_HSM_ENGINE		0x10	/* report the engine signer */
#define FAKE_HSM_KEYGEN_LOST	0x20	/* hsm_keygen() makes the pair, then fails */
#define FAKE_HSM_MASK		0x3f

/** Make the next calls fail as faults says (FAKE_HSM_*); 0 for none. */
void	fake_hsm_set_faults(unsigned int faults);
/** Forget every key pair and every fault. */
void	fake_hsm_reset(void);

#endif /* KC_FAKE_HSM_H */
