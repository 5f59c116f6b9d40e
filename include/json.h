/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * json.h: the shim's JSON mapping (API.md bodies <-> protobuf messages). json.c owns the
 * JSON library (jansson, for parsing request bodies) and the API objects and envelopes of
 * every reply (written with jsonw.h's writer), and is pure: no I/O, no logging, no evhttp.
 * Every function
 * returns 0, KC_ERR_INVALID (the input is not what API.md allows: HTTP 400/1400) or
 * KC_ERR_NOMEM. Output text is compact JSON, NUL-terminated, members in the order API.md
 * lists them; the caller frees it with free().
 */
#ifndef KC_JSON_H
#define KC_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "keycustody.pb-c.h"

/* Nesting allowed in a request body (unknown fields included). */
#define JSON_MAX_DEPTH		32

/**
 * Map a create-CSR request body to a request message. Absent (or null) fields stay absent
 * (NULL); content is not validated here (the daemon does that, 1405..1417).
 * @param body request body, need not be NUL-terminated
 * @param reqp on success, caller frees with
 *	keycustody__create_csr_request__free_unpacked(*reqp, NULL); zone_id is left NULL
 * @retval 0, KC_ERR_INVALID (undecodable, not an object, duplicate key, too deep, a field
 *	of the wrong type), KC_ERR_NOMEM
 */
int	 json_create_csr_request(const char *body, size_t len,
	    Keycustody__CreateCsrRequest **reqp);

/**
 * Map a create-custom-hostname body ({"hostname", "ssl": {"custom_csr_id",
 * "custom_certificate", "bundle_method"}}) to a request message. Absent or null fields stay
 * absent (NULL); an "ssl" member "custom_key", whatever its value, sets
 * ssl->custom_key_given (the daemon refuses it, 1434). Content is the daemon's to check.
 * @param body request body, need not be NUL-terminated
 * @param reqp on success, caller frees with
 *	keycustody__create_hostname_request__free_unpacked(*reqp, NULL); zone_id is left NULL
 * @retval 0, KC_ERR_INVALID (undecodable, not an object, duplicate key, too deep, ssl not
 *	an object, a known field of the wrong type), KC_ERR_NOMEM
 */
int	 json_create_hostname_request(const char *body, size_t len,
	    Keycustody__CreateHostnameRequest **reqp);

/**
 * Map an update-custom-hostname (PATCH) body ({"ssl": {...}}) as
 * json_create_hostname_request() does; a top-level "hostname" is ignored.
 * @param reqp on success, caller frees with
 *	keycustody__update_hostname_request__free_unpacked(*reqp, NULL); zone_id and id are
 *	left NULL
 */
int	 json_update_hostname_request(const char *body, size_t len,
	    Keycustody__UpdateHostnameRequest **reqp);

/**
 * Map a fallback origin PUT body ({"origin": "..."}); the origin is left NULL when absent
 * or null, and checked by the daemon.
 * @param reqp on success, caller frees with
 *	keycustody__update_fallback_origin_request__free_unpacked(*reqp, NULL); zone_id is
 *	left NULL
 * @retval 0, KC_ERR_INVALID (undecodable, not an object, origin not a string),
 *	KC_ERR_NOMEM
 */
int	 json_update_fallback_origin_request(const char *body, size_t len,
	    Keycustody__UpdateFallbackOriginRequest **reqp);

/**
 * The API object of a CSR, without envelope (no zone_id, no key_uri, no key_id).
 * @param out caller frees
 */
int	 json_csr(const Keycustody__Csr *csr, char **out);

/** A JSON array of the API objects of a page of CSRs (no envelope). @param out caller frees */
int	 json_csr_list(const Keycustody__ListCsrsResponse *list, char **out);

/**
 * The API object of a custom hostname, without envelope: id, hostname, created_at, status
 * and the ssl object (no zone_id, no certificate_authority). created_at and
 * ssl.uploaded_on carry microseconds, ssl.expires_on is whole seconds.
 * @param out caller frees
 * @retval 0, KC_ERR_INVALID (hn has no ssl: never half an object), KC_ERR_NOMEM
 */
int	 json_hostname(const Keycustody__CustomHostname *hn, char **out);

/** A JSON array of the API objects of a page of custom hostnames. @param out caller frees */
int	 json_hostname_list(const Keycustody__ListHostnamesResponse *list, char **out);

/** Success envelope around one custom hostname. @param out caller frees */
int	 json_reply_hostname(const Keycustody__CustomHostname *hn, char **out);

/**
 * Success envelope around a page of custom hostnames, with result_info.
 * @param out caller frees
 */
int	 json_reply_hostname_list(const Keycustody__ListHostnamesResponse *list, char **out);

/**
 * The object {"id": id} (no envelope): also the whole body of a custom hostname DELETE.
 * @param out caller frees
 */
int	 json_id(const char *id, char **out);

/** Success envelope around one CSR. @param out caller frees */
int	 json_reply_csr(const Keycustody__Csr *csr, char **out);

/** Success envelope around a page of CSRs, with result_info. @param out caller frees */
int	 json_reply_csr_list(const Keycustody__ListCsrsResponse *list, char **out);

/** Success envelope with result {"id": id}. @param out caller frees */
int	 json_reply_id(const char *id, char **out);

/**
 * Success envelope around a fallback origin: origin, status (when f has one), created_at,
 * updated_at (with microseconds) and errors (always empty).
 * @param out caller frees
 */
int	 json_reply_fallback_origin(const Keycustody__FallbackOrigin *f, char **out);

/** The API object of a fallback origin, without envelope. @param out caller frees */
int	 json_fallback_origin(const Keycustody__FallbackOrigin *f, char **out);

/**
 * Failure envelope with one error; when chain_code is not 0, the error carries an
 * error_chain with one entry (chain_code, chain_message).
 * @param out caller frees
 */
int	 json_reply_error(int code, const char *message, int chain_code,
	    const char *chain_message, char **out);

/**
 * The 7003/7000 "no route" failure envelope for path (relative to /client/v4).
 * @param out caller frees
 */
int	 json_reply_no_route(const char *path, char **out);

/**
 * Failure envelope for an error the daemon answered, and the HTTP status to send it with
 * (from the status class, via kc_status_http()).
 * @param out caller frees
 */
int	 json_reply_daemon_error(const Keycustody__Error *err, int *http_status, char **out);

/**
 * The healthz object: {"status":"ok"} when the token and the store are fine, otherwise
 * {"status":"unavailable", ...}. health may be NULL (daemon unreachable).
 * @param ok set to 1 when healthy
 * @param out caller frees
 */
int	 json_health(const Keycustody__HealthResponse *health, int *ok, char **out);

/**
 * keycustodyctl --json health: the healthz "status" (as json_health() decides it) and then
 * every field of health under its .proto name, so a field added to the .proto shows without
 * a change here: scalars as numbers, booleans and strings, enums by name, bytes as
 * lower-case hex, repeated fields as arrays, nested messages as objects; absent optional
 * fields are left out.
 * @param out caller frees
 */
int	 json_health_full(const Keycustody__HealthResponse *health, char **out);

/**
 * Seed jansson's hash tables now (it reads /dev/urandom on first use), before the
 * sandbox takes open() away.
 */
void	 json_init(void);

#endif /* KC_JSON_H */
