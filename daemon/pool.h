/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * pool.h: a bounded pool of worker threads. It knows nothing of requests: a job is a
 * function run on a worker with that worker's context, and a function run on the event loop
 * once it is done.
 */
#ifndef KC_POOL_H
#define KC_POOL_H

struct event_base;
struct pool;

/*
 * Fast jobs are taken first, but slow ones (key generation) always get a worker of their
 * own when there are two workers or more: a free worker takes a slow job when no fast job
 * waits, or while fewer than all workers but one run slow or destroy jobs. Destroy jobs
 * (key destruction: seconds on a large SoftHSM2 token) are taken before slow ones under
 * the same rule, but never on more than all workers but one, so that one worker always
 * stays for fast jobs and key generation.
 */
enum pool_class { POOL_FAST, POOL_SLOW, POOL_DESTROY };

/* Run on a worker thread: ctx is the worker's own (pool_new()), arg the job's. */
typedef void (*pool_work_fn)(void *ctx, void *arg);
/* Run on the event loop thread after the job's work function returned. */
typedef void (*pool_done_fn)(void *arg);

/**
 * Start one thread per context; thread i is handed ctxs[i] (borrowed: the caller keeps the
 * contexts until pool_free() has returned).
 * @retval the pool; the threads cannot fail to start but by a fatal error
 */
struct pool	*pool_new(struct event_base *base, void *const *ctxs, unsigned int nworkers,
		    unsigned int limit);

/**
 * Queue a job: work(ctx, arg) on a worker, then done(arg) on the loop. Both are called,
 * each exactly once, unless this fails.
 * @retval 0, or KC_ERR_UNAVAILABLE when limit jobs are queued or running, or the pool stops
 */
int		 pool_submit(struct pool *p, enum pool_class class, pool_work_fn work,
		    pool_done_fn done, void *arg);

/** Jobs queued or running. */
unsigned int	 pool_depth(struct pool *p);
unsigned int	 pool_limit(const struct pool *p);
unsigned int	 pool_workers(const struct pool *p);

/**
 * Finish the queued jobs (their done functions are called), stop and join the threads.
 * NULL is a no-op.
 */
void		 pool_free(struct pool *p);

#endif /* KC_POOL_H */
