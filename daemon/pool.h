/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * pool.h: the bounded worker pool. Each worker thread owns one PKCS#11 session and one store
 * handle; jobs come from the event loop and their packed replies go back to it.
 */
#ifndef KC_POOL_H
#define KC_POOL_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "kc-proto.h"

struct kcd;
struct hsm_session;
struct store;

struct pool;

/* Who sent a request: the connection's SO_PEERCRED and the role it was given. */
struct pool_peer {
	uid_t			 uid;
	gid_t			 gid;
	pid_t			 pid;
	int			 role;		/* enum ctl_role */
};

struct worker {
	struct kcd		*kcd;
	struct pool		*pool;
	struct hsm_session	*hs;
	struct store		*st;
	unsigned int		 index;
	const struct pool_peer	*peer;		/* of the job being answered */
	struct kc_arena		 arena;		/* a reply's body, until it is packed */
	int			 arena_body;	/* the reply being built uses the arena */
};

/*
 * Completion, called on the event loop thread with the packed reply frame (the callee takes
 * ownership of frame, free()) or frame NULL when the reply could not be built.
 */
typedef void (*pool_done_fn)(void *arg, uint8_t *frame, size_t len);

/**
 * Open one session and one store handle per worker and start the threads. Each job gets
 * timeout_ms from its submission to finish in the HSM (hsm_session_set_deadline()).
 * @retval pool or NULL with cause set (caller frees cause)
 */
struct pool	*pool_new(struct kcd *kcd, unsigned int nworkers, unsigned int limit,
		    unsigned int timeout_ms, char **cause);

struct pool_job;

/**
 * Queue req for a worker; the pool takes ownership of req on success.
 * @param jobp the job, for pool_abandon(); valid until done is called
 * @retval 0, or KC_ERR_UNAVAILABLE when the queue is full or the pool is stopping
 */
int		 pool_submit(struct pool *p, Keycustody__Request *req,
		    const struct pool_peer *peer, pool_done_fn done, void *arg,
		    struct pool_job **jobp);

/**
 * The requester gave up waiting (deadline passed): whatever the job still makes is undone
 * by the worker, and its reply is still delivered to done (which drops it). Loop thread.
 */
void		 pool_abandon(struct pool_job *job);

/** Jobs queued or running. */
unsigned int	 pool_depth(struct pool *p);
unsigned int	 pool_limit(struct pool *p);
unsigned int	 pool_workers(struct pool *p);

/**
 * Finish the queued jobs (their replies are delivered), stop and join the threads, close the
 * sessions and store handles. NULL is a no-op.
 */
void		 pool_free(struct pool *p);

#endif /* KC_POOL_H */
