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

/** Seconds on the monotonic clock. */
double		 http_now(void);

#endif /* KC_HTTP_INT_H */
