/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * pool.c: the bounded worker pool: a job queue guarded by one mutex, N threads each with its
 * own PKCS#11 session and store handle, and a completion queue drained on the event loop.
 * The loop never blocks on the HSM or the disk: it only takes the mutex for a queue push.
 */
#include "config.h"

#include <sys/queue.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "dispatch.h"
#include "hsm.h"
#include "kc-err.h"
#include "keycustodyd.h"
#include "log.h"
#include "pool.h"
#include "store.h"
#include "xmalloc.h"

struct pool_job {
	TAILQ_ENTRY(pool_job)	 entry;
	Keycustody__Request	*req;
	struct pool_peer	 peer;
	atomic_int		 abandoned;
	struct timespec		 submitted;
	pool_done_fn		 done;
	void			*arg;
	uint8_t			*frame;
	size_t			 len;
};
TAILQ_HEAD(pool_jobq, pool_job);

struct pool {
	struct kcd		*kcd;
	pthread_mutex_t		 lock;
	pthread_cond_t		 cond;
	struct pool_jobq	 todo;		/* waiting for a worker */
	struct pool_jobq	 done;		/* answered, waiting for the loop */
	unsigned int		 depth;		/* queued + running */
	unsigned int		 limit;
	unsigned int		 timeout_ms;
	int			 stopping;
	struct event		*done_ev;
	unsigned int		 nworkers;
	struct worker		*workers;
	pthread_t		*threads;
};

static void	*pool_thread(void *);
static void	 pool_done_cb(evutil_socket_t, short, void *);

struct pool *
pool_new(struct kcd *kcd, unsigned int nworkers, unsigned int limit, unsigned int timeout_ms,
    char **cause)
{
	struct pool	*p;
	struct worker	*w;
	unsigned int	 i;
	int		 r;

	p = xcalloc(1, sizeof(*p));
	p->kcd = kcd;
	p->limit = limit;
	p->timeout_ms = timeout_ms;
	TAILQ_INIT(&p->todo);
	TAILQ_INIT(&p->done);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	if ((p->done_ev = event_new(kcd->base, -1, 0, pool_done_cb, p)) == NULL)
		fatalx("event_new");
	p->workers = xcalloc(nworkers, sizeof(*p->workers));
	p->threads = xcalloc(nworkers, sizeof(*p->threads));
	for (i = 0; i < nworkers; i++) {
		w = &p->workers[i];
		w->kcd = kcd;
		w->pool = p;
		w->index = i;
		kc_arena_init(&w->arena);
		if ((r = hsm_session_new(kcd->hsm, &w->hs)) != 0) {
			xasprintf(cause, "worker %u: PKCS#11 session: %s", i, kc_strerror(r));
			goto fail;
		}
		if ((r = store_open(kcd->store_path, &w->st, cause)) != 0)
			goto fail;
	}
	for (i = 0; i < nworkers; i++) {
		if ((r = pthread_create(&p->threads[i], NULL, pool_thread, &p->workers[i])) != 0)
			fatalx("pthread_create: %s", strerror(r));
		p->nworkers++;
	}
	return p;
 fail:
	for (i = 0; i < nworkers; i++) {
		hsm_session_free(p->workers[i].hs);
		store_close(p->workers[i].st);
		kc_arena_uninit(&p->workers[i].arena);
	}
	event_free(p->done_ev);
	free(p->workers);
	free(p->threads);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
	return NULL;
}

int
pool_submit(struct pool *p, Keycustody__Request *req, const struct pool_peer *peer,
    pool_done_fn done, void *arg, struct pool_job **jobp)
{
	struct pool_job	*job;

	pthread_mutex_lock(&p->lock);
	if (p->stopping || p->depth >= p->limit) {
		pthread_mutex_unlock(&p->lock);
		return KC_ERR_UNAVAILABLE;
	}
	job = xcalloc(1, sizeof(*job));
	job->req = req;
	job->peer = *peer;
	job->done = done;
	job->arg = arg;
	atomic_init(&job->abandoned, 0);
	clock_gettime(CLOCK_MONOTONIC, &job->submitted);
	TAILQ_INSERT_TAIL(&p->todo, job, entry);
	p->depth++;
	*jobp = job;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

void
pool_abandon(struct pool_job *job)
{
	atomic_store(&job->abandoned, 1);
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
pool_limit(struct pool *p)
{
	return p->limit;
}

unsigned int
pool_workers(struct pool *p)
{
	return p->nworkers;
}

/* Milliseconds the job has left before its requester is told it timed out (at least 1). */
static unsigned int
pool_time_left(const struct pool *p, const struct pool_job *job)
{
	struct timespec	 now;
	int64_t		 spent;

	clock_gettime(CLOCK_MONOTONIC, &now);
	spent = (int64_t)(now.tv_sec - job->submitted.tv_sec) * 1000 +
	    (now.tv_nsec - job->submitted.tv_nsec) / 1000000;
	if (spent < 0)
		spent = 0;
	return spent >= (int64_t)p->timeout_ms ? 1 : p->timeout_ms - (unsigned int)spent;
}

/* A worker: take a job, answer it, hand the reply to the loop. */
static void *
pool_thread(void *arg)
{
	struct worker	*w = arg;
	struct pool	*p = w->pool;
	struct pool_job	*job;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while ((job = TAILQ_FIRST(&p->todo)) == NULL && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		if (job == NULL)
			break;
		TAILQ_REMOVE(&p->todo, job, entry);
		pthread_mutex_unlock(&p->lock);

		w->peer = &job->peer;
		hsm_session_set_deadline(w->hs, pool_time_left(p, job));
		disp_answer_worker(w, job->req, &job->abandoned, &job->frame, &job->len);
		hsm_session_set_deadline(w->hs, 0);
		w->peer = NULL;
		keycustody__request__free_unpacked(job->req, NULL);
		job->req = NULL;

		pthread_mutex_lock(&p->lock);
		TAILQ_INSERT_TAIL(&p->done, job, entry);
		event_active(p->done_ev, 0, 0);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* On the loop: deliver every finished reply. */
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
		job->done(job->arg, job->frame, job->len);
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
		pthread_join(p->threads[i], NULL);
	pool_done_cb(-1, 0, p);
	for (i = 0; i < p->nworkers; i++) {
		hsm_session_free(p->workers[i].hs);
		store_close(p->workers[i].st);
		kc_arena_uninit(&p->workers[i].arena);
	}
	event_free(p->done_ev);
	free(p->workers);
	free(p->threads);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}
