/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * http-compat.h: the libevent 2.1 workaround for evhttp's HTML error pages (http-compat.c),
 * a unit to delete with it.
 */
#ifndef KC_HTTP_COMPAT_H
#define KC_HTTP_COMPAT_H

struct bufferevent;
struct event_base;
struct http_metrics;

/**
 * Set up the workaround for this process's server.
 * @param m borrowed: refused requests are counted there; valid until http_compat_uninit()
 */
void	 http_compat_init(struct event_base *base, struct http_metrics *m);

/**
 * Watch bev's output (the clear text, with TLS) for evhttp's pages.
 * @retval 0, or -1 when out of memory
 */
int	 http_compat_watch(struct bufferevent *bev);

/**
 * Linger on bev's connection once its answer is written: what the client still sends is
 * read and dropped (for a while, up to a size), so that closing does not reset the
 * connection before the client has read the answer. Best effort.
 */
void	 http_compat_linger(struct bufferevent *bev);

/** Close the lingering connections (after evhttp_free()). */
void	 http_compat_uninit(void);

#endif /* KC_HTTP_COMPAT_H */
