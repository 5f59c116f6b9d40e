/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * peer.h: who sent a request: the connection's SO_PEERCRED and the role it was given.
 * control.c finds the role of a peer; dispatch.c decides what each role may do.
 */
#ifndef KC_PEER_H
#define KC_PEER_H

#include <sys/types.h>

enum peer_role {
	PEER_ROLE_NONE = 0,	/* refused at connect */
	PEER_ROLE_READER,	/* health, list, get */
	PEER_ROLE_GATEWAY,	/* every CSR and hostname operation, naming the actor */
	PEER_ROLE_ADMIN		/* everything */
};

struct peer {
	uid_t			 uid;
	gid_t			 gid;
	pid_t			 pid;
	enum peer_role		 role;
};

/** "admin", "gateway", "reader", "none". */
static inline const char *
peer_role_name(enum peer_role role)
{
	switch (role) {
	case PEER_ROLE_ADMIN:
		return "admin";
	case PEER_ROLE_GATEWAY:
		return "gateway";
	case PEER_ROLE_READER:
		return "reader";
	default:
		return "none";
	}
}

#endif /* KC_PEER_H */
