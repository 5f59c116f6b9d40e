/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * kc-util.c: hex, UUIDs and the wall clock, for the daemon and the clients.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "kc-err.h"
#include "kc-util.h"

size_t
kc_p11_key_uri_size(const char *label, size_t idlen)
{
	/* "pkcs11:token=" + 3 per label byte + ";id=" + 3 per id byte + ";type=private" */
	return 13 + 3 * strlen(label) + 4 + 3 * idlen + 13 + 1;
}

void
kc_p11_key_uri(const char *label, const uint8_t *id, size_t idlen, char *buf)
{
	static const char	 hex[] = "0123456789abcdef";
	const unsigned char	*l;
	char			*p = buf;
	size_t			 i;

	memcpy(p, "pkcs11:token=", 13);
	p += 13;
	for (l = (const unsigned char *)label; *l != '\0'; l++) {
		if ((*l >= 'a' && *l <= 'z') || (*l >= 'A' && *l <= 'Z') ||
		    (*l >= '0' && *l <= '9') || *l == '-' || *l == '.' || *l == '_' ||
		    *l == '~')
			*p++ = (char)*l;
		else {
			*p++ = '%';
			*p++ = hex[*l >> 4];
			*p++ = hex[*l & 0xf];
		}
	}
	memcpy(p, ";id=", 4);
	p += 4;
	for (i = 0; i < idlen; i++) {
		*p++ = '%';
		*p++ = hex[id[i] >> 4];
		*p++ = hex[id[i] & 0xf];
	}
	memcpy(p, ";type=private", 14);		/* with the NUL */
}

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
