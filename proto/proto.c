/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * proto.c: framing of the daemon protocol, size caps, version checks, pack and unpack.
 * Library-like code: no logging, no fatal; errors are returned.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "kc-err.h"
#include "kc-proto.h"

int
proto_frame_len(const uint8_t hdr[KC_FRAME_HDR], size_t *len)
{
	uint32_t	 n;

	n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 |
	    (uint32_t)hdr[3];
	*len = n;
	return n > KC_MAX_MSG ? KC_ERR_MSG_TOO_BIG : 0;
}

/* Allocate a frame of hdr + n bytes and write the header. */
static uint8_t *
proto_frame_alloc(size_t n)
{
	uint8_t	*f;

	if ((f = malloc(KC_FRAME_HDR + n)) == NULL)
		return NULL;
	f[0] = (n >> 24) & 0xff;
	f[1] = (n >> 16) & 0xff;
	f[2] = (n >> 8) & 0xff;
	f[3] = n & 0xff;
	return f;
}

int
proto_pack_request(const Keycustody__Request *req, uint8_t **frame, size_t *len)
{
	size_t	 n;
	uint8_t	*f;

	*frame = NULL;
	*len = 0;
	n = keycustody__request__get_packed_size(req);
	if (n > KC_MAX_MSG)
		return KC_ERR_MSG_TOO_BIG;
	if ((f = proto_frame_alloc(n)) == NULL)
		return KC_ERR_NOMEM;
	keycustody__request__pack(req, f + KC_FRAME_HDR);
	*frame = f;
	*len = KC_FRAME_HDR + n;
	return 0;
}

int
proto_pack_response(const Keycustody__Response *resp, uint8_t **frame, size_t *len)
{
	size_t	 n;
	uint8_t	*f;

	*frame = NULL;
	*len = 0;
	n = keycustody__response__get_packed_size(resp);
	if (n > KC_MAX_MSG)
		return KC_ERR_MSG_TOO_BIG;
	if ((f = proto_frame_alloc(n)) == NULL)
		return KC_ERR_NOMEM;
	keycustody__response__pack(resp, f + KC_FRAME_HDR);
	*frame = f;
	*len = KC_FRAME_HDR + n;
	return 0;
}

int
proto_unpack_request(const uint8_t *buf, size_t len, Keycustody__Request **reqp)
{
	Keycustody__Request	*req;

	*reqp = NULL;
	if (len > KC_MAX_MSG)
		return KC_ERR_MSG_TOO_BIG;
	if ((req = keycustody__request__unpack(NULL, len, buf)) == NULL)
		return KC_ERR_BAD_MESSAGE;
	*reqp = req;
	if (req->version != KC_PROTO_VERSION)
		return KC_ERR_BAD_VERSION;
	if (req->body_case == KEYCUSTODY__REQUEST__BODY__NOT_SET ||
	    strcmp(proto_request_name(req->body_case), "unknown") == 0)
		return KC_ERR_BAD_MESSAGE;
	return 0;
}

int
proto_unpack_response(const uint8_t *buf, size_t len, Keycustody__Response **respp)
{
	*respp = NULL;
	if (len > KC_MAX_MSG)
		return KC_ERR_MSG_TOO_BIG;
	if ((*respp = keycustody__response__unpack(NULL, len, buf)) == NULL)
		return KC_ERR_BAD_MESSAGE;
	return 0;
}

/* protobuf-c's allocator over an arena: pieces are freed all at once, by its reset. */
static void *
proto_arena_alloc(void *arg, size_t size)
{
	return kc_arena_alloc(arg, size);
}

static void
proto_arena_free(void *arg, void *p)
{
	(void)arg;
	(void)p;
}

int
proto_unpack_response_arena(const uint8_t *buf, size_t len, struct kc_arena *a,
    Keycustody__Response **respp)
{
	/* protobuf-c keeps no pointer to the allocator once unpacking returns. */
	ProtobufCAllocator	 al = { proto_arena_alloc, proto_arena_free, a };

	*respp = NULL;
	if (len > KC_MAX_MSG)
		return KC_ERR_MSG_TOO_BIG;
	if ((*respp = keycustody__response__unpack(&al, len, buf)) == NULL)
		return KC_ERR_BAD_MESSAGE;
	return 0;
}

const char *
proto_request_name(int body_case)
{
	switch (body_case) {
	case KEYCUSTODY__REQUEST__BODY_HEALTH:
		return "health";
	case KEYCUSTODY__REQUEST__BODY_CREATE_CSR:
		return "create_csr";
	case KEYCUSTODY__REQUEST__BODY_LIST_CSRS:
		return "list_csrs";
	case KEYCUSTODY__REQUEST__BODY_GET_CSR:
		return "get_csr";
	case KEYCUSTODY__REQUEST__BODY_DELETE_CSR:
		return "delete_csr";
	case KEYCUSTODY__REQUEST__BODY_CREATE_HOSTNAME:
		return "create_hostname";
	case KEYCUSTODY__REQUEST__BODY_LIST_HOSTNAMES:
		return "list_hostnames";
	case KEYCUSTODY__REQUEST__BODY_GET_HOSTNAME:
		return "get_hostname";
	case KEYCUSTODY__REQUEST__BODY_UPDATE_HOSTNAME:
		return "update_hostname";
	case KEYCUSTODY__REQUEST__BODY_DELETE_HOSTNAME:
		return "delete_hostname";
	case KEYCUSTODY__REQUEST__BODY_GET_FALLBACK_ORIGIN:
		return "get_fallback_origin";
	case KEYCUSTODY__REQUEST__BODY_UPDATE_FALLBACK_ORIGIN:
		return "update_fallback_origin";
	case KEYCUSTODY__REQUEST__BODY_DELETE_FALLBACK_ORIGIN:
		return "delete_fallback_origin";
	case KEYCUSTODY__REQUEST__BODY_METRICS:
		return "metrics";
	case KEYCUSTODY__REQUEST__BODY_SIGNER_KEYS:
		return "signer_keys";
	case KEYCUSTODY__REQUEST__BODY_SIGN:
		return "sign";
	default:
		return "unknown";
	}
}

void
proto_time_format(int64_t us, int micro, char *buf, size_t len)
{
	struct tm	 tm;
	time_t		 t;
	int64_t		 frac;
	char		 base[24];

	t = (time_t)(us / 1000000);
	frac = us % 1000000;
	if (frac < 0) {
		frac += 1000000;
		t -= 1;
	}
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		snprintf(buf, len, "1970-01-01T00:00:00Z");
		return;
	}
	if (micro)
		snprintf(buf, len, "%s.%06ldZ", base, (long)frac);
	else
		snprintf(buf, len, "%sZ", base);
}
