/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * http-int.h: what the shim's http*.c files share: the routes' numbers, the errors the
 * shim answers by itself, and the clock. Defined in http.c.
 */
#ifndef KC_HTTP_INT_H
#define KC_HTTP_INT_H

/* Routes, the rows of http.c's table; those before HTTP_R_HEALTHZ need an API credential. */
enum http_route {
	HTTP_R_CREATE,
	HTTP_R_LIST,
	HTTP_R_GET,
	HTTP_R_DELETE,
	HTTP_R_HN_CREATE,
	HTTP_R_HN_LIST,
	HTTP_R_HN_GET,
	HTTP_R_HN_UPDATE,
	HTTP_R_HN_DELETE,
	HTTP_R_FO_GET,
	HTTP_R_FO_UPDATE,
	HTTP_R_FO_DELETE,
	HTTP_R_HEALTHZ,
	HTTP_R_METRICS,
	HTTP_R_NONE,		/* requests that matched no route */
	HTTP_R_MAX
};

/* An error the shim answers by itself. */
struct http_err {
	int		 status;
	int		 code;
	const char	*message;
	int		 chain_code;
	const char	*chain_message;
};

extern const struct http_err	 http_err_body;		/* 400/1400 */
extern const struct http_err	 http_err_headers;	/* 400/6003 */
extern const struct http_err	 http_err_internal;	/* 500 */

/* What a limit of http-conn.c refused; the rows of keycustody_http_limited_total. */
enum http_limit {
	HTTP_L_CONNS,		/* the total connection cap */
	HTTP_L_CONNS_ADDR,	/* the per-address cap */
	HTTP_L_HEADER_TIME,	/* headers not in within the header deadline */
	HTTP_L_BODY_TIME,	/* body not in within the body deadline */
	HTTP_L_HEADER_BYTES,	/* header block over its size cap */
	HTTP_L_HEADERS,		/* more header lines than the cap */
	HTTP_L_FRAMING,		/* NUL, conflicting lengths, duplicate credentials */
	HTTP_L_METHOD,		/* a method we do not know (405) */
	HTTP_L_EARLY_AUTH,	/* refused before its body was read */
	HTTP_L_ACCEPT,		/* accept() failed: the listener paused */
	HTTP_L_LOG,		/* log lines suppressed by the rate limit */
	HTTP_L_MAX
};

extern const struct http_err	 http_err_framing;	/* 400/6003 */
extern const struct http_err	 http_err_too_large;	/* 431/6003 */
extern const struct http_err	 http_err_method;	/* 405/7001 */
extern const struct http_err	 http_err_no_route;	/* 400/7003: see http_send_no_route() */

struct evkeyvalq;
struct http;

/**
 * The checks of http_dispatch() that need only the head of a request: route, method,
 * credential, zone and access; for a request with a body, before it is read.
 * @param method an enum evhttp_cmd_type
 * @param route set to the route's row (HTTP_R_NONE without one)
 * @param allow set for a 405: the Allow header, len bytes at most
 * @retval NULL (go on), or the error to answer
 */
const struct http_err *http_head_check(struct http *h, int method, const char *path,
		    struct evkeyvalq *headers, int *route, char *allow, size_t len);

#define HTTP_ALLOW_MAX		32	/* "GET, POST, PATCH, DELETE" */

/** Seconds on the monotonic clock. */
double		 http_now(void);

#endif /* KC_HTTP_INT_H */
