/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * pool.c: the bounded worker pool: a job queue guarded by one mutex, N threads, and a
 * completion queue drained on the event loop. The loop never blocks on a job: it only takes
 * the mutex for a queue push.
 */
#include "config.h"

#include <sys/queue.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "kc-err.h"
#include "log.h"
#include "pool.h"
#include "xmalloc.h"

struct pool_job {
	TAILQ_ENTRY(pool_job)	 entry;
	enum pool_class		 class;
	pool_work_fn		 work;
	pool_done_fn		 done;
	void			*arg;
};
TAILQ_HEAD(pool_jobq, pool_job);

struct pool_thread {
	struct pool		*pool;
	void			*ctx;
	pthread_t		 tid;
};

struct pool {
	pthread_mutex_t		 lock;
	pthread_cond_t		 cond;
	struct pool_jobq	 fast;		/* POOL_FAST jobs waiting for a worker */
	struct pool_jobq	 slow;		/* POOL_SLOW jobs waiting for a worker */
	struct pool_jobq	 destroy;	/* POOL_DESTROY jobs waiting for a worker */
	unsigned int		 running_slow;
	unsigned int		 running_destroy;
	struct pool_jobq	 done;		/* worked, waiting for the loop */
	unsigned int		 depth;		/* queued + running + waiting for the loop */
	unsigned int		 limit;
	int			 stopping;
	struct event		*done_ev;
	unsigned int		 nworkers;
	struct pool_thread	*threads;
};

static void	*pool_run(void *);
static void	 pool_done_cb(evutil_socket_t, short, void *);

struct pool *
pool_new(struct event_base *base, void *const *ctxs, unsigned int nworkers,
    unsigned int limit)
{
	struct pool	*p;
	unsigned int	 i;
	int		 r;

	p = xcalloc(1, sizeof(*p));
	p->limit = limit;
	TAILQ_INIT(&p->fast);
	TAILQ_INIT(&p->slow);
	TAILQ_INIT(&p->destroy);
	TAILQ_INIT(&p->done);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	if ((p->done_ev = event_new(base, -1, 0, pool_done_cb, p)) == NULL)
		fatalx("event_new");
	p->threads = xcalloc(nworkers, sizeof(*p->threads));
	/* The workers read nworkers (pool_next_inlock()) once it is final. */
	pthread_mutex_lock(&p->lock);
	for (i = 0; i < nworkers; i++) {
		p->threads[i].pool = p;
		p->threads[i].ctx = ctxs[i];
		if ((r = pthread_create(&p->threads[i].tid, NULL, pool_run,
		    &p->threads[i])) != 0)
			fatalx("pthread_create: %s", strerror(r));
		p->nworkers++;
	}
	pthread_mutex_unlock(&p->lock);
	return p;
}

int
pool_submit(struct pool *p, enum pool_class class, pool_work_fn work, pool_done_fn done,
    void *arg)
{
	struct pool_job	*job;

	pthread_mutex_lock(&p->lock);
	if (p->stopping || p->depth >= p->limit) {
		pthread_mutex_unlock(&p->lock);
		return KC_ERR_UNAVAILABLE;
	}
	job = xcalloc(1, sizeof(*job));
	job->class = class;
	job->work = work;
	job->done = done;
	job->arg = arg;
	TAILQ_INSERT_TAIL(class == POOL_SLOW ? &p->slow : class == POOL_DESTROY ?
	    &p->destroy : &p->fast, job, entry);
	p->depth++;
	pthread_mutex_unlock(&p->lock);
	/* After the unlock: the woken worker does not then wait for the lock we hold. */
	pthread_cond_signal(&p->cond);
	return 0;
}

unsigned int
pool_depth(struct pool *p)
{
	unsigned int	 n;

	pthread_mutex_lock(&p->lock);
	n = p->depth;
	pthread_mutex_unlock(&p->lock);
	return n;
}

unsigned int
pool_limit(const struct pool *p)
{
	return p->limit;
}

unsigned int
pool_workers(const struct pool *p)
{
	return p->nworkers;
}

/*
 * The next job for a free worker, or NULL: a destroy or a slow job when no fast job
 * waits, or while fewer than all workers but one run destroy and slow jobs; otherwise a
 * fast job. So token writes never hold every worker while fast ones wait (beyond those
 * already running when they came), and fast ones cannot starve them either (with two
 * workers or more). Destroys come before slow jobs, so that creates cannot starve them
 * (a destroy yields to creates itself, custody.c), but take at most all workers but one:
 * a destruction that holds the token for seconds leaves a worker to reads and creates.
 */
static struct pool_job *
pool_next_inlock(struct pool *p)
{
	struct pool_job	*job;
	unsigned int	 busy = p->running_slow + p->running_destroy;
	unsigned int	 dcap = p->nworkers > 1 ? p->nworkers - 1 : 1;
	int		 room = TAILQ_EMPTY(&p->fast) || busy + 1 < p->nworkers;

	if (room && p->running_destroy < dcap &&
	    (job = TAILQ_FIRST(&p->destroy)) != NULL) {
		TAILQ_REMOVE(&p->destroy, job, entry);
		p->running_destroy++;
		return job;
	}
	if (room && (job = TAILQ_FIRST(&p->slow)) != NULL) {
		TAILQ_REMOVE(&p->slow, job, entry);
		p->running_slow++;
		return job;
	}
	if ((job = TAILQ_FIRST(&p->fast)) != NULL)
		TAILQ_REMOVE(&p->fast, job, entry);
	return job;
}

/* A worker: take a job, work it, hand it to the loop. */
static void *
pool_run(void *arg)
{
	struct pool_thread	*t = arg;
	struct pool		*p = t->pool;
	struct pool_job		*job;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while ((job = pool_next_inlock(p)) == NULL && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		if (job == NULL)
			break;
		pthread_mutex_unlock(&p->lock);

		job->work(t->ctx, job->arg);

		pthread_mutex_lock(&p->lock);
		if (job->class == POOL_SLOW)
			p->running_slow--;
		else if (job->class == POOL_DESTROY)
			p->running_destroy--;
		TAILQ_INSERT_TAIL(&p->done, job, entry);
		/*
		 * Wake the loop without the lock held: event_active() takes the event base's
		 * lock and writes its notify fd, and the loop needs this lock to submit and to
		 * take the done jobs. A wake-up that finds the done list empty is harmless.
		 */
		pthread_mutex_unlock(&p->lock);
		event_active(p->done_ev, 0, 0);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* On the loop: finish every worked job. */
static void
pool_done_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct pool	*p = arg;
	struct pool_jobq q;
	struct pool_job	*job;

	TAILQ_INIT(&q);
	pthread_mutex_lock(&p->lock);
	TAILQ_CONCAT(&q, &p->done, entry);
	pthread_mutex_unlock(&p->lock);
	while ((job = TAILQ_FIRST(&q)) != NULL) {
		TAILQ_REMOVE(&q, job, entry);
		job->done(job->arg);
		pthread_mutex_lock(&p->lock);
		p->depth--;
		pthread_mutex_unlock(&p->lock);
		free(job);
	}
}

void
pool_free(struct pool *p)
{
	unsigned int	 i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	/* Workers finish what is queued before they see the queue empty and stop. */
	for (i = 0; i < p->nworkers; i++)
		pthread_join(p->threads[i].tid, NULL);
	pool_done_cb(-1, 0, p);
	event_free(p->done_ev);
	free(p->threads);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}
