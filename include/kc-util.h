/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * kc-util.h: small helpers that the daemon and the clients share, in one place.
 */
#ifndef KC_UTIL_H
#define KC_UTIL_H

#include <stddef.h>
#include <stdint.h>

#ifndef nitems
#define nitems(a)	(sizeof(a) / sizeof((a)[0]))
#endif

/* A UUID in its text form, without the terminating NUL. */
#define KC_UUID_LEN	36

/**
 * Lowercase hex of n bytes.
 * @param out	2n + 1 bytes: the hex digits and a NUL
 */
void	kc_hex(const uint8_t *b, size_t n, char *out);

/*
 * The RFC 7512 URI of a private key by token label and CKA_ID:
 * "pkcs11:token=<label>;id=<id>;type=private", everything but RFC 3986's unreserved
 * characters percent-encoded (the id always). kc_p11_key_uri_size() counts the NUL.
 */
size_t	kc_p11_key_uri_size(const char *label, size_t idlen);
void	kc_p11_key_uri(const char *label, const uint8_t *id, size_t idlen, char *buf);

/**
 * A random (version 4) UUID, lowercase.
 * @retval 0, or KC_ERR_CRYPTO when the random generator fails
 */
int	kc_uuid(char out[KC_UUID_LEN + 1]);

/**
 * Say why something failed through a char **cause (STYLE: the callee allocates, the caller
 * frees): nothing when cause is NULL, and the first message stays, being the most precise.
 * An allocation failure leaves *cause NULL.
 */
void	kc_cause(char **cause, const char *fmt, ...)
	    __attribute__((__format__(__printf__, 2, 3)));

/** Now, in microseconds since the epoch (CLOCK_REALTIME). */
int64_t	kc_now_us(void);

#endif /* KC_UTIL_H */
