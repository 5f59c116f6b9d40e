/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * json.h: the shim's JSON mapping (API.md bodies <-> protobuf messages). json.c owns the
 * JSON library (jansson, for parsing request bodies) and its own output writer (struct
 * json_w, for every reply), and is pure: no I/O, no logging, no evhttp. Every function
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

/* API codes and messages that the shim produces itself. */
#define JSON_CODE_BAD_BODY	1400
#define JSON_MSG_BAD_BODY	"Unable to decode the JSON request body."

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

/*
 * The output writer: compact JSON written straight into one growing buffer, without a tree
 * of values. Strings are escaped as jansson's json_dumps() escapes them: '"', '\\', and
 * \b \f \n \r \t, other bytes below 0x20 as \u00XX (upper-case hex); '/', DEL and non-ASCII
 * UTF-8 pass unchanged. Ill-formed UTF-8 (protobuf-c does not check what the daemon sends)
 * is replaced, each maximal ill-formed subpart by one U+FFFD (Unicode 15, section 3.9, as
 * WHATWG and Python decode it), so the output is valid JSON whatever the bytes.
 * Errors are sticky: after the first (out of memory, or a call out of place: a key outside
 * an object or twice, a value in an object without its key, an end that does not match,
 * nesting over JSON_W_MAX_DEPTH), the other calls do nothing and json_w_steal() reports it.
 */
#define JSON_W_MAX_DEPTH	64

struct json_w {
	char		*buf;
	size_t		 len;
	size_t		 cap;
	int		 error;		/* 0 or the first KC_ERR_* */
	int		 depth;		/* open containers */
	int		 comma;		/* the open container has a member: ',' before the next */
	int		 key;		/* a key was written: its value comes next */
	uint64_t	 arrays;	/* bit d: the container at depth d + 1 is an array */
};

/**
 * Start writing into w.
 * @param hint bytes to allocate at once (0: on first use); the buffer grows as needed
 */
void	 json_w_init(struct json_w *w, size_t hint);

/** Free w's buffer (after an error, or to drop the text). */
void	 json_w_uninit(struct json_w *w);

/**
 * Take the text written: exactly one complete top-level value.
 * @param out on success, the NUL-terminated text (caller frees); NULL on failure
 * @param lenp its length without the NUL; may be NULL
 * @retval 0, KC_ERR_NOMEM, or KC_ERR_INVALID (a call out of place, or not one complete
 *	value); w is uninitialized either way
 */
int	 json_w_steal(struct json_w *w, char **out, size_t *lenp);

void	 json_w_object_begin(struct json_w *w);
void	 json_w_object_end(struct json_w *w);
void	 json_w_array_begin(struct json_w *w);
void	 json_w_array_end(struct json_w *w);

/** The key of the next member of the open object; escaped like a string. */
void	 json_w_key(struct json_w *w, const char *key);

/** A string value, escaped; NULL is written as "". */
void	 json_w_string(struct json_w *w, const char *s);

void	 json_w_int(struct json_w *w, int64_t v);
void	 json_w_uint(struct json_w *w, uint64_t v);
void	 json_w_bool(struct json_w *w, int v);
void	 json_w_null(struct json_w *w);

/**
 * Seed jansson's hash tables now (it reads /dev/urandom on first use), before the
 * sandbox takes open() away.
 */
void	 json_init(void);

#endif /* KC_JSON_H */
