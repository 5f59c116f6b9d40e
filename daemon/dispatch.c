/*
 * Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
 *
 * dispatch.c: the request table, permissions, loop or worker, the request deadline and its
 * undo, and the error replies that dispatch gives itself. The handlers are in answer-*.c;
 * the order of a create or a delete across token and store is custody.c's.
 */
#include "config.h"

#include <sys/queue.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "answer.h"
#include "arena.h"
#include "conf.h"
#include "custody.h"
#include "dispatch.h"
#include "hsm.h"
#include "kc-api.h"
#include "kc-err.h"
#include "kc-proto.h"
#include "kc-util.h"
#include "kcd.h"
#include "log.h"
#include "metrics.h"
#include "peer.h"
#include "pool.h"
#include "sign.h"
#include "store.h"
#include "validate.h"
#include "xmalloc.h"

#define DISP_LOOP	0x01	/* answered on the event loop: no I/O, no HSM */
#define DISP_ACTOR	0x02	/* a gateway must name the acting credential */
#define DISP_CREATE	0x04	/* makes a key: the zone's and credential's limits apply */
#define DISP_SIGN	0x08	/* the signer role's: a signer grant, whatever the role */

/* One row per request type: the least role that may make it, flags, handler, undo. */
static const struct disp_entry {
	int			 type;
	enum peer_role		 role;
	int			 flags;
	answer_fn		 fn;
	answer_undo_fn		 undo;		/* NULL: nothing to undo (reads, deletes) */
} disp_table[] = {
	{ KEYCUSTODY__REQUEST__BODY_HEALTH, PEER_ROLE_READER, DISP_LOOP, NULL, NULL },
	/* Counts and latencies only, no zone's data: what health shows, so the same role. */
	{ KEYCUSTODY__REQUEST__BODY_METRICS, PEER_ROLE_READER, DISP_LOOP, NULL, NULL },
	{ KEYCUSTODY__REQUEST__BODY_CREATE_CSR, PEER_ROLE_GATEWAY, DISP_ACTOR | DISP_CREATE,
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
	{ KEYCUSTODY__REQUEST__BODY_GET_FALLBACK_ORIGIN, PEER_ROLE_READER, DISP_ACTOR,
	    answer_get_fallback_origin, NULL },
	{ KEYCUSTODY__REQUEST__BODY_UPDATE_FALLBACK_ORIGIN, PEER_ROLE_GATEWAY, DISP_ACTOR,
	    answer_update_fallback_origin, NULL },
	{ KEYCUSTODY__REQUEST__BODY_DELETE_FALLBACK_ORIGIN, PEER_ROLE_GATEWAY, DISP_ACTOR,
	    answer_delete_fallback_origin, NULL },
	{ KEYCUSTODY__REQUEST__BODY_SIGNER_KEYS, PEER_ROLE_SIGNER, DISP_SIGN,
	    answer_signer_keys, NULL },
	{ KEYCUSTODY__REQUEST__BODY_SIGN, PEER_ROLE_SIGNER, DISP_SIGN, answer_sign, NULL },
};

/*
 * Key creations in flight for one zone or one credential: those on a worker (running) and
 * those waiting in the line for their turn (pending counts both). Freed at pending 0.
 */
struct disp_tally {
	TAILQ_ENTRY(disp_tally)	 entry;
	char			*key;
	unsigned int		 running;
	unsigned int		 pending;
};
TAILQ_HEAD(disp_tallyq, disp_tally);

struct disp_job;
TAILQ_HEAD(disp_jobq, disp_job);

/*
 * Fairness of key creation (issue 12): a create runs while its zone has fewer than
 * zone_run creates running and its credential fewer than cred_run; otherwise it waits in
 * the line, on the loop, holding no worker and no queue slot. A zone with zone_max creates
 * in flight, or a credential with cred_max, is answered 429 at once; create_max in flight
 * in all is a full queue (503). Creates go to the pool as POOL_SLOW jobs and CSR deletes
 * (key destruction) as POOL_DESTROY jobs, so that reads always find a worker.
 */
struct disp_fair {
	struct disp_tallyq	 zones;
	struct disp_tallyq	 creds;
	struct disp_jobq	 line;		/* waiting, oldest first */
	unsigned int		 zone_run, zone_max;
	unsigned int		 cred_run, cred_max;
	unsigned int		 create_max;
	unsigned int		 running;
	unsigned int		 waiting;
	uint64_t		 limited;	/* answered 429 */
	unsigned int		 log_rate;
	struct peer_loglimit	 log_limited;
	struct peer_loglimit	 log_refused;	/* permission refusals */
};

#define DISP_NROWS	(sizeof(disp_table) / sizeof(disp_table[0]))

struct dispatch {
	struct kcd		*kcd;
	struct worker		*workers;
	unsigned int		 nworkers;
	struct timeval		 timeout;	/* the request deadline */
	struct disp_fair	 fair;
	unsigned int		 inflight;	/* jobs from disp_request() to their reply */
	/* Worker answers by table row and key type (a create's; KCD_KEYTYPE_NONE else). */
	struct metrics_hist	 latency[DISP_NROWS][KCD_NKEYTYPES];
};

/* A request on its way through a worker, from disp_request() to its reply. */
struct disp_job {
	struct dispatch		*d;
	TAILQ_ENTRY(disp_job)	 entry;		/* in the line (a create waiting its turn) */
	struct disp_tally	*zone;		/* a create's tallies (zone NULL: invalid id) */
	struct disp_tally	*cred;
	int			 waiting;	/* in the line */
	int			 running;	/* a create given to the pool */
	int			 yields;	/* counted in custody_yield (deletes wait) */
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

static void	disp_work(void *, void *);
static void	disp_work_done(void *);

static const struct disp_entry *
disp_lookup(int type)
{
	size_t	 i;

	for (i = 0; i < nitems(disp_table); i++)
		if (disp_table[i].type == type)
			return &disp_table[i];
	return NULL;
}

/* The tail of a rate-limited log line that says how many like it were left out. */
static const char *
disp_held(uint64_t held)
{
	static char	 buf[64];

	if (held == 0)
		return "";
	snprintf(buf, sizeof(buf), " (%llu more suppressed)", (unsigned long long)held);
	return buf;
}

/*
 * Whether the peer may make the request: its role, or for the signer's requests its signer
 * grant (an admin without one may not sign); a gateway must name the acting credential
 * (Request.actor). @retval 0, or KC_ERR_DENIED with err set
 */
static int
disp_permitted(const struct disp_entry *e, const Keycustody__Request *req,
    const struct peer *peer, struct kc_error *err)
{
	enum peer_role	 role = peer->role;

	if (e != NULL && (e->flags & DISP_SIGN)) {
		if (peer->scope != NULL)
			return 0;
		kc_error_set(err, KC_STATUS_PERMISSION_DENIED, KC_API_AUTH, KC_API_AUTH_MSG
		    ": %s requests need the signer role", proto_request_name(req->body_case));
		return KC_ERR_DENIED;
	}
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
	if (err->status == KC_STATUS_UNAVAILABLE || err->status == KC_STATUS_RATE_LIMITED) {
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

	if (req->body_case == KEYCUSTODY__REQUEST__BODY_METRICS)
		answer_metrics(kcd, resp);
	else
		answer_health(kcd, resp);
	disp_finish(NULL, resp, frame, len);
}

/* The key type a request's latency is counted under. */
static int
disp_keytype(const Keycustody__Request *req)
{
	enum hsm_keytype	 t = HSM_KEY_RSA2048;	/* the API's default */

	if (req->body_case != KEYCUSTODY__REQUEST__BODY_CREATE_CSR)
		return KCD_KEYTYPE_NONE;
	if (req->create_csr->key_type != NULL &&
	    hsm_keytype_parse(req->create_csr->key_type, &t) != 0)
		return KCD_KEYTYPE_NONE;
	return (int)t;
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
	struct timespec		 t0;
	int			 r;

	memset(&err, 0, sizeof(err));
	metrics_now(&t0);
	r = e->fn(w, req, resp, &err);
	if (w->kcd->disp != NULL)
		metrics_hist_since(&w->kcd->disp->latency[e - disp_table][disp_keytype(req)],
		    &t0);
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
	struct disp_fair	*f = kcd->disp != NULL ? &kcd->disp->fair : NULL;
	uint64_t		 held = 0;

	memset(&err, 0, sizeof(err));
	if (disp_permitted(e, req, peer, &err) != 0) {
		if (f == NULL || peer_loglimit_pass(&f->log_refused, f->log_rate, &held))
			log_warnx("peer uid %ld pid %ld (role %s): %s refused%s", (long)peer->uid,
			    (long)peer->pid, peer_role_name(peer->role),
			    proto_request_name(req->body_case), disp_held(held));
		disp_error_frame(req->id, &err, frame, len);
		return 1;
	}
	if (e->flags & DISP_LOOP) {
		disp_answer_loop(kcd, req, frame, len);
		return 1;
	}
	/* sign_rate per peer uid, before the request takes a worker. */
	if (req->body_case == KEYCUSTODY__REQUEST__BODY_SIGN &&
	    !sign_limiter_take(&kcd->sign_limiter, peer->uid)) {
		kc_error_set(&err, KC_STATUS_RATE_LIMITED, KC_API_RATE_LIMITED,
		    KC_API_RATE_LIMITED_MSG ": this signer's sign_rate is %u a second",
		    kcd->sign_limiter.rate);
		sign_stats_add(&kcd->sign_stats, req->sign->key_id.len == SIGN_KEY_ID_LEN ?
		    req->sign->key_id.data : NULL, peer->uid, SIGN_REFUSED);
		disp_error_frame(req->id, &err, frame, len);
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
	/* The token is free for the deletes that yielded to this create. */
	if (job->yields)
		custody_yield_create_end(w->kcd->yield);
	keycustody__request__free_unpacked(job->req, NULL);
	job->req = NULL;
}

static struct disp_tally *
disp_tally_find(struct disp_tallyq *q, const char *key)
{
	struct disp_tally	*t;

	TAILQ_FOREACH(t, q, entry)
		if (strcmp(t->key, key) == 0)
			return t;
	return NULL;
}

/* One more create in flight for key (copied). */
static struct disp_tally *
disp_tally_ref(struct disp_tallyq *q, const char *key)
{
	struct disp_tally	*t;

	if ((t = disp_tally_find(q, key)) == NULL) {
		t = xcalloc(1, sizeof(*t));
		t->key = xstrdup(key);
		TAILQ_INSERT_TAIL(q, t, entry);
	}
	t->pending++;
	return t;
}

static void
disp_tally_unref(struct disp_tallyq *q, struct disp_tally *t)
{
	if (t == NULL || --t->pending > 0)
		return;
	TAILQ_REMOVE(q, t, entry);
	free(t->key);
	free(t);
}

/*
 * The credential a create counts against: the acting credential a gateway names (it
 * speaks for many), or the peer's uid for an admin, whatever actor it names.
 * @retval a string the caller frees
 */
static char *
disp_cred_key(const Keycustody__Request *req, const struct peer *peer)
{
	char	*key;

	if (peer->role == PEER_ROLE_GATEWAY && req->actor != NULL)
		xasprintf(&key, "credential %s", req->actor);
	else
		xasprintf(&key, "uid %ld", (long)peer->uid);
	return key;
}

/*
 * Count a create against its zone and credential, or refuse it: 429 when either has
 * zone_max or cred_max in flight, 503 when creates in all have create_max.
 * @retval 0, or 1 with *frame set to the refusal
 */
static int
disp_fair_admit(struct dispatch *d, struct disp_job *job, const Keycustody__Request *req,
    uint8_t **frame, size_t *len)
{
	struct disp_fair	*f = &d->fair;
	const char		*zone = req->create_csr->zone_id;
	struct disp_tally	*zt = NULL, *ct;
	struct kc_error		 err;
	const char		*what = NULL;
	char			*ckey;
	uint64_t		 held;
	unsigned int		 n = 0;

	if (f->running + f->waiting >= f->create_max) {
		kc_error_set(&err, KC_STATUS_UNAVAILABLE, KC_API_UNAVAILABLE, "Service "
		    "Unavailable: too many key creations are queued. Please try again later.");
		disp_error_frame(req->id, &err, frame, len);
		return 1;
	}
	/* An invalid zone id is refused by the handler before it reaches the token. */
	if (zone != NULL && !val_zone_id(zone))
		zone = NULL;
	ckey = disp_cred_key(req, &job->peer);
	if (zone != NULL && (zt = disp_tally_find(&f->zones, zone)) != NULL &&
	    zt->pending >= f->zone_max) {
		what = "zone";
		n = zt->pending;
	} else if ((ct = disp_tally_find(&f->creds, ckey)) != NULL &&
	    ct->pending >= f->cred_max) {
		what = "credential";
		n = ct->pending;
	}
	if (what != NULL) {
		f->limited++;
		if (peer_loglimit_pass(&f->log_limited, f->log_rate, &held))
			log_warnx("peer uid %ld pid %ld (%s): create_csr in zone %s refused (429): "
			    "its %s has %u key creations in flight%s", (long)job->peer.uid,
			    (long)job->peer.pid, ckey, zone != NULL ? zone : "<invalid>", what, n,
			    disp_held(held));
		free(ckey);
		kc_error_set(&err, KC_STATUS_RATE_LIMITED, KC_API_RATE_LIMITED,
		    KC_API_RATE_LIMITED_MSG);
		disp_error_frame(req->id, &err, frame, len);
		return 1;
	}
	job->zone = zone != NULL ? disp_tally_ref(&f->zones, zone) : NULL;
	job->cred = disp_tally_ref(&f->creds, ckey);
	free(ckey);
	return 0;
}

/* Whether a counted create may go to a worker now. */
static int
disp_fair_may_run(const struct disp_fair *f, const struct disp_job *job)
{
	return (job->zone == NULL || job->zone->running < f->zone_run) &&
	    job->cred->running < f->cred_run;
}

/* A create leaves the line or the pool: its zone and credential have one fewer. */
static void
disp_fair_release(struct dispatch *d, struct disp_job *job)
{
	struct disp_fair	*f = &d->fair;

	if (job->cred == NULL)
		return;
	if (job->running) {
		if (job->zone != NULL)
			job->zone->running--;
		job->cred->running--;
		f->running--;
		job->running = 0;
	}
	if (job->waiting) {
		TAILQ_REMOVE(&f->line, job, entry);
		f->waiting--;
		job->waiting = 0;
	}
	disp_tally_unref(&f->zones, job->zone);
	disp_tally_unref(&f->creds, job->cred);
	job->zone = NULL;
	job->cred = NULL;
}

/* Give job to the pool, a counted create as a slow job. @retval 0 or KC_ERR_UNAVAILABLE */
static int
disp_submit(struct dispatch *d, struct disp_job *job)
{
	struct disp_fair	*f = &d->fair;
	int			 create = job->cred != NULL;
	enum pool_class		 class = POOL_FAST;

	if (create) {
		if (job->zone != NULL)
			job->zone->running++;
		job->cred->running++;
		f->running++;
		job->running = 1;
		custody_yield_create_begin(d->kcd->yield);
		job->yields = 1;
	}
	if (create)
		class = POOL_SLOW;
	else if (job->req->body_case == KEYCUSTODY__REQUEST__BODY_DELETE_CSR)
		class = POOL_DESTROY;
	if (pool_submit(d->kcd->pool, class, disp_work, disp_work_done, job) != 0) {
		if (job->yields)
			custody_yield_create_end(d->kcd->yield);
		job->yields = 0;
		disp_fair_release(d, job);
		return KC_ERR_UNAVAILABLE;
	}
	return 0;
}

/* Answer a job that never reached a worker "unavailable" (message msg), and free it. */
static void
disp_refuse(struct dispatch *d, struct disp_job *job, const char *msg)
{
	disp_reply_fn	 reply = job->reply;
	void		*arg = job->arg;
	struct kc_error	 err;
	uint8_t		*frame;
	size_t		 len;

	event_free(job->timer);
	disp_fair_release(d, job);
	d->inflight--;
	kc_error_set(&err, KC_STATUS_UNAVAILABLE, KC_API_UNAVAILABLE,
	    "Service Unavailable: %s. Please try again later.", msg);
	disp_error_frame(job->id, &err, &frame, &len);
	keycustody__request__free_unpacked(job->req, NULL);
	free(job);
	reply(arg, frame, len);
}

/* Start the creates in the line whose zone and credential have room now, oldest first. */
static void
disp_fair_next(struct dispatch *d)
{
	struct disp_fair	*f = &d->fair;
	struct disp_job		*job, *next;

	for (job = TAILQ_FIRST(&f->line); job != NULL; job = next) {
		next = TAILQ_NEXT(job, entry);
		if (!disp_fair_may_run(f, job))
			continue;
		TAILQ_REMOVE(&f->line, job, entry);
		f->waiting--;
		job->waiting = 0;
		if (disp_submit(d, job) != 0)
			disp_refuse(d, job, "the request queue is full");
	}
}

/* On the loop: the worker's answer goes out, unless the deadline answered already. */
static void
disp_work_done(void *arg)
{
	struct disp_job	*job = arg;

	event_free(job->timer);
	job->d->inflight--;
	if (job->running) {
		disp_fair_release(job->d, job);
		disp_fair_next(job->d);
	}
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

	if (job->waiting) {
		/* It never reached a worker: nothing to undo. */
		log_warnx("request %llu (uid %ld pid %ld): key creation waited %lds for its "
		    "turn; giving up", (unsigned long long)job->id, (long)job->peer.uid,
		    (long)job->peer.pid, (long)job->d->timeout.tv_sec);
		disp_refuse(job->d, job, "the key creation waited too long for its turn; "
		    "nothing was changed");
		return;
	}
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
	if ((e->flags & DISP_CREATE) && disp_fair_admit(d, job, req, &frame, &len)) {
		free(job);
		keycustody__request__free_unpacked(req, NULL);
		reply(arg, frame, len);
		return;
	}
	d->inflight++;
	clock_gettime(CLOCK_MONOTONIC, &job->deadline);
	job->deadline.tv_sec += d->timeout.tv_sec;
	if ((job->timer = evtimer_new(d->kcd->base, disp_deadline, job)) == NULL)
		fatalx("evtimer_new");
	if (job->cred != NULL && !disp_fair_may_run(&d->fair, job)) {
		/* Its zone or credential has enough running: wait in the line. */
		TAILQ_INSERT_TAIL(&d->fair.line, job, entry);
		job->waiting = 1;
		d->fair.waiting++;
	} else if (disp_submit(d, job) != 0) {
		disp_refuse(d, job, "the request queue is full");
		return;
	}
	evtimer_add(job->timer, &d->timeout);
}

void
disp_stats(const struct dispatch *d, struct disp_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (d == NULL)
		return;
	st->creates_running = d->fair.running;
	st->creates_waiting = d->fair.waiting;
	st->creates_limited = d->fair.limited;
	st->log_suppressed = d->fair.log_limited.suppressed + d->fair.log_refused.suppressed;
}

void
disp_metrics(const struct dispatch *d, Keycustody__MetricsResponse *m)
{
	Keycustody__OperationLatency	*ol;
	size_t				 i, n = 0;
	int				 t;

	if (d == NULL)
		return;
	m->has_requests_in_flight = 1;
	m->requests_in_flight = d->inflight;
	m->requests = xcalloc(DISP_NROWS * KCD_NKEYTYPES, sizeof(*m->requests));
	for (i = 0; i < DISP_NROWS; i++) {
		if (disp_table[i].flags & DISP_LOOP)
			continue;
		for (t = 0; t < KCD_NKEYTYPES; t++) {
			/* Every request type once; a create by each key type it was asked. */
			if (t != KCD_KEYTYPE_NONE &&
			    atomic_load(&d->latency[i][t].count) == 0)
				continue;
			ol = xcalloc(1, sizeof(*ol));
			keycustody__operation_latency__init(ol);
			ol->op = xstrdup(proto_request_name(disp_table[i].type));
			ol->key_type = xstrdup(t == KCD_KEYTYPE_NONE ? "none" :
			    hsm_keytype_name((enum hsm_keytype)t));
			ol->latency = metrics_hist_pack(&d->latency[i][t]);
			m->requests[n++] = ol;
		}
	}
	m->n_requests = n;
}

/*
 * The fairness limits from the configuration: "auto" (0) runs at most all workers but one
 * for one zone or one credential (at least one), and lets creates take half the queue.
 */
static void
disp_fair_init(struct disp_fair *f, const struct kc_conf *conf)
{
	unsigned int	 run = conf->workers > 1 ? conf->workers - 1 : 1;

	TAILQ_INIT(&f->zones);
	TAILQ_INIT(&f->creds);
	TAILQ_INIT(&f->line);
	f->zone_max = conf->zone_pending_creates;
	f->cred_max = conf->credential_pending_creates;
	f->zone_run = conf->zone_creates != 0 ? conf->zone_creates : run;
	if (f->zone_run > f->zone_max)
		f->zone_run = f->zone_max;
	f->cred_run = conf->credential_creates != 0 ? conf->credential_creates : run;
	if (f->cred_run > f->cred_max)
		f->cred_run = f->cred_max;
	f->create_max = conf->create_queue_limit != 0 ? conf->create_queue_limit :
	    (conf->queue_limit > 1 ? conf->queue_limit / 2 : 1);
	f->log_rate = conf->refusal_log_rate;
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
	disp_fair_init(&d->fair, conf);
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
	struct disp_job	*job;

	if (d == NULL)
		return;
	while ((job = TAILQ_FIRST(&d->fair.line)) != NULL)
		disp_refuse(d, job, "the daemon is stopping");
	pool_free(d->kcd->pool);
	d->kcd->pool = NULL;
	disp_workers_free(d->workers, d->nworkers);
	free(d);
}
