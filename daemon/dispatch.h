/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * dispatch.h: the one entry point of a decoded request. Dispatch owns the request table
 * (who may make which request, answered on the loop or by a worker, its handler and its
 * undo), the workers' contexts, the request deadline and what happens when it passes, and
 * the text of every error it answers itself.
 */
#ifndef KC_DISPATCH_H
#define KC_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "kc-proto.h"

struct dispatch;
struct kcd;
struct peer;
struct worker;

/*
 * A request's reply, on the event loop thread: the packed frame (the callee takes ownership,
 * free()), or NULL when it could not be built (close the connection). Called exactly once
 * per disp_request(), possibly before disp_request() returns.
 */
typedef void (*disp_reply_fn)(void *arg, uint8_t *frame, size_t len);

/**
 * Open one PKCS#11 session and one store handle per worker (kcd->conf: workers,
 * queue_limit, request_timeout) and start the pool (kcd->pool).
 * @retval NULL with cause set on failure (caller frees cause)
 */
struct dispatch	*disp_new(struct kcd *kcd, char **cause);

/**
 * Answer req (takes ownership) from peer (copied): refused, answered on the loop, or queued
 * for a worker with the request deadline; reply is called when the answer is there, or
 * with "unavailable" when the deadline passes first (the worker then undoes what the request
 * made, and its late answer is dropped).
 */
void		 disp_request(struct dispatch *d, Keycustody__Request *req,
		    const struct peer *peer, disp_reply_fn reply, void *arg);

/* What dispatch counts, for health. */
struct disp_stats {
	unsigned int	 creates_running;	/* on a worker */
	unsigned int	 creates_waiting;	/* in the line for their zone's or credential's turn */
	uint64_t	 creates_limited;	/* answered 429 */
	uint64_t	 log_suppressed;	/* refusal log lines over refusal_log_rate */
};

/** Fill st (all zero for NULL). */
void		 disp_stats(const struct dispatch *d, struct disp_stats *st);

/**
 * Add the worker requests' latencies (each request type; a create also by key type) and
 * the requests in flight to m; m frees them. NULL adds nothing.
 */
void		 disp_metrics(const struct dispatch *d, Keycustody__MetricsResponse *m);

/** The reply to a request of an unsupported protocol version. Caller frees *frame. */
void		 disp_bad_version(const Keycustody__Request *req, uint8_t **frame,
		    size_t *len);

/**
 * Answer req now on the calling thread, as a worker (w) would, abandoned or not: for the
 * fuzz targets and tests. Caller frees *frame.
 */
void		 disp_answer_now(struct kcd *kcd, struct worker *w,
		    const Keycustody__Request *req, const struct peer *peer, int abandoned,
		    uint8_t **frame, size_t *len);

/**
 * Finish the queued requests (their replies are delivered), stop the workers, close their
 * sessions and store handles. NULL is a no-op.
 */
void		 disp_free(struct dispatch *d);

#endif /* KC_DISPATCH_H */
