/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * keycustody.h: libkeycustody, the client side of the daemon protocol: connecting, framing,
 * request ids and calls. keycustodyctl uses the synchronous calls (kcc_*); keycustody-http the
 * asynchronous ones (kcc_async_*), on its libevent loop.
 */
#ifndef KEYCUSTODY_H
#define KEYCUSTODY_H

#include <stddef.h>
#include <stdint.h>

#include "kc-proto.h"

struct event_base;

#define KC_DEFAULT_SOCKET	"/run/keycustody/keycustodyd.sock"
/* The token that keycustody-pkcs11.so presents to a TLS terminator (issue 16). */
#define KC_MODULE_TOKEN_LABEL	"keycustody"

/* --- synchronous --- */

struct kcc;

/**
 * Connect to the daemon's socket.
 * @param path socket path; NULL: $KEYCUSTODY_SOCKET, else KC_DEFAULT_SOCKET
 * @param cause on failure, a message (caller frees)
 * @retval 0 or KC_ERR_IO; caller frees *cp with kcc_close()
 */
int	 kcc_open(const char *path, struct kcc **cp, char **cause);
/** Close the connection. NULL is a no-op. */
void	 kcc_close(struct kcc *c);
/** The connection's socket (borrowed: kcc_close() closes it). */
int	 kcc_fd(const struct kcc *c);
/**
 * Free c without closing its socket: for the child of a fork() whose descriptor may since
 * have been closed and reused for something else. NULL is a no-op.
 */
void	 kcc_abandon(struct kcc *c);

/**
 * Send req (its version and id are filled in here) and wait for the matching response.
 * @param timeout_ms 0 waits forever
 * @param respp caller frees with keycustody__response__free_unpacked(*respp, NULL)
 * @retval 0 (the response may still carry an error), KC_ERR_IO, KC_ERR_CLOSED,
 *	KC_ERR_BAD_MESSAGE, KC_ERR_MSG_TOO_BIG, KC_ERR_TIMEOUT
 */
int	 kcc_call(struct kcc *c, Keycustody__Request *req, int timeout_ms,
	    Keycustody__Response **respp);

/* --- asynchronous (libevent) --- */

struct kcc_async;

/*
 * Completion of an asynchronous call. r is 0 and resp set when a response arrived;
 * otherwise r is KC_ERR_* and resp NULL (connection lost, daemon unavailable, ...). resp
 * stays the library's and lives until the callback returns (it is unpacked into an arena
 * that the next response reuses): copy what is needed later, never free it. Called
 * exactly once per call, from the event loop.
 */
typedef void (*kcc_async_cb)(int r, Keycustody__Response *resp, void *arg);

/**
 * Open a pool of nconn connections to the daemon's socket on base. Connections are made
 * at once and remade by themselves, with backoff, whenever the daemon goes away.
 * @param path socket path; NULL: $KEYCUSTODY_SOCKET, else KC_DEFAULT_SOCKET
 * @param timeout_ms per-call deadline (0: none)
 * @param max_pending calls in flight over the whole pool before kcc_async_call() refuses
 * @retval NULL on allocation failure, nconn < 1 or a path too long for sun_path;
 *	free with kcc_async_free()
 */
struct kcc_async *kcc_async_new(struct event_base *base, const char *path, int nconn,
	    int timeout_ms, size_t max_pending);

/**
 * Close the pool. Calls still pending complete with KC_ERR_CLOSED (their callbacks run
 * before this returns). NULL is a no-op.
 */
void	 kcc_async_free(struct kcc_async *a);

/**
 * Send req (its version and id are filled in here; req stays the caller's) on the least
 * busy connection. cb runs exactly once, later, from the loop: with the response, or with
 * KC_ERR_CLOSED (connection lost), KC_ERR_TIMEOUT or KC_ERR_BAD_MESSAGE.
 * @retval 0 (cb will run), or, and then cb never runs: KC_ERR_UNAVAILABLE (no connection
 *	up, or max_pending reached), KC_ERR_MSG_TOO_BIG, KC_ERR_NOMEM
 */
int	 kcc_async_call(struct kcc_async *a, Keycustody__Request *req, kcc_async_cb cb,
	    void *arg);
/** kcc_async_call() with a deadline of its own, timeout_ms (0: none), not the pool's. */
int	 kcc_async_call_timeout(struct kcc_async *a, Keycustody__Request *req,
	    int timeout_ms, kcc_async_cb cb, void *arg);

/** Connections currently up. */
int	 kcc_async_connected(const struct kcc_async *a);

/** Calls in flight. */
size_t	 kcc_async_pending(const struct kcc_async *a);

#endif /* KEYCUSTODY_H */
