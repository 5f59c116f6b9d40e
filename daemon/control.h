/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * control.h: the daemon's Unix socket: setup, accept, peer credentials, framing.
 */
#ifndef KC_CONTROL_H
#define KC_CONTROL_H

struct kcd;
struct control;

/**
 * Bind the socket (refusing to start if another daemon answers on it), mode 0660, and
 * start accepting on kcd->base.
 * @retval NULL with cause set on failure (caller frees cause)
 */
struct control	*control_new(struct kcd *kcd, const char *path, unsigned int max_conns,
		    char **cause);
/** Stop accepting new connections (shutdown). */
void		 control_stop_accepting(struct control *c);
/** Connections open. */
unsigned int	 control_nconns(struct control *c);
/** Requests read but not yet answered, all connections. */
unsigned int	 control_inflight(struct control *c);
/** Close every connection, remove the socket file. NULL is a no-op. */
void		 control_free(struct control *c);

#endif /* KC_CONTROL_H */
