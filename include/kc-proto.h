/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * kc-proto.h: framing of the daemon protocol, shared by the daemon and its clients.
 * proto.c owns framing, size caps, version checks and protobuf pack/unpack; no business logic.
 *
 * A frame is a 4-byte big-endian length followed by that many bytes of one packed
 * keycustody.Request or keycustody.Response. Lengths above KC_MAX_MSG are refused before
 * anything is allocated.
 */
#ifndef KC_PROTO_H
#define KC_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "keycustody.pb-c.h"

#define KC_PROTO_VERSION	1
#define KC_FRAME_HDR		4
#define KC_MAX_MSG		(1024 * 1024)

/**
 * Read a frame header.
 * @param len the body length that follows; set on KC_ERR_MSG_TOO_BIG too (the length the
 *     peer announced, up to 2^32 - 1, for the log)
 * @retval 0 or KC_ERR_MSG_TOO_BIG
 */
int	 proto_frame_len(const uint8_t hdr[KC_FRAME_HDR], size_t *len);

/**
 * Pack a message into a new frame (header + body).
 * @param frame caller frees with free()
 * @retval 0, KC_ERR_MSG_TOO_BIG, KC_ERR_NOMEM
 */
int	 proto_pack_request(const Keycustody__Request *req, uint8_t **frame, size_t *len);
int	 proto_pack_response(const Keycustody__Response *resp, uint8_t **frame, size_t *len);

/**
 * Unpack a frame body. A request must also carry KC_PROTO_VERSION and a known body.
 * @param reqp caller frees with keycustody__request__free_unpacked(*reqp, NULL)
 * @retval 0, KC_ERR_BAD_MESSAGE (garbage, or a request without a known body: then *reqp
 *	is set), KC_ERR_BAD_VERSION (*reqp is set, so that the caller can answer its id);
 *	whenever *reqp is set the caller frees it
 */
int	 proto_unpack_request(const uint8_t *buf, size_t len, Keycustody__Request **reqp);
int	 proto_unpack_response(const uint8_t *buf, size_t len, Keycustody__Response **respp);

struct kc_arena;

/**
 * proto_unpack_response(), into arena a (arena.h): every string, array and message of the
 * reply (hundreds for a page of CSRs) comes from it, so that unpacking costs no malloc in
 * the steady state. *respp lives until kc_arena_reset(a); never free it.
 * @retval 0, KC_ERR_MSG_TOO_BIG, KC_ERR_BAD_MESSAGE (garbage or out of memory: protobuf-c
 *	does not tell them apart)
 */
int	 proto_unpack_response_arena(const uint8_t *buf, size_t len, struct kc_arena *a,
	    Keycustody__Response **respp);

/** Name of a request body ("create_csr", ...), for logs; "unknown" otherwise. */
const char *proto_request_name(int body_case);

/**
 * Format microseconds since the epoch as RFC 3339 UTC: "2026-11-26T15:16:25Z", or with
 * six fractional digits when micro is set. buf must hold 32 bytes.
 */
void	 proto_time_format(int64_t us, int micro, char *buf, size_t len);

#endif /* KC_PROTO_H */
