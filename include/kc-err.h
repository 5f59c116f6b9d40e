/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * kc-err.h: the project's error codes, their text, and the one table that maps them to the
 * protocol's status classes and to HTTP statuses.
 */
#ifndef KC_ERR_H
#define KC_ERR_H

#include <stddef.h>

/* Internal result codes: functions return 0 or one of these (negative). */
#define KC_ERR_SUCCESS		 0
#define KC_ERR_INTERNAL		-1	/* unexpected failure */
#define KC_ERR_NOMEM		-2	/* out of memory */
#define KC_ERR_INVALID		-3	/* invalid argument (caller's fault) */
#define KC_ERR_NOT_FOUND	-4	/* no such object (in this zone) */
#define KC_ERR_CONFLICT		-5	/* object exists or is in use */
#define KC_ERR_DENIED		-6	/* permission denied */
#define KC_ERR_UNAVAILABLE	-7	/* try again later: queue full, token down */
#define KC_ERR_MSG_TOO_BIG	-8	/* frame over KC_MAX_MSG */
#define KC_ERR_BAD_MESSAGE	-9	/* malformed frame or protobuf */
#define KC_ERR_BAD_VERSION	-10	/* protocol version mismatch */
#define KC_ERR_IO		-11	/* read/write/connect failure (see errno) */
#define KC_ERR_CLOSED		-12	/* peer closed the connection */
#define KC_ERR_HSM		-13	/* PKCS#11 failure */
#define KC_ERR_PIN_INCORRECT	-14	/* CKR_PIN_INCORRECT: never retried */
#define KC_ERR_PIN_LOCKED	-15	/* CKR_PIN_LOCKED: never retried */
#define KC_ERR_TOKEN_NOT_PRESENT -16	/* token missing or removed */
#define KC_ERR_CRYPTO		-17	/* OpenSSL failure */
#define KC_ERR_STORE		-18	/* SQLite failure */
#define KC_ERR_TIMEOUT		-19	/* deadline passed */
#define KC_ERR_KEY_UNSAFE	-20	/* key attributes would let it leave the token */
#define KC_ERR_RATE_LIMITED	-21	/* too many at once for this zone or credential */
#define KC_ERR_MAX		-21

/* Status classes, as carried by the protocol (numbers equal keycustody.proto's Status). */
#define KC_STATUS_OK			0
#define KC_STATUS_INVALID_ARGUMENT	1
#define KC_STATUS_NOT_FOUND		2
#define KC_STATUS_CONFLICT		3
#define KC_STATUS_PERMISSION_DENIED	4
#define KC_STATUS_UNAVAILABLE		5
#define KC_STATUS_INTERNAL		6
#define KC_STATUS_RATE_LIMITED		7	/* HTTP 429 with Retry-After */

/* The API's codes (KC_API_INTERNAL, KC_API_UNAVAILABLE, ...) are in kc-api.h. */
#include "kc-api.h"

/*
 * An error as it crosses the protocol: a status class, the API code of API.md (0 when there
 * is none) and a message meant for the API client.
 */
struct kc_error {
	int	 status;
	int	 code;
	char	 message[512];
};

/**
 * Describe an error code.
 * @retval static text, never NULL
 */
const char	*kc_strerror(int r);

/**
 * Map an error code to its status class (KC_STATUS_*).
 */
int		 kc_err_status(int r);

/**
 * Map a status class to the HTTP status it is sent with.
 */
int		 kc_status_http(int status);

/**
 * Name of a status class ("invalid_argument", ...).
 * @retval static text, never NULL
 */
const char	*kc_status_name(int status);

/**
 * Fill err from a code: status from kc_err_status(), API code 1500/1503, a generic message.
 */
void		 kc_error_from(struct kc_error *err, int r);

/**
 * Fill err; fmt is printf-like and truncated to fit.
 */
void		 kc_error_set(struct kc_error *err, int status, int code, const char *fmt, ...)
		    __attribute__((__format__(__printf__, 4, 5)));

#endif /* KC_ERR_H */
