/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * http.h: keycustody-http's HTTP server (API.md over the daemon). http.c owns evhttp.
 */
#ifndef KC_HTTP_H
#define KC_HTTP_H

struct event_base;
struct cred_table;

#include "http-conn.h"

#define HTTP_BODY_MAX		(1024 * 1024)	/* API.md: larger bodies are 400/1400 */

struct http_config {
	const char	*address;		/* listen address */
	int		 port;
	const char	*socket;		/* daemon socket; NULL: default */
	int		 metrics;		/* serve GET /metrics */
	const char	*metrics_token;		/* its bearer token; NULL: none needed */
	const char	*metrics_address;	/* its own listener; NULL: address */
	int		 metrics_port;		/* 0: /metrics on the API's listener */
	int		 daemon_conns;		/* connection pool size */
	int		 daemon_timeout_ms;	/* per-call deadline */
	int		 max_pending;		/* calls in flight before 503 */
	int		 http_timeout_s;	/* idle connection timeout */
	const char	*tls_cert;		/* PEM chain; NULL: plain HTTP */
	const char	*tls_key;		/* PEM key, mode 0600 or tighter */
	const char	*tls_client_ca;		/* NULL: no client certificate asked */
	struct http_limits limits;		/* connections, deadlines, headers */
};

struct http;

/**
 * Set up serving on base: load the TLS files if any (once: a renewed certificate needs a
 * restart) and bind. Nothing is connected to the daemon yet: http_connect() does that,
 * after the privilege drop, so that the daemon sees the shim's own uid and gid.
 * @param creds taken over on success (freed by http_free()); still the caller's on failure
 * @param cause on failure, why (caller frees)
 * @retval NULL on failure
 */
struct http	*http_new(struct event_base *base, const struct http_config *conf,
		    struct cred_table *creds, char **cause);

/**
 * Check conf's TLS settings as http_new() would (both files or neither, a client CA only
 * with them, the key file's mode, the key matching the certificate), without serving:
 * for -n.
 * @param cause on failure, one line saying why (caller frees)
 * @retval 0, or a negative KC_ERR_*
 */
int		 http_tls_check(const struct http_config *conf, char **cause);

/**
 * Connect the daemon pool (conf->socket). Call once, after priv_drop(). A socket that
 * refuses the shim's identity (EACCES, EPERM) is a configuration error and fails; a
 * daemon that is down is retried with back-off.
 * @param cause on failure, why (caller frees)
 * @retval 0, KC_ERR_DENIED or KC_ERR_INTERNAL
 */
int		 http_connect(struct http *h, const struct http_config *conf, char **cause);

/**
 * Serve with a new credentials table from now on (SIGHUP).
 * @param creds taken over; the old table is freed
 */
void		 http_set_creds(struct http *h, struct cred_table *creds);

/** Stop serving: pending daemon calls are answered 503 first. NULL is a no-op. */
void		 http_free(struct http *h);

#endif /* KC_HTTP_H */
