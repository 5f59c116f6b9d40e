/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * peer.h: who sent a request: the connection's SO_PEERCRED and the role it was given.
 * control.c finds the role of a peer; dispatch.c decides what each role may do.
 */
#ifndef KC_PEER_H
#define KC_PEER_H

#include <sys/types.h>

#include <stdint.h>
#include <time.h>

enum peer_role {
	PEER_ROLE_NONE = 0,	/* refused at connect */
	PEER_ROLE_SIGNER,	/* only signing (scope below), no other request */
	PEER_ROLE_READER,	/* health, list, get */
	PEER_ROLE_GATEWAY,	/* every CSR and hostname operation, naming the actor */
	PEER_ROLE_ADMIN		/* everything */
};

struct sign_scope;

struct peer {
	uid_t			 uid;
	gid_t			 gid;
	pid_t			 pid;
	enum peer_role		 role;
	/* What the peer may sign with (sign.h); NULL: it has no signer grant. */
	const struct sign_scope	*scope;
};

/** "admin", "gateway", "reader", "signer", "none". */
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
	case PEER_ROLE_SIGNER:
		return "signer";
	default:
		return "none";
	}
}

/*
 * A budget of log lines a second for one kind of refusal, so that a peer cannot make the
 * daemon log as fast as it can connect or send (OpenSSH's log_ratelimit). One thread only.
 */
struct peer_loglimit {
	time_t			 second;	/* CLOCK_MONOTONIC second of the budget */
	unsigned int		 lines;		/* logged in that second */
	uint64_t		 held;		/* suppressed since the last line logged */
	uint64_t		 suppressed;	/* suppressed in all, for health */
};

/**
 * Whether one more line of this kind may be logged now, at most rate a second.
 * @param heldp set to the lines suppressed since the last one logged (to say so), or 0
 */
static inline int
peer_loglimit_pass(struct peer_loglimit *l, unsigned int rate, uint64_t *heldp)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ts.tv_sec != l->second) {
		l->second = ts.tv_sec;
		l->lines = 0;
	}
	*heldp = 0;
	if (l->lines >= rate) {
		l->held++;
		l->suppressed++;
		return 0;
	}
	l->lines++;
	*heldp = l->held;
	l->held = 0;
	return 1;
}

#endif /* KC_PEER_H */
