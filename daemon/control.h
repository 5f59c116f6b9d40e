/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * control.h: the daemon's Unix socket: setup, accept, peer credentials, framing.
 */
#ifndef KC_CONTROL_H
#define KC_CONTROL_H

#include <stdint.h>

struct kcd;
struct kc_conf;
struct control;

/* What the socket counts, for health. */
struct control_stats {
	unsigned int	 conns;		/* open */
	unsigned int	 max_conns;
	unsigned int	 admin_conns, gateway_conns, reader_conns;
	uint64_t	 refused;	/* at connect: no role, or no slot left for the role */
	uint64_t	 cut_off;	/* peers that left their replies unread too long */
	uint64_t	 log_suppressed; /* refusal log lines over refusal_log_rate */
};

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
/** Reply bytes queued and not yet written to their peers' sockets (the shutdown drain). */
size_t	 control_unsent(struct control *c);
/** Fill st (all zero for NULL: no socket, as in the fuzz targets). */
void		 control_stats(const struct control *c, struct control_stats *st);
/** Close every connection, remove the socket file. NULL is a no-op. */
void		 control_free(struct control *c);

#endif /* KC_CONTROL_H */
