/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * kc-util.c: hex, UUIDs and the wall clock, for the daemon and the clients.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include <openssl/rand.h>

#include "kc-err.h"
#include "kc-util.h"

void
kc_hex(const uint8_t *b, size_t n, char *out)
{
	static const char	 hex[] = "0123456789abcdef";
	size_t			 i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 0xf];
	}
	out[2 * n] = '\0';
}

int
kc_uuid(char out[KC_UUID_LEN + 1])
{
	uint8_t	 b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return KC_ERR_CRYPTO;
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	(void)snprintf(out, KC_UUID_LEN + 1,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
	    b[13], b[14], b[15]);
	return 0;
}

void
kc_cause(char **cause, const char *fmt, ...)
{
	va_list	 ap;

	if (cause == NULL || *cause != NULL)
		return;
	va_start(ap, fmt);
	if (vasprintf(cause, fmt, ap) == -1)
		*cause = NULL;
	va_end(ap);
}

int64_t
kc_now_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
