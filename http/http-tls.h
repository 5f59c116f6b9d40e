/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * http-tls.h: the shim's TLS listener (http-tls.c, the one owner of libssl in the shim);
 * http_tls_check() is in http.h.
 */
#ifndef KC_HTTP_TLS_H
#define KC_HTTP_TLS_H

struct bufferevent;
struct event_base;
struct http_config;
struct ssl_ctx_st;

/**
 * Check that conf's TLS options go together: both files or neither, a client CA only
 * with them.
 * @param cause on failure, why (caller frees)
 * @retval 0 or KC_ERR_INVALID
 */
int		 http_tls_args(const struct http_config *conf, char **cause);

/**
 * The server's TLS context from conf (which has tls_cert and tls_key): TLS 1.2 or later,
 * no compression, no renegotiation; with tls_client_ca, a client certificate it signed
 * is required.
 * @param cause on failure, why (caller frees)
 * @retval NULL on failure; the caller frees with SSL_CTX_free()
 */
struct ssl_ctx_st *http_tls_new(const struct http_config *conf, char **cause);

/**
 * evhttp_set_bevcb()'s callback: a connection's bufferevent, over TLS when arg (an SSL_CTX,
 * borrowed for as long as evhttp runs) is not NULL, its output watched by http-compat.c.
 * @retval NULL (plain only) when out of memory: evhttp then makes its own
 */
struct bufferevent *http_tls_bevcb(struct event_base *base, void *arg);

#endif /* KC_HTTP_TLS_H */
