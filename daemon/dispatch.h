/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * dispatch.h: the request table and the answer_<op>() handlers.
 */
#ifndef KC_DISPATCH_H
#define KC_DISPATCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "kc-proto.h"

struct kcd;
struct kc_error;
struct worker;

/**
 * Whether a peer with this role (enum ctl_role) may make the request; a gateway must name
 * the acting credential (Request.actor).
 * @retval 0, or KC_ERR_DENIED with err set (status PERMISSION_DENIED)
 */
int	disp_permitted(const Keycustody__Request *req, int role, struct kc_error *err);

/**
 * Whether the request is answered on the event loop (cheap, no I/O) rather than by a worker.
 */
int	disp_in_loop(const Keycustody__Request *req);

/**
 * Answer a request on the event loop (disp_in_loop() was true).
 * @param frame the packed reply; caller frees with free(); NULL on failure
 */
void	disp_answer_loop(struct kcd *kcd, const Keycustody__Request *req, uint8_t **frame,
	    size_t *len);

/**
 * Answer a request on a worker thread (the handler of its row in the table). When
 * *abandoned is set by then (the requester's deadline passed), what the request made is
 * undone and the reply says so.
 */
void	disp_answer_worker(struct worker *w, const Keycustody__Request *req,
	    const atomic_int *abandoned, uint8_t **frame, size_t *len);

/** Pack an error reply for request id. */
void	disp_error_frame(uint64_t id, const struct kc_error *err, uint8_t **frame,
	    size_t *len);

#endif /* KC_DISPATCH_H */
