/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * control.h: the daemon's Unix socket: setup, accept, peer credentials, framing.
 */
#ifndef KC_CONTROL_H
#define KC_CONTROL_H

struct kcd;
struct kc_conf;
struct control;

/**
 * Resolve the roles of the configuration (admin, gateway, reader: a user name, a uid or
 * @group; none configured: root and the daemon's own user are admin), bind the socket
 * (refusing to start if another daemon answers on it), mode 0660, group socket_group when
 * set, and start accepting on kcd->base.
 * @retval NULL with cause set on failure (caller frees cause)
 */
struct control	*control_new(struct kcd *kcd, const struct kc_conf *conf, char **cause);
/** Whether a daemon answers on the socket at path (checked before start-up touches anything). */
int		 control_in_use(const char *path);
/** Stop accepting new connections (shutdown). */
void		 control_stop_accepting(struct control *c);
/** Connections open. */
unsigned int	 control_nconns(struct control *c);
/** Requests read but not yet answered, all connections. */
unsigned int	 control_inflight(struct control *c);
/** Close every connection, remove the socket file. NULL is a no-op. */
void		 control_free(struct control *c);

#endif /* KC_CONTROL_H */
