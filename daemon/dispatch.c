/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * dispatch.c: the request table, permissions, loop or worker, the request deadline and its
 * undo, and the error replies that dispatch gives itself. The handlers are in answer-*.c;
 * the order of a create or a delete across token and store is custody.c's.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "answer.h"
#include "arena.h"
#include "conf.h"
#include "dispatch.h"
#include "hsm.h"
#include "kc-api.h"
#include "kc-err.h"
#include "kc-proto.h"
#include "kc-util.h"
#include "kcd.h"
#include "log.h"
#include "peer.h"
#include "pool.h"
#include "store.h"
#include "xmalloc.h"

#define DISP_LOOP	0x01	/* answered on the event loop: no I/O, no HSM */
#define DISP_ACTOR	0x02	/* a gateway must name the acting credential */

/* One row per request type: the least role that may make it, flags, handler, undo. */
static const struct disp_entry {
	int			 type;
	enum peer_role		 role;
	int			 flags;
	answer_fn		 fn;
	answer_undo_fn		 undo;		/* NULL: nothing to undo (reads, deletes) */
} disp_table[] = {
	{ KEYCUSTODY__REQUEST__BODY_HEALTH, PEER_ROLE_READER, DISP_LOOP, NULL, NULL },
	{ KEYCUSTODY__REQUEST__BODY_CREATE_CSR, PEER_ROLE_GATEWAY, DISP_ACTOR,
	    answer_create_csr, answer_undo_create_csr },
	{ KEYCUSTODY__REQUEST__BODY_LIST_CSRS, PEER_ROLE_READER, DISP_ACTOR,
	    answer_list_csrs, NULL },
	{ KEYCUSTODY__REQUEST__BODY_GET_CSR, PEER_ROLE_READER, DISP_ACTOR, answer_get_csr,
	    NULL },
	{ KEYCUSTODY__REQUEST__BODY_DELETE_CSR, PEER_ROLE_GATEWAY, DISP_ACTOR,
	    answer_delete_csr, NULL },
	{ KEYCUSTODY__REQUEST__BODY_CREATE_HOSTNAME, PEER_ROLE_GATEWAY, DISP_ACTOR,
	    answer_create_hostname, answer_undo_create_hostname },
	{ KEYCUSTODY__REQUEST__BODY_LIST_HOSTNAMES, PEER_ROLE_READER, DISP_ACTOR,
	    answer_list_hostnames, NULL },
	{ KEYCUSTODY__REQUEST__BODY_GET_HOSTNAME, PEER_ROLE_READER, DISP_ACTOR,
	    answer_get_hostname, NULL },
	{ KEYCUSTODY__REQUEST__BODY_UPDATE_HOSTNAME, PEER_ROLE_GATEWAY, DISP_ACTOR,
	    answer_update_hostname, NULL },
	{ KEYCUSTODY__REQUEST__BODY_DELETE_HOSTNAME, PEER_ROLE_GATEWAY, DISP_ACTOR,
	    answer_delete_hostname, NULL },
};

struct dispatch {
	struct kcd		*kcd;
	struct worker		*workers;
	unsigned int		 nworkers;
	struct timeval		 timeout;	/* the request deadline */
};

/* A request on its way through a worker, from disp_request() to its reply. */
struct disp_job {
	struct dispatch		*d;
	Keycustody__Request	*req;
	struct peer		 peer;
	uint64_t		 id;
	struct timespec		 deadline;	/* CLOCK_MONOTONIC */
	struct event		*timer;
	atomic_int		 abandoned;	/* the deadline passed: undo, drop the answer */
	disp_reply_fn		 reply;
	void			*arg;
	uint8_t			*frame;		/* the worker's answer */
	size_t			 len;
};

static const struct disp_entry *
disp_lookup(int type)
{
	size_t	 i;

	for (i = 0; i < nitems(disp_table); i++)
		if (disp_table[i].type == type)
			return &disp_table[i];
	return NULL;
}

/*
 * Whether a peer with this role may make the request; a gateway must name the acting
 * credential (Request.actor). @retval 0, or KC_ERR_DENIED with err set
 */
static int
disp_permitted(const struct disp_entry *e, const Keycustody__Request *req,
    enum peer_role role, struct kc_error *err)
{
	if (e == NULL || role < e->role) {
		kc_error_set(err, KC_STATUS_PERMISSION_DENIED, KC_API_AUTH, KC_API_AUTH_MSG
		    ": the %s role may not make %s requests", peer_role_name(role),
		    proto_request_name(req->body_case));
		return KC_ERR_DENIED;
	}
	if (role == PEER_ROLE_GATEWAY && (e->flags & DISP_ACTOR) &&
	    (req->actor == NULL || *req->actor == '\0')) {
		kc_error_set(err, KC_STATUS_PERMISSION_DENIED, KC_API_AUTH, KC_API_AUTH_MSG
		    ": a gateway must name the acting credential");
		return KC_ERR_DENIED;
	}
	return 0;
}

static Keycustody__Response *
disp_response_new(uint64_t id)
{
	Keycustody__Response	*resp = xcalloc(1, sizeof(*resp));

	keycustody__response__init(resp);
	resp->id = id;
	return resp;
}

/*
 * A body built in the worker's arena (answer_list_csrs()) leaves resp before
 * free_unpacked() could free() its parts, and the arena is reset for the next request.
 */
static void
disp_drop_arena_body(struct worker *w, Keycustody__Response *resp)
{
	if (w == NULL || !w->arena_body)
		return;
	resp->body_case = KEYCUSTODY__RESPONSE__BODY__NOT_SET;
	resp->list_csrs = NULL;
	w->arena_body = 0;
	kc_arena_reset(&w->arena);
}

/*
 * Pack resp into a frame, then free it: every part of it was malloc'd, but for a body in
 * w's arena (w NULL: none).
 */
static void
disp_finish(struct worker *w, Keycustody__Response *resp, uint8_t **frame, size_t *len)
{
	int	 r;

	*frame = NULL;
	*len = 0;
	if ((r = proto_pack_response(resp, frame, len)) != 0)
		log_warnx("reply %llu: %s", (unsigned long long)resp->id, kc_strerror(r));
	disp_drop_arena_body(w, resp);
	keycustody__response__free_unpacked(resp, NULL);
}

static void
disp_set_error(Keycustody__Response *resp, const struct kc_error *err,
    unsigned int retry_after)
{
	Keycustody__Error	*e = xcalloc(1, sizeof(*e));

	keycustody__error__init(e);
	e->status = (Keycustody__Status)err->status;
	e->code = (uint32_t)err->code;
	e->message = xstrdup(err->message);
	if (err->status == KC_STATUS_UNAVAILABLE) {
		e->has_retry_after = 1;
		e->retry_after = retry_after > 0 ? retry_after : 1;
	}
	resp->error = e;
}

static void
disp_error_frame(uint64_t id, const struct kc_error *err, uint8_t **frame, size_t *len)
{
	Keycustody__Response	*resp = disp_response_new(id);

	disp_set_error(resp, err, 1);
	disp_finish(NULL, resp, frame, len);
}

void
disp_bad_version(const Keycustody__Request *req, uint8_t **frame, size_t *len)
{
	struct kc_error	 err;

	kc_error_set(&err, KC_STATUS_INVALID_ARGUMENT, KC_API_INTERNAL,
	    "protocol version %u is not supported (expected %u)", req->version,
	    KC_PROTO_VERSION);
	disp_error_frame(req->id, &err, frame, len);
}

/* Answer a request of the loop (DISP_LOOP). */
static void
disp_answer_loop(struct kcd *kcd, const Keycustody__Request *req, uint8_t **frame,
    size_t *len)
{
	Keycustody__Response	*resp = disp_response_new(req->id);

	answer_health(kcd, resp);
	disp_finish(NULL, resp, frame, len);
}

/*
 * The requester was told the request failed (deadline passed): undo what a successful
 * answer made, so that a request that "failed" made nothing. Deletions are not undone: the
 * client may retry them.
 */
static void
disp_undo(struct worker *w, const struct disp_entry *e, const Keycustody__Request *req,
    const Keycustody__Response *resp)
{
	int	 r;

	if (e->undo == NULL)
		return;
	if ((r = e->undo(w, req, resp)) != 0)
		log_warnx("request %llu %s: deadline passed, undoing failed (%s); a record in "
		    "state deleting is finished at start-up", (unsigned long long)req->id,
		    proto_request_name(req->body_case), kc_strerror(r));
	else
		log_warnx("request %llu %s: deadline passed; what it made is undone",
		    (unsigned long long)req->id, proto_request_name(req->body_case));
	(void)ans_audit(w, req, "undo_after_deadline", NULL, NULL, NULL, r, NULL);
}

/* Answer a worker's request with its handler; undo it when it was abandoned meanwhile. */
static void
disp_answer_worker(struct worker *w, const struct disp_entry *e,
    const Keycustody__Request *req, const atomic_int *abandoned, uint8_t **frame,
    size_t *len)
{
	Keycustody__Response	*resp = disp_response_new(req->id);
	struct kc_error		 err;
	int			 r;

	memset(&err, 0, sizeof(err));
	r = e->fn(w, req, resp, &err);
	if (r == 0 && atomic_load(abandoned)) {
		disp_undo(w, e, req, resp);
		r = KC_ERR_TIMEOUT;
		memset(&err, 0, sizeof(err));
	}
	if (r != 0) {
		if (err.status == KC_STATUS_OK)
			kc_error_from(&err, r);
		/* Drop a partly built body: only the error goes back. */
		disp_drop_arena_body(w, resp);
		keycustody__response__free_unpacked(resp, NULL);
		resp = disp_response_new(req->id);
		disp_set_error(resp, &err, hsm_retry_after(w->kcd->hsm));
	}
	disp_finish(w, resp, frame, len);
}

/*
 * Refuse, or answer on the loop: 1 with *frame set when done here, 0 when the request is
 * for a worker (*ep its row).
 */
static int
disp_answer_here(struct kcd *kcd, const Keycustody__Request *req, const struct peer *peer,
    const struct disp_entry **ep, uint8_t **frame, size_t *len)
{
	const struct disp_entry	*e = disp_lookup(req->body_case);
	struct kc_error		 err;

	memset(&err, 0, sizeof(err));
	if (disp_permitted(e, req, peer->role, &err) != 0) {
		log_warnx("peer uid %ld pid %ld (role %s): %s refused", (long)peer->uid,
		    (long)peer->pid, peer_role_name(peer->role),
		    proto_request_name(req->body_case));
		disp_error_frame(req->id, &err, frame, len);
		return 1;
	}
	if (e->flags & DISP_LOOP) {
		disp_answer_loop(kcd, req, frame, len);
		return 1;
	}
	*ep = e;
	return 0;
}

void
disp_answer_now(struct kcd *kcd, struct worker *w, const Keycustody__Request *req,
    const struct peer *peer, int abandoned, uint8_t **frame, size_t *len)
{
	const struct disp_entry	*e;
	atomic_int		 ab;

	if (disp_answer_here(kcd, req, peer, &e, frame, len))
		return;
	atomic_init(&ab, abandoned != 0);
	w->peer = peer;
	disp_answer_worker(w, e, req, &ab, frame, len);
	w->peer = NULL;
}

/* Milliseconds the job has left before its deadline (at least 1). */
static unsigned int
disp_time_left(const struct disp_job *job)
{
	struct timespec	 now;
	int64_t		 left;

	clock_gettime(CLOCK_MONOTONIC, &now);
	left = (int64_t)(job->deadline.tv_sec - now.tv_sec) * 1000 +
	    (job->deadline.tv_nsec - now.tv_nsec) / 1000000;
	return left < 1 ? 1 : (unsigned int)left;
}

/* On a worker: the HSM gets what is left of the deadline. */
static void
disp_work(void *ctx, void *arg)
{
	struct worker	*w = ctx;
	struct disp_job	*job = arg;

	hsm_session_set_deadline(w->hs, disp_time_left(job));
	w->peer = &job->peer;
	disp_answer_worker(w, disp_lookup(job->req->body_case), job->req, &job->abandoned,
	    &job->frame, &job->len);
	w->peer = NULL;
	hsm_session_set_deadline(w->hs, 0);
	keycustody__request__free_unpacked(job->req, NULL);
	job->req = NULL;
}

/* On the loop: the worker's answer goes out, unless the deadline answered already. */
static void
disp_work_done(void *arg)
{
	struct disp_job	*job = arg;

	event_free(job->timer);
	if (atomic_load(&job->abandoned))
		free(job->frame);
	else
		job->reply(job->arg, job->frame, job->len);
	free(job);
}

/*
 * On the loop: the deadline passed. The requester is told nothing was changed; the worker
 * undoes what the request still makes (disp_answer_worker()), and its answer is dropped.
 */
static void
disp_deadline(evutil_socket_t fd, short ev, void *arg)
{
	struct disp_job	*job = arg;
	struct kc_error	 err;
	uint8_t		*frame;
	size_t		 len;

	atomic_store(&job->abandoned, 1);
	log_warnx("request %llu (uid %ld pid %ld) not answered within %lds; giving up",
	    (unsigned long long)job->id, (long)job->peer.uid, (long)job->peer.pid,
	    (long)job->d->timeout.tv_sec);
	kc_error_set(&err, KC_STATUS_UNAVAILABLE, KC_API_UNAVAILABLE, "Service Unavailable: "
	    "the HSM did not answer within %ld seconds; nothing was changed. Please try again "
	    "later.", (long)job->d->timeout.tv_sec);
	disp_error_frame(job->id, &err, &frame, &len);
	job->reply(job->arg, frame, len);
}

void
disp_request(struct dispatch *d, Keycustody__Request *req, const struct peer *peer,
    disp_reply_fn reply, void *arg)
{
	const struct disp_entry	*e;
	struct disp_job		*job;
	struct kc_error		 err;
	uint8_t			*frame;
	size_t			 len;

	if (disp_answer_here(d->kcd, req, peer, &e, &frame, &len)) {
		keycustody__request__free_unpacked(req, NULL);
		reply(arg, frame, len);
		return;
	}
	job = xcalloc(1, sizeof(*job));
	job->d = d;
	job->req = req;
	job->peer = *peer;
	job->id = req->id;
	job->reply = reply;
	job->arg = arg;
	atomic_init(&job->abandoned, 0);
	clock_gettime(CLOCK_MONOTONIC, &job->deadline);
	job->deadline.tv_sec += d->timeout.tv_sec;
	if ((job->timer = evtimer_new(d->kcd->base, disp_deadline, job)) == NULL)
		fatalx("evtimer_new");
	if (pool_submit(d->kcd->pool, disp_work, disp_work_done, job) != 0) {
		event_free(job->timer);
		free(job);
		kc_error_set(&err, KC_STATUS_UNAVAILABLE, KC_API_UNAVAILABLE,
		    "Service Unavailable: the request queue is full. Please try again later.");
		disp_error_frame(req->id, &err, &frame, &len);
		keycustody__request__free_unpacked(req, NULL);
		reply(arg, frame, len);
		return;
	}
	evtimer_add(job->timer, &d->timeout);
}

static void
disp_workers_free(struct worker *v, unsigned int n)
{
	unsigned int	 i;

	for (i = 0; i < n; i++) {
		hsm_session_free(v[i].hs);
		store_close(v[i].st);
		kc_arena_uninit(&v[i].arena);
	}
	free(v);
}

struct dispatch *
disp_new(struct kcd *kcd, char **cause)
{
	const struct kc_conf	*conf = kcd->conf;
	struct dispatch		*d;
	void			**ctxs;
	unsigned int		 i;
	int			 r;

	d = xcalloc(1, sizeof(*d));
	d->kcd = kcd;
	d->timeout.tv_sec = conf->request_timeout;
	d->nworkers = conf->workers;
	d->workers = xcalloc(d->nworkers, sizeof(*d->workers));
	ctxs = xcalloc(d->nworkers, sizeof(*ctxs));
	for (i = 0; i < d->nworkers; i++) {
		d->workers[i].kcd = kcd;
		kc_arena_init(&d->workers[i].arena);
		ctxs[i] = &d->workers[i];
		if ((r = hsm_session_new(kcd->hsm, &d->workers[i].hs)) != 0) {
			xasprintf(cause, "worker %u: PKCS#11 session: %s", i, kc_strerror(r));
			goto fail;
		}
		if ((r = store_open(kcd->store_path, &d->workers[i].st, cause)) != 0)
			goto fail;
	}
	kcd->pool = pool_new(kcd->base, ctxs, d->nworkers, conf->queue_limit);
	free(ctxs);
	return d;
 fail:
	free(ctxs);
	disp_workers_free(d->workers, d->nworkers);
	free(d);
	return NULL;
}

void
disp_free(struct dispatch *d)
{
	if (d == NULL)
		return;
	pool_free(d->kcd->pool);
	d->kcd->pool = NULL;
	disp_workers_free(d->workers, d->nworkers);
	free(d);
}
