/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * http-conn.h: the shim's connections (http-conn.c): admission against the connection
 * caps and the reserve, the header and body deadlines, the header block checked before
 * evhttp sees it (sizes, counts, framing, methods, authentication before a body), and the
 * listener's back-off on accept() errors.
 */
#ifndef KC_HTTP_CONN_H
#define KC_HTTP_CONN_H

#include <stddef.h>

struct bufferevent;
struct event_base;
struct evconnlistener;
struct evhttp_request;
struct http;
struct http_err;
struct http_metrics;

/* Limits of keycustody-http(8); zero or negative fields take the defaults below. */
struct http_limits {
	int		 max_conns;		/* open connections in all */
	int		 max_conns_addr;	/* ... from one address outside the reserve */
	int		 reserved_conns;	/* of max_conns, only for reserve addresses */
	const char	*reserve;		/* addresses and CIDRs, blank or comma separated */
	int		 header_timeout_ms;	/* first byte (or accept) to end of headers */
	int		 body_timeout_ms;	/* end of headers to end of body */
	int		 max_header_bytes;	/* request line and header lines */
	int		 max_headers;		/* header lines */
};

#define HTTP_DEF_MAX_CONNS		1024
#define HTTP_DEF_MAX_CONNS_ADDR		64
#define HTTP_DEF_RESERVED_CONNS		32
#define HTTP_DEF_HEADER_TIMEOUT_MS	10000
#define HTTP_DEF_BODY_TIMEOUT_MS	30000
#define HTTP_DEF_MAX_HEADER_BYTES	(16 * 1024)
#define HTTP_DEF_MAX_HEADERS		64

struct http_conns;
struct http_conn;

/**
 * The connection table of h. max_conns is lowered to what RLIMIT_NOFILE leaves after
 * fds_other descriptors (daemon connections, listener, logs), with a log line.
 * @param tls whether connections speak TLS (a refusal is then not answered)
 * @param m borrowed, valid until http_conns_free()
 * @param cause on failure (a bad reserve entry), why (caller frees)
 * @retval NULL on failure
 */
struct http_conns *http_conns_new(struct event_base *base, struct http *h,
		    const struct http_limits *lim, int fds_other, int tls,
		    struct http_metrics *m, char **cause);

/** Free the table; the connections are evhttp's and already gone. NULL is a no-op. */
void		 http_conns_free(struct http_conns *cs);

/* The API's listener and the metrics listener. */
#define HTTP_MAX_LISTENERS	2

/**
 * Watch listener l: on accept() errors that more tries cannot cure at once (EMFILE,
 * ENFILE, ENOBUFS, ENOMEM) every watched listener pauses, with back-off, instead of
 * libevent's retry and log loop.
 */
void		 http_conns_listen(struct http_conns *cs, struct evconnlistener *l);

/**
 * Take a new connection's bufferevent (from http_tls_bevcb()): watch its input, and
 * admit or refuse it once evhttp has set it up.
 * @retval bev
 */
struct bufferevent *http_conns_watch(struct http_conns *cs, struct bufferevent *bev);

/**
 * The connection of req, the one http_dispatch() is called for; counts it as reached.
 * @retval borrowed (valid until the client goes), NULL if unknown
 */
struct http_conn *http_conn_dispatched(struct http_conns *cs, struct evhttp_request *req);

/** The connection of req, or NULL; borrowed. */
struct http_conn *http_conn_of(struct http_conns *cs, struct evhttp_request *req);

/**
 * The error decided for this request before evhttp read it (framing, method,
 * authentication before a body), or NULL. &http_err_no_route means "answer no route
 * for *path"; *allow is the Allow header of a 405.
 * @param allow, path borrowed, valid while c is
 * @retval borrowed, static
 */
const struct http_err *http_conn_refused(const struct http_conn *c, int *route,
		    const char **allow, const char **path);

/**
 * Whether this connection must close after the answer of the request dispatched last (a
 * deadline passed, or the next request was refused or is chunked).
 */
int		 http_conn_closing(const struct http_conn *c);

/**
 * A daemon call is in flight for c: gone(arg) is called if the client goes first.
 * NULL gone clears it.
 */
void		 http_conn_set_pending(struct http_conn *c, void (*gone)(void *), void *arg);

#endif /* KC_HTTP_CONN_H */
